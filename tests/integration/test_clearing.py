"""Clearing old transactions end to end (SPEC 12): no QuickBooks traffic, CLEAR batches in
ConnectWise, undo per chunk and per run, and a second clearing clears nothing twice."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, BatchType, Company, ItemState, RunKind
from portal.services import batches, clearing, company_settings
from tests.conftest import run_jobs
from tests.integration.batching import cw_batches, qbo_state, unposted

pytestmark = pytest.mark.integration
CUT_OFF = date(2026, 8, 10)


def _preview(app):  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        return clearing.candidates(session, company, clients.connectwise(session),
                                   [BatchType.INVOICE], CUT_OFF)


def _start(app, confirm: str) -> int:  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        run = clearing.start(session, company, clients.connectwise(session),
                             kinds=[BatchType.INVOICE], cut_off=CUT_OFF, location_ids=[],
                             confirm=confirm, user=None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.CLEAR, run_id)
    run_jobs(app)
    return run_id


def _undo(app, batch_id: int, chunk: str | None) -> None:  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        run = clearing.undo(session, session.get(Batch, batch_id), chunk, None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.CLEAR, run_id)
    run_jobs(app)


def _items(app) -> list[BatchItem]:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(BatchItem).join(Batch).where(
            Batch.type == BatchType.CLEAR).order_by(BatchItem.id)))
        session.expunge_all()
        return rows


def test_clearing_preview_run_undo_and_idempotence(app, connected, qbo_sandbox, cw_sandbox):
    _qbo, qbo_server = qbo_sandbox
    app.config["CLEAR_CHUNK_SIZE"] = 3
    view = _preview(app)
    old = {r.number for r in unposted(app) if r.day and r.day <= CUT_OFF}
    assert view.count == len(old) > 3 and {c.record.number for c in view.candidates} == old
    assert sum(n for _k, _c, n, _t in view.totals) == view.count
    assert view.oldest <= view.newest <= CUT_OFF
    assert len(list(clearing.csv_rows(view))) == view.count + 1
    qbo_before = qbo_state(qbo_server, connected.realm_id)

    with pytest.raises(batches.BatchRefused, match=f"Type the number of records, {view.count}"):
        _start(app, str(view.count + 1))
    _start(app, str(view.count))

    items = _items(app)
    assert {i.state for i in items} == {ItemState.CLEARED}, [(i.cw_number, i.message)
                                                              for i in items]
    assert {i.cw_number for i in items} == old  # the preview is what was cleared
    assert {i.colour for i in items} == {"green"}
    with session_scope(app) as session:
        cleared = session.get(Batch, items[0].batch_id)
        assert cleared.colour == "green" and cleared.message.startswith(f"{len(old)} cleared")
        with pytest.raises(batches.BatchRefused, match="not retried"):
            batches.retry(session, cleared, None)
    chunks = sorted({i.cw_batch_identifier for i in items})
    assert chunks[0] == "CLEAR-20260810-I-001" and len(chunks) == -(-len(old) // 3)
    held = {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}
    assert set(chunks) <= held
    assert not old & {r.number for r in unposted(app)}
    assert qbo_state(qbo_server, connected.realm_id) == qbo_before  # no QuickBooks traffic
    with session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        assert company_settings.get_settings(session, company).go_live_date == \
            date(2026, 8, 11)

    with pytest.raises(batches.BatchRefused, match="Nothing to clear"):  # clears nothing twice
        _start(app, "0")

    batch_id = items[0].batch_id
    _undo(app, batch_id, chunks[0])
    back = {i.cw_number for i in _items(app) if i.cw_batch_identifier == chunks[0]}
    assert {i.state for i in _items(app) if i.cw_batch_identifier == chunks[0]} == \
        {ItemState.UNCLEARED}
    assert back <= {r.number for r in unposted(app)}
    _undo(app, batch_id, None)
    assert {i.state for i in _items(app)} == {ItemState.UNCLEARED}
    assert old <= {r.number for r in unposted(app)}  # undo returns every record
    assert not set(chunks) & {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}

    _start(app, str(view.count))  # cleared again: new chunk numbers (CW refuses reuse)
    again = {i.cw_batch_identifier for i in _items(app) if i.state is ItemState.CLEARED}
    assert min(again) == f"CLEAR-20260810-I-{len(chunks) + 1:03d}"
