"""Helpers for expense batch tests: list and submit expense groups as the selection screen
does, and read what both sandboxes hold for them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import BatchType, Company, RunKind
from portal.services import batches
from portal.services.batching.engine import prefs_of
from portal.services.batching.types import record_type
from portal.services.batching.types.base import Filters, Record
from portal.services.company_settings import get_settings
from portal.services.mapping import MappingSet


def groups(app: Any) -> list[Record]:
    """Every row of the expense selection grid (groups and held expenses)."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).first()
        settings = get_settings(session, company)
        mapping = MappingSet.load(session, company, prefs_of(settings))
        return record_type(BatchType.EXPENSE).list_unposted(
            clients.connectwise(session), Filters(settings=settings, mapping=mapping))


def postable(app: Any) -> list[Record]:
    return [r for r in groups(app) if not r.held]


def submit_groups(app: Any, records: list[Record]) -> int:
    """Submit the groups and enqueue the batch, as Submit on the screen does."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).first()
        batch = batches.submit(session, company, records, user=None, options={},
                               batch_type=BatchType.EXPENSE)
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id


def unposted_expense_ids(cw_sandbox: Any) -> set[int]:
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return {int(r["expenseDetailId"]) for r in sandbox.store.unposted["expenses"].values()}


def expense_entries(cw_sandbox: Any) -> dict[int, dict[str, Any]]:
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return {k: dict(v) for k, v in sandbox.store.tables["expense_entries"].items()}


def batch_entries(cw_sandbox: Any, batch_id: int) -> list[dict[str, Any]]:
    """The GL entries an accounting batch holds."""
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return [dict(e) for e in sandbox.store.tables["gl_entries"].values()
                if e.get("_batch") == batch_id]


EXPENSE_DOCUMENTS = ("Bill", "VendorCredit", "Purchase", "JournalEntry")


def expense_documents(state: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [dict(d, _entity=e) for e in EXPENSE_DOCUMENTS for d in state.get(e, [])
            if str(d.get("DocNumber") or "").startswith("E")]
