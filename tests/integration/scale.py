"""Rows at the scale of SPEC 16.1 (a 10,000-item batch, 300 batches, 5,000 customers),
written straight with SQLAlchemy core: the page tests and benchmarks/pages.py share them.

Items cycle through the four colours so every filter has rows: position % 10 == 0 failed
(red), 1 done with a warning (yellow), 2 skipped because the batch was blocked (grey), the
rest done (green). Each carries a payload of a few kilobytes, so a page that loaded the
column would show it in its time and in its SQL.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import (Batch, BatchItem, BatchItemEvent, BatchStatus, BatchType, ItemState,
                           JobRun, MappingScan, MappingValue, QboRef, RunKind, RunStatus)
from portal.services import reference

CHUNK = 2000
PAYLOAD = {"Line": [{"Description": f"Managed services, seat {n}", "Amount": "12.50",
                     "DetailType": "SalesItemLineDetail"} for n in range(40)]}


def item_state(position: int) -> dict[str, Any]:
    """The state columns of the item at `position` (see the module docstring)."""
    kind = position % 10
    if kind == 0:
        return {"state": ItemState.FAILED.value, "warnings": [],
                "message": f"QuickBooks refused record {position}.",
                "fix_hint": "Correct the customer in ConnectWise, then retry."}
    if kind == 1:
        return {"state": ItemState.DONE.value, "warnings": ["Tax differs by 0.01."],
                "message": None, "fix_hint": None}
    if kind == 2:
        return {"state": ItemState.SKIPPED.value, "skip_reason": "blocked", "warnings": [],
                "message": "Not posted: other records failed the pre-flight.",
                "fix_hint": None}
    return {"state": ItemState.DONE.value, "warnings": [], "message": None, "fix_hint": None}


def colour_at(position: int) -> str:
    return {0: "red", 1: "yellow", 2: "grey"}.get(position % 10, "green")


def add_items(session: Session, batch_id: int, start: int, count: int) -> None:
    """Items at positions start .. start+count-1 (record keys `scale:<batch>:<position>`,
    which no ConnectWise record has)."""
    columns = ("state", "skip_reason", "warnings", "message", "fix_hint")
    day = date(2026, 1, 1)
    for first in range(start, start + count, CHUNK):
        rows = []
        for position in range(first, min(start + count, first + CHUNK)):
            state = item_state(position)
            done = state["state"] == ItemState.DONE.value
            rows.append({
                "batch_id": batch_id, "record_key": f"scale:{batch_id}:{position}",
                "position": position, "cw_id": 500000 + position,
                "cw_number": f"S{position:06d}", "cw_kind": "Standard",
                "party": f"Scale Customer {position % 5000:05d}",
                "record_date": day + timedelta(days=position % 90),
                "gl_entry_ids": [], "source_refs": [], "payload": PAYLOAD,
                "cw_amount": Decimal("125.00"), "currency": "USD",
                "qbo_entity": "Invoice" if done else None,
                "qbo_id": str(700000 + position) if done else None,
                "qbo_doc_number": f"S{position:06d}" if done else None,
                "qbo_amount": Decimal("125.00") if done else None,
                **{c: state.get(c) for c in columns}})
        session.execute(sa.insert(BatchItem), rows)


def add_batch(session: Session, company_id: int, *, items: int = 0,
              snapshot: dict[str, Any] | None = None,
              version_id: int | None = None) -> int:
    """A finished invoice batch (with its finished run, some events and `items` items)."""
    now = datetime.now(timezone.utc)
    run = JobRun(kind=RunKind.BATCH, status=RunStatus.SUCCEEDED, company_id=company_id,
                 total=items, done=items, log=[], started_at=now - timedelta(minutes=4),
                 finished_at=now, steps={"posting": {"done": items, "total": items},
                                         "marking": {"done": items, "total": items}})
    session.add(run)
    session.flush()
    batch = Batch(type=BatchType.INVOICE, company_id=company_id, run_id=run.id,
                  status=BatchStatus.FINISHED, colour="red", trigger="autosync", options={},
                  counts={}, totals={"USD": f"{125 * items:.2f}"}, preflight=[],
                  settings_snapshot=snapshot, settings_version_id=version_id,
                  message="Finished with failures", started_at=run.started_at,
                  finished_at=now)
    session.add(batch)
    session.flush()
    add_items(session, batch.id, 0, items)
    session.add_all(BatchItemEvent(batch_id=batch.id, from_state="validated", to_state="done",
                                   text=f"event {n}") for n in range(12))
    return batch.id


def recount(session: Session, batch_id: int) -> dict[str, int]:
    """The batch's counts column, as the engine leaves it."""
    counts = dict(session.execute(sa.select(BatchItem.state, sa.func.count()).where(
        BatchItem.batch_id == batch_id).group_by(BatchItem.state)).all())
    batch = session.get(Batch, batch_id)
    batch.counts = {state.value: count for state, count in counts.items()}
    return batch.counts


def add_batches(session: Session, company_id: int, count: int) -> list[int]:
    """`count` small finished batches (one item each), for the review list."""
    rows = [{"type": BatchType.INVOICE.value, "company_id": company_id,
             "status": BatchStatus.FINISHED.value, "colour": "green", "trigger": "autosync",
             "options": {}, "counts": {"done": 1}, "totals": {"USD": "125.00"},
             "preflight": []} for _ in range(count)]
    insert = sa.insert(Batch).returning(Batch.id, sort_by_parameter_order=True)
    ids = list(session.scalars(insert, rows))
    for batch_id in ids:
        add_items(session, batch_id, 0, 1)
    return ids


def add_customers(session: Session, company_id: int, target: int) -> int:
    """Cached QuickBooks customers up to `target` (`Scale Customer NNNNN`)."""
    now = datetime.now(timezone.utc)
    have = session.scalar(sa.select(sa.func.count()).select_from(QboRef).where(
        QboRef.company_id == company_id, QboRef.entity == "Customer")) or 0
    rows = [reference.qbo_row(company_id, "Customer", {
        "Id": f"9{n:06d}", "DisplayName": f"Scale Customer {n:05d}", "Active": True}, now)
        for n in range(have, target)]
    for first in range(0, len(rows), CHUNK):
        session.execute(sa.insert(QboRef), rows[first:first + CHUNK])
    return max(have, target)


def add_customer_values(session: Session, scan_id: int, start: int, count: int) -> None:
    """Customers of the backlog check, each matching one cached customer exactly."""
    rows = [{"scan_id": scan_id, "kind": "customer", "cw_value": f"Scale Customer {n:05d}",
             "status": "exact", "qbo_id": f"9{n:06d}", "qbo_name": f"Scale Customer {n:05d}",
             "records": 1, "record_refs": [f"invoice S{n:06d}"], "candidates": []}
            for n in range(start, start + count)]
    for first in range(0, len(rows), CHUNK):
        session.execute(sa.insert(MappingValue), rows[first:first + CHUNK])


def latest_scan(session: Session, company_id: int) -> int:
    return session.scalar(sa.select(MappingScan.id).where(
        MappingScan.company_id == company_id).order_by(MappingScan.id.desc()).limit(1))
