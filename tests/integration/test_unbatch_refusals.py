"""Unbatch refusals and recovery end to end (SPEC 11.1-11.2): payments, unlinking, deposits,
a closed ConnectWise batch finished by a retry that does only the ConnectWise step."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import AuditEvent, Batch, BatchItem, Company, ItemState, RunKind
from portal.services import cw_payments, unbatch
from portal.services.batching.types import invoices as cw_invoices
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, clear_faults, cw_batches, fault, unposted
from tests.integration.unbatching import (CREDIT_MEMOS, INVOICES, post, preview, qbo_get,
                                          requests_of, start)

pytestmark = pytest.mark.integration


def _qbo(app):  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        return clients.quickbooks(session, session.scalars(sa.select(Company)).one())


def _pay(app, item) -> dict:  # type: ignore[no-untyped-def]
    with app.app_context():
        qbo = _qbo(app)
        doc = qbo.read("Invoice", item.qbo_id)
        return qbo.create("Payment", {"CustomerRef": {"value": doc["CustomerRef"]["value"]},
                                      "TotalAmt": 10, "PaymentRefNum": "CHK-1",
                                      "Line": [{"Amount": 10, "LinkedTxn": [
                                          {"TxnId": item.qbo_id, "TxnType": "Invoice"}]}]})


def test_paid_invoice_is_refused_then_unlinked_and_voided(app, connected, qbo_sandbox,
                                                          cw_sandbox):
    _qbo_sb, server = qbo_sandbox
    batch, [item] = post(app, {INVOICES[1]})
    payment = _pay(app, item)
    [view] = preview(app, batch.id, {item.cw_number}, "Void")
    assert view.payments and view.payments[0].ref == "CHK-1"
    assert any("payments linked" in r and "Unlink payments" in r for r in view.refusals)
    [view] = preview(app, batch.id, {item.cw_number}, "Void", unlink=True)
    assert view.ok, view.refusals
    start(app, batch.id, {item.cw_number}, "Void", unlink=True)
    _b, [after] = batch_of(app, batch.id)
    assert after.state is ItemState.UNBATCHED
    held = qbo_get(server, connected.realm_id, "Payment", payment["Id"])
    assert held["Line"] == [] and held["UnappliedAmt"] == 10  # credit stays with the customer
    assert qbo_get(server, connected.realm_id, "Invoice", item.qbo_id)["PrivateNote"] == "Voided"
    [request] = requests_of(app, batch.id)
    assert request.unlinked == [{"qbo_payment": payment["Id"], "ref": "CHK-1"}]


def test_deposited_payment_fails_with_6540_and_quickbooks_first_leaves_cw_untouched(
        app, connected, qbo_sandbox, cw_sandbox):
    batch, [item] = post(app, {INVOICES[2]})
    payment = _pay(app, item)
    run_id = start(app, batch.id, {item.cw_number}, "Void", unlink=True, run=False)
    with app.app_context():  # deposited after the preview, before the job runs
        _qbo(app).create("Deposit", {"DepositToAccountRef": {"value": "1"}, "Line": [
            {"Amount": 10, "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment",
                                          "TxnLineId": "0"}]}]})
    run_jobs(app)
    [request] = requests_of(app, batch.id)
    assert request.run_id == run_id and request.step == "failed"
    assert "is deposited; remove it from the deposit in QuickBooks first" in request.message
    _b, [after] = batch_of(app, batch.id)
    assert after.state is ItemState.DONE  # QuickBooks failed: the record stays posted
    assert item.cw_batch_identifier in {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}
    [view] = preview(app, batch.id, {item.cw_number}, "Void", unlink=True)
    assert any("is deposited" in r for r in view.refusals)


def test_closed_connectwise_batch_stops_after_quickbooks_and_retry_does_only_cw(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo_sb, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    batch, [item] = post(app, {INVOICES[3]})
    start(app, batch.id, {item.cw_number}, "Void", run=False)

    def close(flag: bool) -> None:
        answer = requests.post(f"{cw_server.url}/_sim/batches", json={
            "batchIdentifier": item.cw_batch_identifier, "closedFlag": flag}, timeout=5)
        assert answer.status_code < 300, answer.text

    close(True)
    run_jobs(app)
    [request] = requests_of(app, batch.id)
    assert request.step == "cw" and "is closed" in request.message
    _b, [after] = batch_of(app, batch.id)
    assert after.state is ItemState.UNBATCHING
    voided = qbo_get(qbo_server, connected.realm_id, "Invoice", item.qbo_id)
    assert voided["PrivateNote"] == "Voided"
    [view] = preview(app, batch.id, {item.cw_number})
    assert any("Only marked or done" in r for r in view.refusals)
    close(False)
    with app.app_context(), session_scope(app) as session:
        run = unbatch.retry(session, session.get(Batch, batch.id), None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.UNBATCH, run_id)
    run_jobs(app)
    _b, [after] = batch_of(app, batch.id)
    assert after.state is ItemState.UNBATCHED
    again = qbo_get(qbo_server, connected.realm_id, "Invoice", item.qbo_id)
    assert again["SyncToken"] == voided["SyncToken"]  # QuickBooks was not touched again
    assert item.cw_number in {r.number for r in unposted(app)}


def test_closed_books_offer_only_none_and_an_applied_credit_memo_is_refused(
        app, connected, qbo_sandbox, cw_sandbox):
    batch, items = post(app, {INVOICES[0], CREDIT_MEMOS[0]})
    by_number = {i.cw_number: i for i in items}
    invoice, memo = by_number[INVOICES[0]], by_number[CREDIT_MEMOS[0]]
    with app.app_context():  # the credit memo is applied to the invoice in QuickBooks
        qbo = _qbo(app)
        doc = qbo.read("CreditMemo", memo.qbo_id)
        qbo.create("Payment", {"CustomerRef": {"value": doc["CustomerRef"]["value"]},
                               "TotalAmt": 0, "Line": [
                                   {"Amount": 5, "LinkedTxn": [{"TxnId": invoice.qbo_id,
                                                                "TxnType": "Invoice"}]},
                                   {"Amount": 5, "LinkedTxn": [{"TxnId": memo.qbo_id,
                                                                "TxnType": "CreditMemo"}]}]})
    [view] = preview(app, batch.id, {memo.cw_number}, "Delete")
    assert any("is applied in QuickBooks" in r for r in view.refusals), view.refusals
    [view] = preview(app, batch.id, {invoice.cw_number}, "Void", unlink=True)
    assert any("also applies credit memo" in r for r in view.refusals), view.refusals
    with session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        company.book_close_date = invoice.record_date + timedelta(days=1)
    [view] = preview(app, batch.id, {invoice.cw_number}, "Void")
    assert view.offered == ["None"]
    assert any("on or before the QuickBooks closing date" in r for r in view.refusals)
    [view] = preview(app, batch.id, {invoice.cw_number})  # the default falls back to None
    assert view.action == "None"
    with pytest.raises(unbatch.BatchRefused):
        start(app, batch.id, {memo.cw_number}, "Delete")
    assert {i.state for i in batch_of(app, batch.id)[1]} == {ItemState.DONE}


def test_more_than_ten_records_or_a_delete_asks_for_the_password():
    views = [unbatch.Preview(item=None, action="Void", offered=[]) for _ in range(11)]
    assert unbatch.needs_reauth(views)
    assert not unbatch.needs_reauth(views[:10])
    assert unbatch.needs_reauth([unbatch.Preview(item=None, action="Delete", offered=[])])


def test_unlinking_also_removes_portals_own_connectwise_payments(app, connected, qbo_sandbox,
                                                                 cw_sandbox):
    batch, [item] = post(app, {INVOICES[4]})
    _pay(app, item)
    with app.app_context(), session_scope(app) as session:
        cw = clients.connectwise(session)
        written = cw_payments.create(session, cw, invoice_id=item.cw_id, amount=Decimal("10"),
                                     day=date(2026, 11, 2), key=f"test:{item.qbo_id}")
        payment_id = str(written.result["id"])
        assert [p for p in cw.get(f"/finance/invoices/{item.cw_id}/payments")
                if str(p["id"]) == payment_id]
    start(app, batch.id, {item.cw_number}, "Delete", unlink=True)
    [request] = requests_of(app, batch.id)
    assert request.step == "done", request.message
    assert {"cw_payment": payment_id} in request.unlinked
    with app.app_context(), session_scope(app) as session:
        cw = clients.connectwise(session)
        assert not [p for p in cw.get(f"/finance/invoices/{item.cw_id}/payments")
                    if str(p["id"]) == payment_id]
        assert session.scalar(sa.select(AuditEvent).where(
            AuditEvent.action == "cw.payment.delete")) is not None


def test_an_accounting_batch_holding_other_records_is_refused(app, connected, qbo_sandbox,
                                                              cw_sandbox):
    batch, [item] = post(app, {INVOICES[0]})
    other = next(r for r in unposted(app) if r.number == INVOICES[1])
    with app.app_context(), session_scope(app) as session:
        cw = clients.connectwise(session)
        [held] = cw.get("/finance/accounting/batches",
                        conditions=f'batchIdentifier="{item.cw_batch_identifier}"')
        cw.request("DELETE", f"/finance/accounting/batches/{held['id']}")
        found = cw_invoices.export(cw, [item.cw_id, other.cw_id])
        gl_ids = [int(x) for tx in found.values() for x in tx["glEntryIds"].split(",")]
        cw.request("POST", "/finance/accounting/batches", json={
            "batchIdentifier": "MANUAL-TWO", "exportInvoicesFlag": True,
            "processedRecordIds": gl_ids})  # someone batched two invoices together in CW
        session.get(BatchItem, item.id).cw_batch_identifier = "MANUAL-TWO"
    [view] = preview(app, batch.id, {item.cw_number}, "Void")
    assert view.other_records and view.refusals == [
        "ConnectWise batch MANUAL-TWO also holds other records; unbatch it in ConnectWise."]


def test_a_lost_answer_to_the_void_is_looked_up_not_sent_again(app, connected, qbo_sandbox,
                                                                cw_sandbox):
    _qbo_sb, qbo_server = qbo_sandbox
    batch, [item] = post(app, {INVOICES[2]})
    start(app, batch.id, {item.cw_number}, "Void", run=False)
    fault(qbo_server, kind="drop_after_commit", method="POST", path_regex=r"/invoice$",
          count=1)
    run_jobs(app)
    clear_faults(qbo_server)
    [request] = requests_of(app, batch.id)
    assert request.step == "qbo" and "QuickBooks did not answer" in request.message
    voided = qbo_get(qbo_server, connected.realm_id, "Invoice", item.qbo_id)
    assert voided["PrivateNote"] == "Voided"  # the void landed; its answer did not
    assert batch_of(app, batch.id)[1][0].state is ItemState.UNBATCHING
    with app.app_context(), session_scope(app) as session:
        run = unbatch.retry(session, session.get(Batch, batch.id), None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.UNBATCH, run_id)
    run_jobs(app)
    [request] = requests_of(app, batch.id)
    assert request.step == "done", request.message
    again = qbo_get(qbo_server, connected.realm_id, "Invoice", item.qbo_id)
    assert again["SyncToken"] == voided["SyncToken"]  # looked up, not voided twice
    assert batch_of(app, batch.id)[1][0].state is ItemState.UNBATCHED
