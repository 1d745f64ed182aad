"""The expense builder (SPEC 8): grouping, every document type, refunds, tax modes,
classes, member vendors and every error of SPEC 8.3. Pure: no database, no HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from portal.services.batching.builders import expense as B
from portal.services.batching.types.base import STAND_IN
from portal.services.company_settings import TaxCodeRow
from portal.services.mapping import MappingSet
from tests.unit.test_invoice_builder import make_settings, mapping_for, qbo, ref

US = B.Facts(is_us=True, class_tracking="line", multicurrency=False, home_currency="USD",
             name="Books Inc")
CA = replace(US, is_us=False, home_currency="CAD")
TOKEN = "ab" * 16
REFS = [
    qbo("Account", "1", "Accounts Payable", AccountType="Accounts Payable"),
    qbo("Account", "2", "Company Amex", AccountType="Credit Card"),
    qbo("Account", "3", "Operating Checking", AccountType="Bank"),
    qbo("Account", "4", "Employee Reimbursements", AccountType="Other Current Liability"),
    qbo("Account", "5", "Travel", AccountType="Expense"),
    qbo("Account", "6", "Travel:Meals", AccountType="Expense", ParentRef=ref("5")),
    qbo("Account", "7", "Travel:Mileage", AccountType="Expense", ParentRef=ref("5")),
    qbo("Account", "8", "Purchase Tax", AccountType="Expense"),
    qbo("Vendor", "20", "Alex Chen (V1001)"),
    qbo("Employee", "30", "Maria Garcia"),
    qbo("Class", "40", "East"), qbo("Class", "41", "West"),
    qbo("TaxCode", "50", "HST ON"),
]


def expense(eid: int, amount: str = "100.00", **changes: Any) -> B.Expense:
    values: dict[str, Any] = dict(
        id=eid, gl_ids=(1000 + 2 * eid, 1001 + 2 * eid), day=date(2026, 7, eid % 28 + 1),
        classification=B.REIMBURSABLE, member="achen", member_name="Alex Chen",
        amount=Decimal(amount), account="Travel:Meals", offset_account="Employee Reimbursements",
        vendor_number="V1001", type_name="Meals", memo="Lunch with client",
        company="Acme Corp", charge="Ticket #1001", payment_method="Paid by employee",
        ap_account="Accounts Payable", gl_class="East", currency="USD",
        period_start=date(2026, 7, 6), period_end=date(2026, 7, 12))
    values.update(changes)
    return B.Expense(**values)


def settings(**changes: Any):  # type: ignore[no-untyped-def]
    return make_settings(**changes)


def mapping(s: Any, refs: list[Any] | None = None) -> MappingSet:
    return mapping_for(s, REFS if refs is None else refs)


def build(group: B.Group, s: Any = None, facts: B.Facts = US,
          refs: list[Any] | None = None) -> B.Built:
    s = s or settings()
    return B.build(group, s, facts, mapping(s, refs), request_token=TOKEN)


def problems(group: B.Group, s: Any = None, facts: B.Facts = US,
             refs: list[Any] | None = None) -> list[tuple[str, str | None]]:
    s = s or settings()
    return [(p.message, p.hint) for p in B.check(group, "group", s, facts, mapping(s, refs))]


# ---- grouping (SPEC 8.1) -----------------------------------------------------------------

def test_reimbursable_expenses_group_by_member_and_report_period():
    other_week = dict(period_start=date(2026, 7, 13), period_end=date(2026, 7, 19))
    found = B.group([expense(1), expense(2), expense(3, **other_week),
                     expense(4, member="mgarcia", member_name="Maria Garcia")], settings())
    assert sorted(tuple(e.id for e in g.expenses) for g in found.groups) == [
        (1, 2), (3,), (4,)]
    assert found.held == []


def test_non_reimbursable_expenses_group_per_entry_or_per_report():
    card = dict(classification=B.NON_REIMBURSABLE, offset_account="Company Amex")
    rows = [expense(1, **card), expense(2, **card)]
    assert len(B.group(rows, settings()).groups) == 2
    per_report = B.group(rows, settings(non_reimbursable_grouping="PerReport"))
    assert [len(g.expenses) for g in per_report.groups] == [2]
    mixed = B.group([*rows, expense(3, classification=B.NON_REIMBURSABLE)],
                    settings(non_reimbursable_grouping="PerReport"))
    assert sorted(len(g.expenses) for g in mixed.groups) == [1, 2]  # another offset account


def test_personal_expenses_are_skipped_or_marked_only():
    personal = expense(1, classification=B.PERSONAL, offset_account="Company Amex")
    skipped = B.group([personal], settings())
    assert skipped.groups == [] and skipped.held == [(personal, "personal, skipped")]
    marked = B.group([personal], settings(personal_expenses="MarkOnly"))
    [group] = marked.groups
    built = build(group, settings(personal_expenses="MarkOnly"))
    assert built.entity is None and built.payload is None and built.note
    assert B.target(group, settings(), None) == "Marked only"


def test_unapproved_expenses_are_held_unless_synced():
    pending = expense(1, approved=False)
    assert B.group([pending, expense(2)], settings()).held == [(pending, "unapproved")]
    synced = B.group([pending, expense(2)], settings(sync_unapproved_expenses=True))
    assert [len(g.expenses) for g in synced.groups] == [2] and synced.held == []


# ---- documents (SPEC 8.2) --------------------------------------------------------------

def test_a_reimbursable_group_is_a_bill_to_the_member_vendor():
    group = B.Group(B.REIMBURSABLE, (expense(2, "40.50"), expense(1, "12.25",
                                                                 account="Travel:Mileage")))
    built = build(group)
    body = built.payload
    assert built.entity == "Bill" and built.doc_number == "E1002" == body["DocNumber"]
    assert (built.cw_total, built.cw_signed) == (Decimal("52.75"), Decimal("52.75"))
    assert body["VendorRef"] == {"value": "20"} and body["APAccountRef"] == {"value": "1"}
    assert body["TxnDate"] == "2026-07-12"  # the report period's end
    assert body["PrivateNote"].endswith(f"portal:{TOKEN}")
    assert [line["Amount"] for line in body["Line"]] == [40.5, 12.25]
    details = [line["AccountBasedExpenseLineDetail"] for line in body["Line"]]
    assert [d["AccountRef"]["value"] for d in details] == ["6", "7"]
    assert {d["BillableStatus"] for d in details} == {"NotBillable"}
    assert body["Line"][0]["Description"] == \
        "2026-07-03 Meals \u2013 Lunch with client [Acme Corp / Ticket #1001]"
    assert "ClassRef" not in details[0]  # classes off


def test_txn_date_falls_back_to_the_last_expense_date_and_descriptions_drop_empty_parts():
    group = B.Group(B.REIMBURSABLE, (expense(1, period_end=None, company="", charge=""),
                                     expense(5, period_end=None, charge="")))
    body = build(group).payload
    assert body["TxnDate"] == "2026-07-06"
    assert body["Line"][0]["Description"] == "2026-07-02 Meals \u2013 Lunch with client"
    assert body["Line"][1]["Description"].endswith("[Acme Corp]")


def test_with_bills_off_a_liability_offset_makes_a_balanced_journal_entry():
    s = settings(reimbursable_expenses_as_bills=False)
    group = B.Group(B.REIMBURSABLE, (expense(1, "30.00"), expense(2, "20.00")))
    built = build(group, s)
    assert built.entity == "JournalEntry" and B.target(group, s, mapping(s)) == "JournalEntry"
    lines = built.payload["Line"]
    postings = [(ln["JournalEntryLineDetail"]["PostingType"], ln["Amount"],
                 ln["JournalEntryLineDetail"]["AccountRef"]["value"]) for ln in lines]
    assert postings == [("Debit", 30.0, "6"), ("Debit", 20.0, "6"), ("Credit", 50.0, "4")]
    assert lines[-1]["JournalEntryLineDetail"]["Entity"] == {
        "Type": "Vendor", "EntityRef": {"value": "20"}}
    assert built.payload["DocNumber"] == "E1002"


def test_non_reimbursable_card_and_bank_offsets_make_purchases():
    card = B.Group(B.NON_REIMBURSABLE, (expense(1, classification=B.NON_REIMBURSABLE,
                                                offset_account="Company Amex"),))
    body = build(card).payload
    assert (body["PaymentType"], body["AccountRef"], body["Credit"]) == (
        "CreditCard", {"value": "2"}, False)
    assert body["EntityRef"] == {"value": "20", "type": "Vendor"}
    assert B.target(card, settings(), mapping(settings())) == "Purchase (card)"
    bank = B.Group(B.NON_REIMBURSABLE, (expense(1, classification=B.NON_REIMBURSABLE,
                                                offset_account="Operating Checking"),))
    cash = build(bank).payload
    assert (cash["PaymentType"], cash["AccountRef"]) == ("Cash", {"value": "3"})
    assert "Credit" not in cash
    liability = B.Group(B.NON_REIMBURSABLE, (expense(1, classification=B.NON_REIMBURSABLE),))
    assert build(liability).entity == "JournalEntry"


def test_refunds_become_vendor_credits_card_credits_and_swapped_journal_entries():
    refund = B.Group(B.REIMBURSABLE, (expense(1, "-35.00"),))
    credit = build(refund)
    assert credit.entity == "VendorCredit" and credit.payload["Line"][0]["Amount"] == 35.0
    assert (credit.cw_total, credit.cw_signed) == (Decimal("35.00"), Decimal("-35.00"))
    card = B.Group(B.NON_REIMBURSABLE, (expense(1, "-20.00", classification=B.NON_REIMBURSABLE,
                                                offset_account="Company Amex"),))
    body = build(card).payload
    assert body["Credit"] is True and body["Line"][0]["Amount"] == 20.0
    assert B.target(card, settings(), mapping(settings())) == "Purchase (card credit)"
    journal = build(B.Group(B.NON_REIMBURSABLE, (expense(
        1, "-15.00", classification=B.NON_REIMBURSABLE),)))
    assert [(ln["JournalEntryLineDetail"]["PostingType"], ln["Amount"])
            for ln in journal.payload["Line"]] == [("Credit", 15.0), ("Debit", 15.0)]


def test_a_group_with_a_refund_inside_keeps_each_line_in_its_own_sign():
    group = B.Group(B.REIMBURSABLE, (expense(1, "50.00"), expense(2, "-10.00")))
    assert [ln["Amount"] for ln in build(group).payload["Line"]] == [50.0, -10.0]
    s = settings(reimbursable_expenses_as_bills=False)
    postings = [(ln["JournalEntryLineDetail"]["PostingType"], ln["Amount"])
                for ln in build(group, s).payload["Line"]]
    assert postings == [("Debit", 50.0), ("Credit", 10.0), ("Credit", 40.0)]


def test_a_negative_group_on_a_bank_offset_is_refused_in_pre_flight():
    group = B.Group(B.NON_REIMBURSABLE, (expense(1, "-20.00", classification=B.NON_REIMBURSABLE,
                                                 offset_account="Operating Checking"),))
    [(message, hint)] = problems(group)
    assert "refund of 20.00 on bank account 'Operating Checking'" in message and hint


# ---- tax ---------------------------------------------------------------------------------

def test_us_purchase_tax_goes_as_a_line_to_the_purchase_tax_account():
    s = settings(purchase_tax_account="8")
    group = B.Group(B.REIMBURSABLE, (expense(1, "108.00", tax=Decimal("8.00")),))
    lines = build(group, s).payload["Line"]
    assert [(ln["Amount"], ln["AccountBasedExpenseLineDetail"]["AccountRef"]["value"])
            for ln in lines] == [(100.0, "6"), (8.0, "8")]
    assert "TaxCodeRef" not in lines[0]["AccountBasedExpenseLineDetail"]
    [(message, hint)] = problems(group, settings())
    assert "carries purchase tax 8.00" in message and "Purchase tax account" in hint


def test_non_us_purchase_tax_names_the_mapped_code_on_each_line():
    s = settings(purchase_tax_as_line_item=False,
                 tax_code_mappings=(TaxCodeRow("HST", "50"),))
    group = B.Group(B.REIMBURSABLE, (expense(1, "113.00", tax=Decimal("13.00"), tax_code="HST",
                                             currency="CAD"),))
    [line] = build(group, s, CA).payload["Line"]
    assert line["Amount"] == 100.0
    assert line["AccountBasedExpenseLineDetail"]["TaxCodeRef"] == {"value": "50"}
    unmapped = settings(purchase_tax_as_line_item=False)
    with pytest.raises(B.BuildError, match="tax code 'HST'"):
        build(group, unmapped, CA)


# ---- classes and currency -------------------------------------------------------------------

def test_classes_go_per_line_or_once_per_transaction():
    s = settings(use_classes=True)
    group = B.Group(B.REIMBURSABLE, (expense(1), expense(2, gl_class="West")))
    lines = build(group, s).payload["Line"]
    assert [ln["AccountBasedExpenseLineDetail"]["ClassRef"]["value"] for ln in lines] == [
        "40", "41"]
    txn = replace(US, class_tracking="txn")
    [(message, _hint)] = problems(group, s, txn)
    assert "one class per transaction" in message and "East, West" in message
    single = B.Group(B.REIMBURSABLE, (expense(1), expense(2)))
    body = build(single, s, txn).payload
    assert body["ClassRef"] == {"value": "40"}
    assert "ClassRef" not in body["Line"][0]["AccountBasedExpenseLineDetail"]


def test_a_foreign_currency_needs_multicurrency():
    group = B.Group(B.REIMBURSABLE, (expense(1, currency="EUR"),))
    [(message, hint)] = problems(group)
    assert "is in EUR" in message and "multicurrency" in hint
    body = build(group, facts=replace(US, multicurrency=True)).payload
    assert body["CurrencyRef"] == {"value": "EUR"}


# ---- member vendors and the errors of SPEC 8.3 -----------------------------------------------

def test_member_vendors_follow_the_append_account_rule_and_are_created_when_missing():
    group = B.Group(B.REIMBURSABLE, (expense(1, member="mgarcia", member_name="Maria Garcia",
                                             vendor_number="V1002"),))
    s = settings()
    [need] = B.needs(group, s, mapping(s))
    assert (need.kind, need.name, need.fields) == ("vendor", "Maria Garcia (V1002)",
                                                   {"CompanyName": "V1002"})
    preview = B.preview(group, s, US, mapping(s))
    assert preview.payload["VendorRef"] == {"value": f"{STAND_IN}vendor:Maria Garcia (V1002)"}
    off = settings(append_account_name=False)
    refs = [*REFS, qbo("Vendor", "21", "Alex Chen")]
    assert build(B.Group(B.REIMBURSABLE, (expense(1),)), off, refs=refs).payload[
        "VendorRef"] == {"value": "21"}
    never = settings(create_member_vendors=False)
    [(message, _hint)] = problems(group, never)
    assert "Maria Garcia (V1002)" in message and "does not exist" in message


def test_every_error_of_spec_8_3_with_its_hint():
    no_number = B.Group(B.REIMBURSABLE, (expense(1, member="kpatel", member_name="Kiran Patel",
                                                 vendor_number=None),))
    assert problems(no_number) == [("Member kpatel has no Vendor Nbr in ConnectWise.",
                                    "Set System › Members › Vendor Nbr.")]
    twin = B.Group(B.REIMBURSABLE, (expense(1, member="mgarcia", member_name="Maria Garcia",
                                            vendor_number="V1002"),))
    off = settings(append_account_name=False)
    [(message, hint)] = problems(twin, off)
    assert message == ("QuickBooks refused vendor 'Maria Garcia': an employee already uses "
                       "this name.")
    assert hint.startswith("Add a middle initial in CW, or turn on")
    assert problems(twin, settings()) == []  # appending the vendor number separates them
    card = B.Group(B.NON_REIMBURSABLE, (expense(1, classification=B.NON_REIMBURSABLE,
                                                offset_account="Corporate Visa",
                                                payment_method="Company card"),))
    assert problems(card) == [(
        "Offset account 'Corporate Visa' for payment method 'Company card' does not exist in "
        "QuickBooks.", "Create it, or fix the CW expense offset GL setup.")]
    lodging = B.Group(B.REIMBURSABLE, (expense(1, account="Travel:Lodging",
                                               type_name="Lodging"),))
    assert problems(lodging) == [(
        "Expense type 'Lodging' maps to GL account 'Travel:Lodging', which does not exist in "
        "QuickBooks.", "Fix the GL mapping in CW or the QBO chart of accounts.")]
    with pytest.raises(B.BuildError):
        build(lodging)  # never half-mapped
