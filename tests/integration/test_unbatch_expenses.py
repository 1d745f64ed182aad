"""Unbatch and clearing through the generic hooks with a second record type: expense groups
posted as Bills and Purchases are deleted in QuickBooks (the API voids neither) and their
accounting batches deleted; clearing marks expense groups as CLEAR-…-E-nnn and undo
returns them."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, BatchType, Company, ItemState, RunKind
from portal.services import clearing
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, cw_batches, qbo_state
from tests.integration.expenses import postable, submit_groups, unposted_expense_ids
from tests.integration.unbatching import preview, requests_of, start

pytestmark = pytest.mark.integration


def test_unbatch_expense_groups_deletes_their_documents(app, connected, qbo_sandbox,
                                                        cw_sandbox):
    _qbo, server = qbo_sandbox
    chosen = [r for r in postable(app) if r.party != "Kiran Patel"]
    batch_id = submit_groups(app, chosen)
    run_jobs(app)
    _batch, items = batch_of(app, batch_id)
    posted = [i for i in items if i.state is ItemState.DONE and i.qbo_id]
    by_entity = {}
    for item in posted:
        by_entity.setdefault(item.qbo_entity, item)
    assert set(by_entity) >= {"Bill", "Purchase"}, {i.qbo_entity for i in posted}
    numbers = {i.cw_number for i in by_entity.values()}
    views = {v.item.cw_number: v for v in preview(app, batch_id, numbers)}
    for view in views.values():
        assert view.offered == ["None", "Delete"] and view.action == "Delete", view
        assert view.ok, view.refusals
    before = unposted_expense_ids(cw_sandbox)
    start(app, batch_id, numbers)
    assert {r.step for r in requests_of(app, batch_id)} == {"done"}
    state = qbo_state(server, connected.realm_id)
    held = {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}
    for item in by_entity.values():
        assert not [d for d in state.get(item.qbo_entity, []) if d["Id"] == item.qbo_id]
        assert item.cw_batch_identifier not in held
    assert unposted_expense_ids(cw_sandbox) > before  # the expenses are unposted again
    _b, after = batch_of(app, batch_id)
    assert {i.state for i in after if i.cw_number in numbers} == {ItemState.UNBATCHED}


def test_clearing_expense_groups_and_undoing_it(app, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    qbo_before = qbo_state(server, connected.realm_id)
    before = unposted_expense_ids(cw_sandbox)
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        view = clearing.candidates(session, company, clients.connectwise(session),
                                   [BatchType.EXPENSE], date(2026, 12, 31))
        assert view.count > 0
        run = clearing.start(session, company, clients.connectwise(session),
                             kinds=[BatchType.EXPENSE], cut_off=date(2026, 12, 31),
                             location_ids=[], confirm=str(view.count), user=None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.CLEAR, run_id)
    run_jobs(app)
    with session_scope(app) as session:
        batch = session.scalars(sa.select(Batch).where(Batch.type == BatchType.CLEAR)).one()
        states = {i.state.value for i in session.scalars(
            sa.select(BatchItem).where(BatchItem.batch_id == batch.id))}
        batch_id = batch.id
    assert states == {"cleared"}
    assert {b["batchIdentifier"] for b in cw_batches(cw_sandbox)
            if b["batchIdentifier"].startswith("CLEAR-20261231-E-")}
    assert unposted_expense_ids(cw_sandbox) < before
    assert qbo_state(server, connected.realm_id) == qbo_before
    with app.app_context(), session_scope(app) as session:
        run = clearing.undo(session, session.get(Batch, batch_id), None, None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.CLEAR, run_id)
    run_jobs(app)
    assert unposted_expense_ids(cw_sandbox) == before
