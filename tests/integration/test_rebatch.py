"""Re-batching end to end (SPEC 11.3, 6.3): generation g+1 with -r<g+1>, never two live
QuickBooks documents for one record (invariant I1)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, Company, ItemState, RunKind
from portal.services import batches, selection
from portal.services.batching.types import invoices as cw_invoices
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, qbo_documents
from tests.integration.unbatching import CREDIT_MEMOS, INVOICES, post, start

pytestmark = pytest.mark.integration


def _resubmit(app, numbers: set[str], rebatch: str | None = None) -> tuple[Batch, list]:
    """Select the records again from ConnectWise's unposted list and run the batch."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).first()
        rows = [r for r in cw_invoices.unposted(clients.connectwise(session))
                if r.number in numbers]
        assert {r.number for r in rows} == numbers
        options = {"summary": "Default", **({"rebatch": rebatch} if rebatch else {})}
        batch = batches.submit(session, company, rows, user=None, options=options)
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    run_jobs(app)
    return batch_of(app, batch_id)


def _live_docs(server, realm: str, number: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [d for d in qbo_documents(server, realm) if d.get("DocNumber") == number
            and not ("Voided" in str(d.get("PrivateNote")) and d.get("TotalAmt") == 0)]


def test_rebatch_after_void_posts_a_second_document_with_the_same_number(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    number = INVOICES[1]
    batch, [first] = post(app, {number})
    start(app, batch.id, {number}, "Void")
    again, [item] = _resubmit(app, {number})
    assert item.state is ItemState.DONE, item.message
    assert item.generation == 2 and item.rebatch_mode == "new"
    assert item.cw_batch_identifier == f"{first.cw_batch_identifier}-r2"
    assert item.qbo_id != first.qbo_id
    held = [d for d in qbo_documents(server, connected.realm_id) if d["DocNumber"] == number]
    assert len(held) == 2  # the voided one keeps its number (allowduplicatedocnum)
    assert [d["Id"] for d in _live_docs(server, connected.realm_id, number)] == [item.qbo_id]


@pytest.mark.parametrize("mode", ["update", "adopt"])
def test_rebatch_while_the_document_is_live_updates_or_adopts_it(
        app, connected, qbo_sandbox, cw_sandbox, mode):
    _qbo, server = qbo_sandbox
    number = CREDIT_MEMOS[1] if mode == "update" else INVOICES[2]
    batch, [first] = post(app, {number})
    start(app, batch.id, {number}, "None")
    sync_before = next(d for d in qbo_documents(server, connected.realm_id)
                       if d["Id"] == first.qbo_id)["SyncToken"]
    _again, [item] = _resubmit(app, {number}, mode)
    assert item.state is ItemState.DONE, item.message
    assert item.rebatch_mode == mode and item.generation == 2
    assert item.qbo_id == first.qbo_id  # the same document: never a second live one
    live = _live_docs(server, connected.realm_id, number)
    assert [d["Id"] for d in live] == [first.qbo_id]
    if mode == "update":
        assert live[0]["SyncToken"] != sync_before
        assert f"portal:{item.request_token}" in live[0]["PrivateNote"]
    else:
        assert live[0]["SyncToken"] == sync_before
    assert item.cw_batch_identifier.endswith("-r2")


def test_a_record_unbatched_in_connectwise_is_flagged_and_selected_again(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    number = INVOICES[3]
    batch, [first] = post(app, {number})
    with app.app_context(), session_scope(app) as session:  # someone unbatches it in CW
        cw = clients.connectwise(session)
        found = cw.get("/finance/accounting/batches",
                       conditions=f'batchIdentifier="{first.cw_batch_identifier}"')
        cw.request("DELETE", f"/finance/accounting/batches/{found[0]['id']}")
        sel = selection.select(session, selection.Form(), "invoices")
        row = next(r for r in sel.rows if r.number == number)
        assert ("changed in ConnectWise", batch.id) in sel.flags[row.cw_id]
        assert row.cw_id in sel.selectable
    _again, [item] = _resubmit(app, {number}, "update")
    assert item.state is ItemState.DONE and item.generation == 2, item.message
    assert [d["Id"] for d in _live_docs(server, connected.realm_id, number)] == [first.qbo_id]
    _old, [old] = batch_of(app, batch.id)
    assert old.state is ItemState.UNBATCHED


def test_update_existing_is_refused_while_payments_are_linked(app, connected, qbo_sandbox,
                                                              cw_sandbox):
    _qbo, server = qbo_sandbox
    number = INVOICES[4]
    batch, [first] = post(app, {number})
    start(app, batch.id, {number}, "None")
    with app.app_context(), session_scope(app) as session:
        qbo = clients.quickbooks(session, session.scalars(sa.select(Company)).one())
        doc = qbo.read("Invoice", first.qbo_id)
        qbo.create("Payment", {"CustomerRef": {"value": doc["CustomerRef"]["value"]},
                               "TotalAmt": 5, "Line": [{"Amount": 5, "LinkedTxn": [
                                   {"TxnId": first.qbo_id, "TxnType": "Invoice"}]}]})
    _again, [item] = _resubmit(app, {number}, "update")
    assert item.state is ItemState.FAILED and "payments linked" in item.message
    assert "Adopt unchanged" in item.fix_hint
    assert [d["Id"] for d in _live_docs(server, connected.realm_id, number)] == [first.qbo_id]
