"""Payment sync at real time: 1,000 QuickBooks invoices with payment activity synced to
ConnectWise against both sandboxes at the real limits and latencies, compared with the least
time those limits allow; then a second run on unchanged data, which must write nothing.

It starts both sandboxes on a generated data set and a connected portal (as
benchmarks/invoice_batch.py does, whose helpers it shares), then, on the preparation's fast
clock, gives QuickBooks one invoice per generated ConnectWise invoice (same number, same
total) and a mix of payments: paid in full (40%), half paid (30%), two partial payments
(20%), and over-paid with unapplied credit (10%). The sandboxes are then set to the real
world (QuickBooks 1 s per /batch, 250 ms per other call, its per-minute and in-flight limits;
ConnectWise 200 ms per call, 4 in flight) and a `portal worker --burst` process runs the
sync. `seconds` is the batch's started_at to finished_at; the floor is the least wall time
the limits allow for the calls this run made (QuickBooks and ConnectWise in parallel).

Prints figures to stderr and one JSON object on its last line.

    .venv/bin/python benchmarks/payment_sync.py [--invoices 1000] [--clock 1]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.models import Batch, Company, PaymentItem
from portal.models.types import utcnow
from portal.services.payments import sync

from invoice_batch import (CW_CALL_SECONDS, cw_floor, qbo_floor, real_world,  # noqa: E402
                           request_logs, run_worker, say, sim, start)

CREATE_CHUNK = 30
CW_WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _cw_invoices(env: Any, n: int) -> list[dict[str, Any]]:
    """n generated ConnectWise invoices (not credit memos) with a total above zero."""
    with env.cw.store.lock:
        rows = [dict(i) for i in env.cw.store.tables["invoices"].values()
                if i.get("type") != "CreditMemo" and float(i.get("total") or 0) > 1
                and i["id"] > 150 and not i.get("payments")]
    return sorted(rows, key=lambda i: i["id"])[:n]


def _batched(qbo: Any, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for start_at in range(0, len(operations), CREATE_CHUNK):
        chunk = operations[start_at:start_at + CREATE_CHUNK]
        for n, op in enumerate(chunk):
            op["bId"] = f"b{n}"
        found = {a["bId"]: a for a in qbo.batch(chunk)}
        answers.extend(found[op["bId"]] for op in chunk)
    return answers


def prepare(env: Any, n: int) -> int:
    """The QuickBooks side: invoices matching ConnectWise by number, and their payments."""
    invoices = _cw_invoices(env, n)
    if len(invoices) < n:
        raise SystemExit(f"only {len(invoices)} generated invoices; raise the scale")
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        qbo = clients.quickbooks(session, company)
        created = _batched(qbo, [{"operation": "create", "Invoice": {
            "DocNumber": inv["invoiceNumber"], "TxnDate": inv["date"][:10],
            "CustomerRef": {"value": "1"},
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": float(inv["total"]),
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1,
                                              "UnitPrice": float(inv["total"])}}]}}
            for inv in invoices])
        payments = []
        for index, (inv, answer) in enumerate(zip(invoices, created)):
            qid, total = answer["Invoice"]["Id"], round(float(inv["total"]), 2)
            kind = index % 10
            parts = [total] if kind < 4 else [round(total / 2, 2)] if kind < 7 else \
                [round(total * 0.3, 2), round(total * 0.2, 2)] if kind < 9 else [total]
            extra = 5.0 if kind == 9 else 0.0
            for day, amount in zip(("2026-11-20", "2026-11-25"), parts):
                payments.append({"operation": "create", "Payment": {
                    "CustomerRef": {"value": "1"}, "TxnDate": day,
                    "TotalAmt": round(amount + extra, 2),
                    "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": qid,
                                                               "TxnType": "Invoice"}]}]}})
        _batched(qbo, payments)
    return len(payments)


def sync_once(env: Any, since: Any, label: str) -> dict[str, Any]:
    """One payment run by a worker process; its figures and the sandboxes' request logs."""
    for server in (env.qbo_server, env.cw_server):
        sim(server, "requests", method="DELETE")
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        batch = sync.start_and_enqueue(session, company, trigger="benchmark", since=since)
        batch_id, run_id = batch.id, batch.run_id
    usage = run_worker(env, label, run_id)
    qbo_log, cw_log = request_logs(env)
    with session_scope(env.app) as session:
        batch = session.get(Batch, batch_id)
        states = Counter(i.status.value for i in session.scalars(
            sa.select(PaymentItem).where(PaymentItem.batch_id == batch_id)))
        seconds = (batch.finished_at - batch.started_at).total_seconds() * env.clock
        colour, message = batch.colour, batch.message
    batch_calls = sum(1 for e in qbo_log if e["path"].endswith("/batch"))
    writes = sum(1 for e in cw_log if e["method"] in CW_WRITES and "/payments" in e["path"])
    say(f"{label}: {dict(states)} {colour}: {message}; {seconds:.1f} s, QuickBooks "
        f"{len(qbo_log)} requests ({batch_calls} /batch), ConnectWise {len(cw_log)} "
        f"({writes} payment writes)")
    return {"seconds": seconds, "states": dict(states), "colour": colour,
            "qbo_batch": batch_calls, "qbo_other": len(qbo_log) - batch_calls,
            "cw_calls": len(cw_log), "cw_writes": writes, "cpu": usage.cpu,
            "items": sum(states.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--clock", type=float, default=1.0,
                        help="sandbox clock and latencies this many times faster than real "
                             "time (1 = real time, what the README quotes)")
    args = parser.parse_args()
    n = args.invoices
    env = start(n + 200, args.clock)
    try:
        since = utcnow() - timedelta(days=1)
        say(f"prepared {prepare(env, n)} QuickBooks payments for {n} invoices")
        real_world(env)
        first = sync_once(env, since, "first")
        second = sync_once(env, since, "second")
    finally:
        env.stop()
    floor = max(qbo_floor(first["qbo_batch"], first["qbo_other"]),
                cw_floor(first["cw_calls"]))
    synced = first["items"] or 1
    figures = {
        "invoices": synced, "seconds": round(first["seconds"], 1),
        "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(first["seconds"] / floor, 3) if floor else None,
        "qbo_requests_per_invoice": round((first["qbo_batch"] + first["qbo_other"]) / synced,
                                          4),
        "cw_requests_per_invoice": round(first["cw_calls"] / synced, 3),
        "cpu_ms_per_invoice": round(first["cpu"] / synced * 1000, 2),
        "states": first["states"], "colour": first["colour"],
        "cw_payment_writes": first["cw_writes"],
        "second_run_seconds": round(second["seconds"], 1),
        "second_run_cw_payment_writes": second["cw_writes"],
        "second_run_states": second["states"], "clock": args.clock,
        "cw_call_seconds": CW_CALL_SECONDS}
    for name, value in figures.items():
        say(f"{name}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
