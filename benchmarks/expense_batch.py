"""Expense batch at real time: about 1,000 expense lines in about 150 groups (one per
member and report week) posted and marked against both sandboxes running at the real
limits and latencies, compared with the least time those limits allow.

The same rules as `invoice_batch.py` (whose environment, worker measurement and floors it
reuses): both sandboxes on loopback with `demo_data.generate(expenses=...)`, a portal app
on a temporary SQLite database and the embedded Redis, the reference lists loaded and the
backlog's pre-flight run in-process; the member vendors the groups need are created
beforehand (as an admin does from Mappings) unless `--first-batch`. Then the sandboxes are
set to the real world and the clean groups holding the first N lines are submitted as one
batch, worked by a separate `portal worker --burst` process. Figures are per record (an
expense group is one record) and per expense line.

Prints figures to stderr and one JSON object on its last line.

    .venv/bin/python benchmarks/expense_batch.py [--lines 1000] [--clock 1]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, BatchType, Company, RunKind
from portal.services import batches, company_settings
from portal.services.batching.engine import prefs_of
from portal.services.batching.types import record_type
from portal.services.batching.types.base import Filters, Record
from portal.services.mapping import MappingSet

from invoice_batch import (  # run as a script, next to this file
    Env,
    _preflight,
    create_references,
    cw_floor,
    load_references,
    qbo_floor,
    real_world,
    request_logs,
    run_worker,
    say,
    sim,
    start,
)

DOCUMENTS = {"bill", "purchase", "journalentry", "vendorcredit"}


def expense_groups(env: Env) -> list[Record]:
    """The expense selection grid's postable rows, as the screen lists them."""
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        settings = company_settings.get_settings(session, company)
        mapping = MappingSet.load(session, company, prefs_of(settings))
        return [r for r in record_type(BatchType.EXPENSE).list_unposted(
            clients.connectwise(session), Filters(settings=settings, mapping=mapping))
            if not r.held]


def clean_groups(env: Env, lines: int) -> list[Record]:
    """Clean groups (pre-flight finds nothing wrong) holding at least `lines` expenses."""
    load_references(env)
    rows = expense_groups(env)
    say(f"pre-flight of {len(rows)} expense groups, in-process")
    report, _ctx = _preflight(env, rows, "Default", "expense")
    failing = report.failing()
    chosen: list[Record] = []
    for row in rows:
        if row.key not in failing and sum(len(r.source_refs) for r in chosen) < lines:
            chosen.append(row)
    return chosen


def submit(env: Env, rows: list[Record]) -> tuple[int, int]:
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        batch = batches.submit(session, company, rows, user=None, options={},
                               batch_type=BatchType.EXPENSE)
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with env.app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id, run_id


def measure(lines: int, clock: float, first_batch: bool) -> dict[str, Any]:
    env = start(0, clock, expenses=math.ceil(lines * 1.2))
    try:
        rows = clean_groups(env, lines)
        n_lines = sum(len(r.source_refs) for r in rows)
        say(f"{len(rows)} clean groups holding {n_lines} expense lines")
        say("idle worker (empty queue): start-up baseline")
        idle = run_worker(env, "idle")
        if not first_batch:
            say(f"created {create_references(env, rows, 'Default', 'expense')} reference(s) "
                "beforehand")
        batch_id, run_id = submit(env, rows)
        real_world(env)
        say(f"batch #{batch_id}: {len(rows)} groups, worker process, real limits and "
            f"latencies at clock x{clock:g}")
        usage = run_worker(env, "expenses", run_id)
        say(f"worker done in {usage.seconds:.1f} s (exit {usage.code})")
        qbo_log, cw_log = request_logs(env)
        with session_scope(env.app) as session:
            batch = session.get(Batch, batch_id)
            states = Counter(i.state.value for i in session.scalars(
                sa.select(BatchItem).where(BatchItem.batch_id == batch_id)))
            seconds = (batch.finished_at - batch.started_at).total_seconds() * clock
            colour = batch.colour
            message = batch.message or ""
            started = batch.started_at
            for name, step in (batch.run.steps or {}).items():
                say(f"  step {name}: {step}")
            say(f"  started {started}, finished {batch.finished_at}")
        kinds: Counter[str] = Counter()
        for entry in qbo_log:
            items = entry.get("batch_items") or {}
            kinds["429" if entry["status"] == 429 else "query" if "query" in items else
                  "document" if DOCUMENTS & set(items) else
                  "reference" if items else entry["path"].rsplit("/", 1)[-1]] += 1
        say(f"QuickBooks requests by kind: {dict(kinds)}")
        if set(states) != {"done"}:
            say(f"WARNING: not every item is done: {dict(states)}; {message}; the worker's "
                "log:\n" + (Path(env.folder) / "worker-expenses.log").read_text()[-4000:])
        batch_calls = sum(1 for e in qbo_log if e["path"].endswith("/batch"))
        other = len(qbo_log) - batch_calls
        reads = sum((e.get("batch_items") or {}).get("query", 0) for e in qbo_log) + sum(
            1 for e in qbo_log if e["method"] == "GET" or e["path"].endswith("/query"))
        n = len(rows)
        floor = max(qbo_floor(batch_calls, other), cw_floor(len(cw_log)))
        cpu = usage.cpu - idle.cpu
        return {
            "records": n, "expense_lines": n_lines, "seconds": round(seconds, 1),
            "floor_seconds": round(floor, 1),
            "ratio_to_floor": round(seconds / floor, 3) if floor else None,
            "qbo_requests_per_record": round((batch_calls + other) / n, 4),
            "qbo_metered_reads_per_record": round(reads / n, 4),
            "cw_requests_per_record": round(len(cw_log) / n, 3),
            "cpu_ms_per_record": round(cpu / n * 1000, 2),
            "sql_statements_per_record": round(usage.statements / n, 2),
            "commits_per_record": round(usage.commits / n, 3),
            "qbo_requests_per_line": round((batch_calls + other) / n_lines, 4),
            "qbo_batch_requests": batch_calls, "qbo_other_requests": other,
            "qbo_429": sum(1 for e in qbo_log if e["status"] == 429),
            "cw_requests": len(cw_log),
            "qbo_floor_seconds": round(qbo_floor(batch_calls, other), 1),
            "cw_floor_seconds": round(cw_floor(len(cw_log)), 1),
            "states": dict(states), "colour": colour, "clock": clock,
            "first_batch": first_batch, "documents": dict(Counter(
                r.target for r in rows)),
            "peak_rss_mb": round(usage.max_rss_kib / 1024, 1)}
    finally:
        env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1000, help="expense lines in the batch")
    parser.add_argument("--clock", type=float, default=1.0,
                        help="sandbox clock and latencies this many times faster than "
                             "real time (1 = real time)")
    parser.add_argument("--first-batch", action="store_true",
                        help="let the measured batch create the member vendors it needs")
    args = parser.parse_args()
    say(f"== {args.lines} expense lines ==")
    figures = measure(args.lines, args.clock, args.first_batch)
    for name, value in figures.items():
        say(f"{name}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
