"""The credit memo rule (SPEC 10.5) and the per-invoice target (10.4 steps 2-3) on SPEC's
worked example: P = invoice A 100 + invoice B 50 − credit memo C 80 (cash 70)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from portal.services.payments.allocation import (InvoiceOrder, Payment, RuleError,
                                                 target_for)

A, B, C = "101", "102", "301"
ORDER = {A: InvoiceOrder("2026-09-01", "1001"), B: InvoiceOrder("2026-09-02", "1002")}
EXAMPLE = Payment.of({"Id": "520", "TxnDate": "2026-09-15", "TotalAmt": 70, "Line": [
    {"Amount": 100, "LinkedTxn": [{"TxnId": A, "TxnType": "Invoice"}]},
    {"Amount": 50, "LinkedTxn": [{"TxnId": B, "TxnType": "Invoice"}]},
    {"Amount": 80, "LinkedTxn": [{"TxnId": C, "TxnType": "CreditMemo"}]}]})


def _target(invoice: str, mode: str, payments: list[Payment] | None = None,
            memo_map: dict | None = None, as_cash: bool = False):  # type: ignore[no-untyped-def]
    return target_for(invoice, payments or [EXAMPLE], mode=mode, order=ORDER,
                      memo_map={C: 9141} if memo_map is None else memo_map,
                      memo_numbers={C: "10141"}, unmapped_as_cash=as_cash,
                      payment_link=lambda pid: f"https://qbo.test/app/recvpayment?txnId={pid}",
                      home_currency="USD")


def test_error_mode_fails_every_invoice_of_the_payment_with_a_link():
    for invoice in (A, B):
        with pytest.raises(RuleError) as caught:
            _target(invoice, "Error")
        assert str(caught.value) == (
            "QuickBooks payment 520 (Id 520, dated 2026-09-15) applies credit memo 10141 to 2 "
            "invoices. Split it in QuickBooks into one payment per invoice, then run the sync "
            "again.")
        assert caught.value.link == "https://qbo.test/app/recvpayment?txnId=520"


def test_oldest_first_fills_the_oldest_invoice_first():
    a, b = _target(A, "AllocateOldestFirst"), _target(B, "AllocateOldestFirst")
    assert (a.credits, a.cash) == ({9141: D("80.00")}, D("20.00"))
    assert (b.credits, b.cash) == ({}, D("50.00"))
    assert a.cash_date == b.cash_date == date(2026, 9, 15)


def test_oldest_first_breaks_date_ties_by_doc_number():
    order = {A: InvoiceOrder("2026-09-01", "2000"), B: InvoiceOrder("2026-09-01", "1999")}
    b = target_for(B, [EXAMPLE], mode="AllocateOldestFirst", order=order,
                   memo_map={C: 9141}, memo_numbers={}, unmapped_as_cash=False)
    assert (b.credits, b.cash) == ({9141: D("50.00")}, D("0.00")) and b.cash_date is None


def test_proportional_splits_in_cents_with_the_remainder_on_the_largest_line():
    a, b = _target(A, "AllocateProportionally"), _target(B, "AllocateProportionally")
    assert (a.credits, a.cash) == ({9141: D("53.33")}, D("46.67"))
    assert (b.credits, b.cash) == ({9141: D("26.67")}, D("23.33"))
    assert a.credits[9141] + b.credits[9141] == D("80.00")


def test_a_payment_for_one_invoice_gives_it_all_its_credit_in_any_mode():
    single = Payment.of({"Id": "7", "TxnDate": "2026-10-01", "Line": [
        {"Amount": 100, "LinkedTxn": [{"TxnId": A, "TxnType": "Invoice"}]},
        {"Amount": 80, "LinkedTxn": [{"TxnId": C, "TxnType": "CreditMemo"}]}]})
    for mode in ("Error", "AllocateOldestFirst", "AllocateProportionally"):
        target = _target(A, mode, [single])
        assert (target.credits, target.cash) == ({9141: D("80.00")}, D("20.00"))


def test_payments_without_credit_take_their_own_lines_and_the_newest_date():
    p1 = Payment.of({"Id": "1", "TxnDate": "2026-11-01", "Line": [
        {"Amount": 250, "LinkedTxn": [{"TxnId": A, "TxnType": "Invoice"}]},
        {"Amount": 40, "LinkedTxn": [{"TxnId": B, "TxnType": "Invoice"}]}]})
    p2 = Payment.of({"Id": "2", "TxnDate": "2026-11-05", "Line": [
        {"Amount": 200, "LinkedTxn": [{"TxnId": A, "TxnType": "Invoice"}]}]})
    target = _target(A, "Error", [p2, p1])
    assert (target.cash, target.cash_date, target.payment_ids) == (
        D("450.00"), date(2026, 11, 5), ["1", "2"])


def test_a_quickbooks_only_credit_memo_is_warned_and_counts_as_cash_only_when_asked():
    single = Payment.of({"Id": "8", "TxnDate": "2026-10-01", "Line": [
        {"Amount": 100, "LinkedTxn": [{"TxnId": A, "TxnType": "Invoice"}]},
        {"Amount": 30, "LinkedTxn": [{"TxnId": C, "TxnType": "CreditMemo"}]}]})
    off = _target(A, "Error", [single], memo_map={C: None})
    on = _target(A, "Error", [single], memo_map={C: None}, as_cash=True)
    assert (off.credits, off.cash, off.unmapped_credit) == ({}, D("70.00"), D("30.00"))
    assert (on.credits, on.cash) == ({}, D("100.00"))
    assert "ConnectWise does not see it" in off.warnings[0]
    assert "counts as cash" in on.warnings[0]


def test_unapplied_credit_and_foreign_currency_are_warned():
    odd = Payment.of({"Id": "9", "TxnDate": "2026-10-01", "UnappliedAmt": 25,
                      "CurrencyRef": {"value": "EUR"}, "Line": [
                          {"Amount": 100, "LinkedTxn": [{"TxnId": A, "TxnType": "Invoice"}]}]})
    target = _target(A, "Error", [odd])
    assert target.cash == D("100.00")
    assert any("25.00 unapplied" in w for w in target.warnings)
    assert any("in EUR" in w for w in target.warnings)
