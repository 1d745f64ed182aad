"""What the dashboard shows: the setup checklist and the health of each moving part."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Flask
from rq import Worker
from sqlalchemy.orm import Session

from portal import jobs


@dataclass(frozen=True)
class ChecklistStep:
    number: int
    title: str
    state: str  # todo, done, warning
    reason: str
    endpoint: str
    endpoint_args: tuple[tuple[str, str], ...] = ()


# Step, title, where it is done. Step 9 (unbatch) is done only when needed: not listed.
STEPS = (
    (1, "Create the ConnectWise security role and API member", "setup.connectwise", ()),
    (2, "Connect ConnectWise", "setup.connectwise", ()),
    (3, "Connect QuickBooks Online", "setup.quickbooks", ()),
    (4, "Configure the QuickBooks setup tabs", "setup.quickbooks", ()),
    (5, "Map your data", "mappings.index", ()),
    (6, "Email and payment-sync settings", "email.index", ()),
    (7, "Clear old transactions", "batches.clear", ()),
    (8, "Run invoice, expense and inventory batches", "batches.new",
     (("kind", "invoices"),)),
    (10, "Sync payments back to ConnectWise", "batches.new", (("kind", "payments"),)),
    (11, "Review batch data", "batches.index", ()),
)


def checklist(session: Session) -> list[ChecklistStep]:
    """Each step's state from stored data; a step whose feature has no data yet is todo.

    Later features add a function per step here; no box is ever ticked by hand.
    """
    return [ChecklistStep(number, title, "todo", "Not configured yet.", endpoint, args)
            for number, title, endpoint, args in STEPS]


@dataclass(frozen=True)
class Health:
    redis_ok: bool
    redis_detail: str
    workers: int
    heartbeat_age_seconds: float | None
    database_detail: str

    @property
    def worker_ok(self) -> bool:
        return self.heartbeat_age_seconds is not None and self.heartbeat_age_seconds < 120


def health(app: Flask, session: Session) -> Health:
    """Redis, worker heartbeat and database; never raises (the card shows the failure)."""
    dialect = session.get_bind().dialect.name
    try:
        client = jobs.get_redis(app)
        client.ping()
        workers = Worker.all(connection=client)
        beats = [w.last_heartbeat for w in workers if w.last_heartbeat]
        age = None
        if beats:
            newest = max(b if b.tzinfo else b.replace(tzinfo=timezone.utc) for b in beats)
            age = (datetime.now(timezone.utc) - newest).total_seconds()
        return Health(True, jobs.redis_description(app), len(workers), age, dialect)
    except Exception as exc:  # noqa: BLE001 - shown on the card
        return Health(False, f"{jobs.redis_description(app)}: {exc}", 0, None, dialect)
