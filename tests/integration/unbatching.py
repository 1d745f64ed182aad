"""Helpers for unbatch, re-batch and clearing tests: post a few clean records, unbatch them
as the batch page does, and read both sandboxes."""

from __future__ import annotations

from typing import Any

import requests
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, Company, RunKind, UnbatchRequest
from portal.services import unbatch
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, submit

# Demo records that pass pre-flight on the connected US company (deterministic data set).
INVOICES = ("10032", "10034", "10041", "10046", "10051")
CREDIT_MEMOS = ("10142", "10143")


def post(app: Any, numbers: set[str] | tuple[str, ...]) -> tuple[Batch, list[BatchItem]]:
    batch_id = submit(app, set(numbers))
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert {i.state.value for i in items} == {"done"}, [(i.cw_number, i.state, i.message)
                                                       for i in items]
    return batch, items


def clients_for(session: Any, batch: Batch) -> tuple[Any, Any]:
    company = session.get(Company, batch.company_id)
    return clients.quickbooks(session, company), clients.connectwise(session)


def preview(app: Any, batch_id: int, numbers: set[str], action: str | None = None,
            unlink: bool = False) -> list[unbatch.Preview]:
    with app.app_context(), session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        items = list(session.scalars(sa.select(BatchItem).where(
            BatchItem.batch_id == batch_id, BatchItem.cw_number.in_(numbers))))
        qbo, cw = clients_for(session, batch)
        views = unbatch.preview(session, batch, items, action=action, unlink=unlink,
                                qbo=qbo, cw=cw)
        session.expunge_all()
        return views


def start(app: Any, batch_id: int, numbers: set[str], action: str | None = None,
          unlink: bool = False, run: bool = True) -> int:
    """Preview and start the unbatch as the batch page does; returns the run id."""
    with app.app_context(), session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        items = list(session.scalars(sa.select(BatchItem).where(
            BatchItem.batch_id == batch_id, BatchItem.cw_number.in_(numbers))))
        qbo, cw = clients_for(session, batch)
        views = unbatch.preview(session, batch, items, action=action, unlink=unlink,
                                qbo=qbo, cw=cw)
        job = unbatch.start(session, batch, views, None)
        session.commit()
        run_id = job.id
    with app.app_context():
        enqueue_run(RunKind.UNBATCH, run_id)
    if run:
        run_jobs(app)
    return run_id


def requests_of(app: Any, batch_id: int) -> list[UnbatchRequest]:
    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(UnbatchRequest).where(
            UnbatchRequest.batch_id == batch_id).order_by(UnbatchRequest.id)))
        session.expunge_all()
        return rows


def qbo_get(server: Any, realm: str, entity: str, entity_id: str) -> dict[str, Any] | None:
    state = requests.get(f"{server.url}/_sim/state", params={"realmId": realm},
                         timeout=30).json()
    [company] = state["companies"]
    return next((d for d in company["entities"].get(entity, []) if d["Id"] == entity_id), None)
