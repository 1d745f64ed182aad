"""Payment sync end to end (SPEC 10): QuickBooks payments written through the real client,
a real RQ worker running the sync, ConnectWise checked in its sandbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from portal.db import session_scope
from portal.models import BatchStatus, PaymentStatus, PaymentSyncState
from portal.models.types import utcnow
from tests.integration.payments import (cash_rows, credit_rows, cw_invoice, cw_rows, items_of,
                                        qbo_credit_memo, qbo_delete, qbo_edit_payment,
                                        qbo_invoice, qbo_payment, qbo_void, run_sync,
                                        save_settings, shape_cw_invoice)

pytestmark = pytest.mark.integration
INVOICE, MEMO = 87, 142  # ConnectWise invoice 10087 and credit memo 10142 (one customer)
D = Decimal


def _paid(cw_sandbox, invoice_id: int) -> tuple[D, D, D]:  # type: ignore[no-untyped-def]
    inv = cw_invoice(cw_sandbox, invoice_id)
    return D(str(inv["payments"])), D(str(inv["credits"])), D(str(inv["balance"]))


def test_partial_payments_converge_step_by_step(app, connected, cw_sandbox, qbo_sandbox):
    """SPEC 10.6's regression case: one cash row that follows QuickBooks, never two."""
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    shape_cw_invoice(cw_sandbox, MEMO, "-100.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)

    p1 = qbo_payment(app, "2026-11-01", ("Invoice", invoice["Id"], "300.00"))
    batch_id = run_sync(app, since=since)
    batch, items = items_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].warnings
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-01")]

    p2 = qbo_payment(app, "2026-11-05", ("Invoice", invoice["Id"], "200.00"))
    run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("500.00"), "2026-11-05")]

    qbo_edit_payment(app, p1, ("Invoice", invoice["Id"], "250.00"))
    run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("450.00"), "2026-11-05")]

    qbo_delete(app, "Payment", p2)
    run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("250.00"), "2026-11-01")]

    memo = qbo_credit_memo(app, "10142", "100.00")
    qbo_payment(app, "2026-11-07", ("Invoice", invoice["Id"], "100.00"),
                ("CreditMemo", memo["Id"], "100.00"))
    batch_id = run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("250.00"), "2026-11-01")]
    assert credit_rows(cw_sandbox, INVOICE) == [(MEMO, D("100.00"))]
    cash, credits, balance = _paid(cw_sandbox, INVOICE)
    assert (cash, credits, balance) == (D("250.00"), D("100.00"), D("650.00"))
    _batch, items = items_of(app, batch_id)
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].warnings
    assert items["10087"].after["balance"] == "650.00"

    # convergence: a second run on unchanged data writes nothing
    before = cash_rows(cw_sandbox, INVOICE), credit_rows(cw_sandbox, INVOICE)
    batch_id = run_sync(app, since=since)
    _batch, items = items_of(app, batch_id)
    assert items["10087"].actions == [] and items["10087"].status is PaymentStatus.DONE
    assert (cash_rows(cw_sandbox, INVOICE), credit_rows(cw_sandbox, INVOICE)) == before


# ---- SPEC 10.5's worked example: P = A 100 + B 50 − credit memo C 80 (cash 70) -----------

A_ID, B_ID, C_ID = 87, 88, 142  # ConnectWise 10087, 10088 and credit memo 10142


def _worked_example(app, cw_sandbox):  # type: ignore[no-untyped-def]
    shape_cw_invoice(cw_sandbox, A_ID, "100.00")
    shape_cw_invoice(cw_sandbox, B_ID, "50.00")
    shape_cw_invoice(cw_sandbox, C_ID, "-80.00")
    a = qbo_invoice(app, "10087", "100.00", day="2026-09-01")
    b = qbo_invoice(app, "10088", "50.00", day="2026-09-02")
    c = qbo_credit_memo(app, "10142", "80.00")
    payment = qbo_payment(app, "2026-09-15", ("Invoice", a["Id"], "100.00"),
                          ("Invoice", b["Id"], "50.00"), ("CreditMemo", c["Id"], "80.00"))
    return payment


@pytest.mark.parametrize("mode, a_rows, b_rows", [
    ("AllocateOldestFirst", ([("20.00", "2026-09-15")], [(C_ID, "80.00")]),
     ([("50.00", "2026-09-15")], [])),
    ("AllocateProportionally", ([("46.67", "2026-09-15")], [(C_ID, "53.33")]),
     ([("23.33", "2026-09-15")], [(C_ID, "26.67")])),
])
def test_each_allocation_mode_on_the_worked_example(app, connected, cw_sandbox, qbo_sandbox,
                                                    mode, a_rows, b_rows):
    save_settings(app, credit_memo_multi_invoice=mode)
    since = utcnow() - timedelta(minutes=1)
    _worked_example(app, cw_sandbox)
    batch_id = run_sync(app, since=since)
    batch, items = items_of(app, batch_id)
    for invoice_id, (cash, credits) in ((A_ID, a_rows), (B_ID, b_rows)):
        assert cash_rows(cw_sandbox, invoice_id) == [(D(a), d) for a, d in cash]
        assert credit_rows(cw_sandbox, invoice_id) == [(m, D(a)) for m, a in credits]
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].warnings
    assert items["10088"].status is PaymentStatus.DONE, items["10088"].warnings
    assert run_sync(app, since=since) and cash_rows(cw_sandbox, A_ID) == [
        (D(a), d) for a, d in a_rows[0]]  # converged: nothing moves


