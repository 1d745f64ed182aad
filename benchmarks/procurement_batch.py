"""Procurement batch at real time: 500 PO receipts of four lines posted as Bills and marked,
against both sandboxes at the real limits and latencies, compared with the least time those
limits allow.

The same rules as `invoice_batch.py` (whose environment, worker launcher and floors this
reuses): a fresh data set with `receipts` extra POs, a connected portal on SQLite and the
embedded Redis, the vendors and items the receipts need created beforehand (a steady-state
run; `--first-batch` measures their creation too), then the sandboxes at the real world and
a separate `portal worker --burst` process posting the first N clean receipts. The JSON keys
are invoice_batch.py's, with `_per_record` in place of `_per_invoice`.

Prints figures to stderr and one JSON object on its last line.

    .venv/bin/python benchmarks/procurement_batch.py [--receipts 500] [--clock 1]
"""

from __future__ import annotations

import argparse
import json

import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, BatchType, Company, RunKind
from portal.services import batches
from portal.services.batching.types.base import Filters, Record

from invoice_batch import (Env, Result, _preflight, create_references, figures_of,
                           post_and_measure, load_references, run_worker, say, start)

DOCUMENTS = {"bill", "vendorcredit", "journalentry"}
KIND = "inventory"


def clean_receipts(env: Env) -> list[Record]:
    """The unposted receipts pre-flight finds nothing wrong with, the added POs first."""
    from portal.services.batching.types import record_type

    load_references(env)
    with env.app.app_context(), session_scope(env.app) as session:
        rows = [r for r in record_type(BatchType.INVENTORY).list_unposted(
            clients.connectwise(session), Filters()) if r.key.startswith("rcv:")]
    say(f"pre-flight of {len(rows)} unposted receipts, in-process")
    report, _ctx = _preflight(env, rows, "Default", KIND)
    failing = report.failing()
    clean = sorted((r for r in rows if r.key not in failing), key=lambda r: -(r.cw_id or 0))
    say(f"{len(clean)} clean receipts")
    return clean


def submit(env: Env, rows: list[Record]) -> int:
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        batch = batches.submit(session, company, rows, user=None, options={},
                               batch_type=BatchType.INVENTORY)
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with env.app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id


def measure(n: int, clock: float, first_batch: bool) -> tuple[Result, float]:
    env = start(0, clock, receipts=n + 20)
    try:
        clean = clean_receipts(env)[:n]
        say("idle worker (empty queue): start-up baseline")
        idle = run_worker(env, "idle")
        if not first_batch:
            say(f"created {create_references(env, clean, 'Default', KIND)} reference(s) "
                "beforehand")
        batch_id = submit(env, clean)
        with session_scope(env.app) as session:
            run_id = session.get(Batch, batch_id).run_id
        say(f"batch #{batch_id}: {len(clean)} receipts, worker process, clock x{clock:g}")
        run = post_and_measure(env, batch_id, run_id, len(clean), idle,
                               tuple(DOCUMENTS))
        with session_scope(env.app) as session:
            lines = sum(len((i.payload or {}).get("Line") or []) for i in session.scalars(
                sa.select(BatchItem).where(BatchItem.batch_id == batch_id)))
        return run, lines / max(1, len(clean))
    finally:
        env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receipts", type=int, default=500, help="receipts in the batch")
    parser.add_argument("--clock", type=float, default=1.0,
                        help="sandbox clock and latencies this many times faster than "
                             "real time (1 = real time)")
    parser.add_argument("--first-batch", action="store_true",
                        help="let the measured batch create the vendors and items its "
                             "receipts need")
    args = parser.parse_args()
    say(f"== {args.receipts} receipts ==")
    run, lines = measure(args.receipts, args.clock, args.first_batch)
    figures = {"records": run.invoices, "lines_per_record": round(lines, 2),
               **figures_of(run, "record", args.clock, args.first_batch)}
    for name, value in figures.items():
        say(f"{name}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
