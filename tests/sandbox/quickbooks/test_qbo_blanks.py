"""Empty values on writes: QuickBooks reads "" (or null) in a date, number, flag, enumeration or
reference as "not sent" and fills the field as it would if it were left out; a real refusal
(a malformed date, a required field left empty) stays a refusal."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from conftest import company
from portal.sandbox.common import SimClock
from portal.sandbox.quickbooks.blanks import BLANK_KINDS
from portal.sandbox.quickbooks.field_kinds import FIELD_KINDS

SALES_LINE = [{"DetailType": "SalesItemLineDetail", "Amount": 100.0,
               "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
EXPENSE_LINE = [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 10.0,
                 "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "60"}}}]
JOURNAL_LINES = [{"DetailType": "JournalEntryLineDetail", "Amount": 10.0,
                  "JournalEntryLineDetail": {"PostingType": side, "AccountRef": {"value": acct}}}
                 for side, acct in (("Debit", "39"), ("Credit", "44"))]
MINIMAL: dict[str, dict[str, Any]] = {
    "Account": {"Name": "Blank Test", "AccountType": "Expense"},
    "Class": {"Name": "Blank Class"},
    "Department": {"Name": "Blank Location"},
    "Term": {"Name": "Net 15", "DueDays": 15},
    "Customer": {"DisplayName": "Blank Customer"},
    "Vendor": {"DisplayName": "Blank Vendor"},
    "Employee": {"GivenName": "Blank", "FamilyName": "Person"},
    "Item": {"Name": "Blank Item", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
    "Invoice": {"CustomerRef": {"value": "1"}, "Line": SALES_LINE},
    "CreditMemo": {"CustomerRef": {"value": "1"}, "Line": SALES_LINE},
    "SalesReceipt": {"CustomerRef": {"value": "1"}, "Line": SALES_LINE},
    "Bill": {"VendorRef": {"value": "50"}, "Line": EXPENSE_LINE},
    "VendorCredit": {"VendorRef": {"value": "50"}, "Line": EXPENSE_LINE},
    "Purchase": {"PaymentType": "Cash", "AccountRef": {"value": "35"}, "Line": EXPENSE_LINE},
    "JournalEntry": {"Line": JOURNAL_LINES},
    "Payment": {"CustomerRef": {"value": "1"}, "TotalAmt": 10.0},
}
# 2026-03-02 05:00 UTC is still 2026-03-01 in the company's (Pacific) time.
EVENING = datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc).timestamp()


def _code(answer) -> str:
    return answer.json()["Fault"]["Error"][0]["code"]


def _blanked(entity: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[list[str]]]:
    """`body` with "" in every date, number, flag and enumeration it does not fill itself,
    down the objects and lines it has, and an empty value in its optional references."""
    out = {**body, "Line": [{**line, **{k: dict(v) for k, v in line.items()
                                        if isinstance(v, dict)}} for line in body.get("Line", [])]}
    if not body.get("Line"):
        out.pop("Line")
    paths = [path.split(".") for path, kind in FIELD_KINDS[entity].items()
             if kind in BLANK_KINDS]
    for parts in paths:
        _set_blank(out, parts)
    out["ClassRef"] = {"value": ""}
    out["DepartmentRef"] = ""
    return out, paths


def _set_blank(node: Any, parts: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _set_blank(item, parts)
    elif isinstance(node, dict):
        if len(parts) == 1:
            node.setdefault(parts[0], "")
        elif isinstance(node.get(parts[0]), (dict, list)):
            _set_blank(node[parts[0]], parts[1:])


def _values(node: Any, parts: list[str]) -> list[Any]:
    if isinstance(node, list):
        return [v for item in node for v in _values(item, parts)]
    if not isinstance(node, dict) or parts[0] not in node:
        return []
    return [node[parts[0]]] if len(parts) == 1 else _values(node[parts[0]], parts[1:])


@pytest.mark.parametrize("entity", sorted(MINIMAL))
def test_empty_typed_fields_are_taken_as_not_sent(launch, entity):
    qbo = launch(company())
    body, paths = _blanked(entity, MINIMAL[entity])
    assert any(v == "" for parts in paths for v in _values(body, parts))
    answer = qbo.post(entity.lower(), body)
    assert answer.status_code == 200, answer.text
    saved = answer.json()[entity]
    left = {".".join(p): v for p in paths for v in _values(saved, p) if v in ("", None)}
    assert left == {}
    assert "ClassRef" not in saved and "DepartmentRef" not in saved


def test_empty_dates_on_an_invoice_are_filled_as_if_left_out(launch):
    qbo = launch(company(), clock=SimClock(start=EVENING))
    qbo.sandbox.clock.freeze()
    sent = {"CustomerRef": {"value": "1"}, "Line": SALES_LINE, "SalesTermRef": {"value": "3"},
            "TxnDate": "", "DueDate": "", "ShipDate": ""}
    answer = qbo.post("invoice", sent)
    assert answer.status_code == 200, answer.text
    invoice = answer.json()["Invoice"]
    assert invoice["TxnDate"] == "2026-03-01"  # today in the company's time, not UTC's
    assert invoice["DueDate"] == "2026-03-31"  # Net 30 from TxnDate
    assert "ShipDate" not in invoice
    omitted = qbo.post("invoice", {k: v for k, v in sent.items() if v != ""}).json()["Invoice"]
    assert (omitted["TxnDate"], omitted["DueDate"]) == (invoice["TxnDate"], invoice["DueDate"])


def test_empty_txn_date_on_every_transaction_gets_today(launch):
    qbo = launch(company(), clock=SimClock(start=EVENING))
    qbo.sandbox.clock.freeze()
    for entity in ("Invoice", "CreditMemo", "SalesReceipt", "Bill", "VendorCredit", "Purchase",
                   "JournalEntry", "Payment"):
        answer = qbo.post(entity.lower(), {**MINIMAL[entity], "TxnDate": ""})
        assert answer.status_code == 200, (entity, answer.text)
        assert answer.json()[entity]["TxnDate"] == "2026-03-01", entity
    bill = qbo.post("bill", {**MINIMAL["Bill"], "TxnDate": None, "DueDate": None}).json()["Bill"]
    assert bill["TxnDate"] == "2026-03-01" and bill["DueDate"] == "2026-03-01"


def test_sparse_update_with_empty_dates_keeps_the_stored_ones(launch):
    qbo = launch(company())
    invoice = qbo.post("invoice", {**MINIMAL["Invoice"], "TxnDate": "2026-01-10",
                                   "DueDate": "2026-02-10", "ShipDate": "2026-01-12"}).json()["Invoice"]
    answer = qbo.post("invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"],
                                  "sparse": True, "TxnDate": "", "DueDate": "", "ShipDate": "",
                                  "PrivateNote": "changed"})
    assert answer.status_code == 200, answer.text
    updated = answer.json()["Invoice"]
    assert (updated["TxnDate"], updated["DueDate"], updated["ShipDate"]) == (
        "2026-01-10", "2026-02-10", "2026-01-12")
    assert updated["PrivateNote"] == "changed"


def test_real_refusals_stay(launch):
    qbo = launch(company())
    for field in ("TxnDate", "DueDate", "ShipDate"):
        bad = qbo.post("invoice", {**MINIMAL["Invoice"], field: "2026-13-45"})
        assert _code(bad) == "2060" and bad.json()["Fault"]["Error"][0]["element"] == field
    bad_line_date = {**SALES_LINE[0], "SalesItemLineDetail": {
        "ItemRef": {"value": "1"}, "ServiceDate": "not a date"}}
    assert _code(qbo.post("invoice", {**MINIMAL["Invoice"], "Line": [bad_line_date]})) == "2060"
    assert _code(qbo.post("invoice", {**MINIMAL["Invoice"], "CustomerRef": {"value": ""}})) == "2020"
    assert _code(qbo.post("payment", {**MINIMAL["Payment"], "TotalAmt": ""})) == "2020"
    assert _code(qbo.post("purchase", {**MINIMAL["Purchase"], "PaymentType": ""})) == "2020"
    unposted = [{**JOURNAL_LINES[0], "JournalEntryLineDetail": {
        **JOURNAL_LINES[0]["JournalEntryLineDetail"], "PostingType": ""}}, JOURNAL_LINES[1]]
    assert _code(qbo.post("journalentry", {"Line": unposted})) == "2260"
    inventory = {"Name": "Laptop", "Type": "Inventory", "IncomeAccountRef": {"value": "1"},
                 "ExpenseAccountRef": {"value": "44"}, "AssetAccountRef": {"value": "2"},
                 "TrackQtyOnHand": True, "QtyOnHand": 5, "InvStartDate": ""}
    missing = qbo.post("item", inventory)
    assert _code(missing) == "2020" and missing.json()["Fault"]["Error"][0]["element"] == \
        "InvStartDate"
    assert _code(qbo.post("customer", {"DisplayName": ""})) == "6080"


def test_empty_preference_date_is_not_stored(launch):
    qbo = launch(company())
    prefs = qbo.get("preferences").json()["Preferences"]
    answer = qbo.post("preferences", {"SyncToken": prefs["SyncToken"], "sparse": True,
                                      "AccountingInfoPrefs": {"BookCloseDate": ""}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["Preferences"]["AccountingInfoPrefs"].get("BookCloseDate", None) != ""