def test_error_mode_fails_both_invoices_and_leaves_connectwise_unchanged(
        app, connected, cw_sandbox, qbo_sandbox):
    since = utcnow() - timedelta(minutes=1)
    payment = _worked_example(app, cw_sandbox)
    batch_id = run_sync(app, since=since)
    batch, items = items_of(app, batch_id)
    assert batch.colour == "red"
    for number in ("10087", "10088"):
        item = items[number]
        assert item.status is PaymentStatus.FAILED
        assert item.message.startswith(f"QuickBooks payment {payment['Id']} (Id "
                                       f"{payment['Id']}, dated 2026-09-15) applies credit "
                                       "memo 10142 to 2 invoices.")
        assert item.fix_link.endswith(f"/app/recvpayment?txnId={payment['Id']}")
    assert cw_rows(cw_sandbox, A_ID) == [] and cw_rows(cw_sandbox, B_ID) == []
    with session_scope(app) as session:
        state = session.get(PaymentSyncState, connected.id)
        assert {items["10087"].qbo_invoice_id, items["10088"].qbo_invoice_id} <= set(
            state.retry_set)
        assert state.cursor_at is not None  # the cursor moves even with failures
    # the retry set is synced again by the next run, even with nothing new in QuickBooks
    batch_id = run_sync(app)
    _batch, again = items_of(app, batch_id)
    assert again["10087"].status is PaymentStatus.FAILED


@pytest.mark.parametrize("as_cash, cash", [(False, "70.00"), (True, "100.00")])
def test_a_quickbooks_only_credit_memo(app, connected, cw_sandbox, qbo_sandbox, as_cash, cash):
    save_settings(app, unmapped_credit_as_payment=as_cash)
    shape_cw_invoice(cw_sandbox, A_ID, "100.00")
    since = utcnow() - timedelta(minutes=1)
    invoice = qbo_invoice(app, "10087", "100.00")
    write_off = qbo_credit_memo(app, "WO-77", "30.00")
    qbo_payment(app, "2026-10-01", ("Invoice", invoice["Id"], "100.00"),
                ("CreditMemo", write_off["Id"], "30.00"))
    batch_id = run_sync(app, since=since)
    _batch, items = items_of(app, batch_id)
    assert cash_rows(cw_sandbox, A_ID) == [(D(cash), "2026-10-01")]
    assert credit_rows(cw_sandbox, A_ID) == []
    item = items["10087"]
    assert item.status is PaymentStatus.WARNING
    assert any("QuickBooks-only credit memo WO-77" in w for w in item.warnings)
    assert any("Paid amounts differ" in w for w in item.warnings) is (not as_cash)


def _foreign(cw_sandbox, invoice_id: int, amount: str,  # type: ignore[no-untyped-def]
             wisepay: bool = False) -> int:
    """A payment entered in ConnectWise (or paid through WisePay), not by portal."""
    sandbox, server = cw_sandbox
    creds = sandbox.credentials
    answer = requests.post(
        f"{server.url}/v4_6_release/apis/3.0/finance/invoices/{invoice_id}/payments",
        json={"amount": float(amount), "paymentDate": "2026-10-03T00:00:00Z"},
        auth=(f"{creds['company_id']}+{creds['public_key']}", creds["private_key"]),
        headers={"clientId": creds["client_id"]}, timeout=5)
    assert answer.status_code == 201, answer.text
    row = answer.json()
    if wisepay:
        with sandbox.store.lock:
            sandbox.store.tables["payments"][row["id"]]["wisePayPayment"] = {
                "paymentDateUtc": "2026-10-03T14:00:00Z", "wisePayReference": "WP-1",
                "batchPayment": {"amount": float(amount), "wisePayHref": "https://pay.test/1"}}
    return row["id"]


@pytest.mark.parametrize("authority, wisepay, kept", [
    ("QuickBooks", False, False), ("KeepManual", False, True), ("QuickBooks", True, True)])
def test_foreign_rows_under_each_authority(app, connected, cw_sandbox, qbo_sandbox, authority,
                                           wisepay, kept):
    save_settings(app, cw_payment_authority=authority)
    shape_cw_invoice(cw_sandbox, A_ID, "100.00")
    foreign = _foreign(cw_sandbox, A_ID, "40.00", wisepay)
    since = utcnow() - timedelta(minutes=1)
    invoice = qbo_invoice(app, "10087", "100.00")
    qbo_payment(app, "2026-10-05", ("Invoice", invoice["Id"], "60.00"))
    batch_id = run_sync(app, since=since)
    _batch, items = items_of(app, batch_id)
    item = items["10087"]
    assert item.status is PaymentStatus.WARNING
    ids = [r["id"] for r in cw_rows(cw_sandbox, A_ID)]
    if kept:
        assert ids == [foreign]  # kept, and portal wrote no cash beside it
        assert any("was kept" in w for w in item.warnings)
        assert any("portal wrote no cash" in w for w in item.warnings)
    else:
        assert foreign not in ids
        assert cash_rows(cw_sandbox, A_ID) == [(D("60.00"), "2026-10-05")]
        assert any("was removed" in w for w in item.warnings)
    cash, credits, _balance = _paid(cw_sandbox, A_ID)
    assert cash + credits <= D("100.00")


def test_a_voided_invoice_loses_its_payments_but_never_a_wisepay_row(
        app, connected, cw_sandbox, qbo_sandbox):
    shape_cw_invoice(cw_sandbox, A_ID, "100.00")
    shape_cw_invoice(cw_sandbox, B_ID, "50.00")
    wisepay = _foreign(cw_sandbox, B_ID, "10.00", wisepay=True)
    since = utcnow() - timedelta(minutes=1)
    a = qbo_invoice(app, "10087", "100.00")
    b = qbo_invoice(app, "10088", "50.00")
    paid_a = qbo_payment(app, "2026-10-05", ("Invoice", a["Id"], "60.00"))
    run_sync(app, since=since)
    assert cash_rows(cw_sandbox, A_ID) == [(D("60.00"), "2026-10-05")]
    qbo_delete(app, "Payment", paid_a)
    qbo_void(app, "Invoice", a)
    qbo_void(app, "Invoice", b)
    batch_id = run_sync(app)
    _batch, items = items_of(app, batch_id)
    assert cw_rows(cw_sandbox, A_ID) == []
    assert [r["id"] for r in cw_rows(cw_sandbox, B_ID)] == [wisepay]
    for number in ("10087", "10088"):
        assert items[number].status is PaymentStatus.WARNING
        assert any("voided in QuickBooks" in w for w in items[number].warnings)


def test_the_demo_data_set_syncs_with_its_curated_cases(app, connected, cw_sandbox,
                                                        qbo_sandbox):
    from portal.sandbox.demo_data import CURATED

    q = CURATED["quickbooks"]
    batch_id = run_sync(app)  # the first run: from 7 days ago
    batch, items = items_of(app, batch_id)
    assert set(q["paid_invoice_numbers"]) <= set(items)
    assert batch.colour == "red"  # the credit memo payment under the default Error rule
    for number in q["credit_memo_payment"]["invoice_numbers"]:
        assert items[number].status is PaymentStatus.FAILED
        assert "Split it in QuickBooks" in items[number].message
    over = items[q["overpaid_invoice_number"]]
    assert any("25.00 unapplied credit" in w for w in over.warnings)
    wisepay = items[q["wisepay_invoice_number"]]
    assert any("WisePay" in w for w in wisepay.warnings) and wisepay.actions == []
    partly = items[q["partially_paid_invoice_numbers"][1]]
    assert partly.status is PaymentStatus.DONE and len(partly.qbo_payment_ids) == 2
    cash, _credits, balance = _paid(cw_sandbox, partly.cw_invoice_id)
    assert cash == partly.qbo_applied and balance > 0


def test_the_payment_sync_settings_of_the_sales_tab_take_effect(app, client, connected,
                                                                cw_sandbox, qbo_sandbox):
    from portal.sandbox.demo_data import CURATED

    # use_cdc off: the changes are found by paged queries
    save_settings(app, use_cdc=False, match_invoices_by_docnumber=False)
    batch_id = run_sync(app)
    batch, items = items_of(app, batch_id)
    assert batch.options["method"] == "query"
    # match_invoices_by_docnumber off: QuickBooks invoices portal did not post are left out
    assert items == {} and batch.options["not_mapped"] >= 20 and batch.colour == "green"
    save_settings(app, use_cdc=True, match_invoices_by_docnumber=True,
                  payment_sync_overlap_minutes=10)
    batch_id = run_sync(app)
    batch, items = items_of(app, batch_id)
    assert batch.options["method"] == "cdc"
    assert set(CURATED["quickbooks"]["paid_invoice_numbers"]) <= set(items)
    # the overlap moves the preloaded start back from the cursor
    with session_scope(app) as session:
        cursor = session.get(PaymentSyncState, connected.id).cursor_at
    page = client.get(f"/payments/{connected.id}/sync").get_data(as_text=True)
    assert f'value="{(cursor - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")}"' in page


def test_a_voided_invoice_loses_foreign_payments_even_when_kept_by_hand(
        app, connected, cw_sandbox, qbo_sandbox):
    save_settings(app, cw_payment_authority="KeepManual")
    shape_cw_invoice(cw_sandbox, A_ID, "100.00")
    _foreign(cw_sandbox, A_ID, "40.00")
    since = utcnow() - timedelta(minutes=1)
    invoice = qbo_invoice(app, "10087", "100.00")
    qbo_void(app, "Invoice", invoice)
    batch_id = run_sync(app, since=since)
    _batch, items = items_of(app, batch_id)
    assert cw_rows(cw_sandbox, A_ID) == []
    assert any("voided in QuickBooks" in w for w in items["10087"].warnings)
