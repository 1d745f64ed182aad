"""The documents expense and procurement batches post (SPEC 8.2, 9.2): Bill, VendorCredit,
Purchase and JournalEntry, with the validation and queries of QBO-REF §6 and §14.3-14.5."""

from __future__ import annotations

from conftest import company

VENDOR = {"VendorRef": {"value": "50"}}
CARD = {"Id": "70", "Name": "Company Visa", "AccountType": "Credit Card"}
OWED = {"Id": "71", "Name": "Employee Reimbursements", "AccountType": "Other Current Liability"}
PAYABLE = {"Id": "72", "Name": "Accounts Payable (A/P)", "AccountType": "Accounts Payable"}


def _code(answer) -> str:  # type: ignore[no-untyped-def]
    return answer.json()["Fault"]["Error"][0]["code"]


def _line(amount: float, account: str = "60", **detail):  # type: ignore[no-untyped-def]
    return {"DetailType": "AccountBasedExpenseLineDetail", "Amount": amount,
            "Description": "2026-02-03 Meals – lunch", "AccountBasedExpenseLineDetail": {
                "AccountRef": {"value": account}, "BillableStatus": "NotBillable", **detail}}


def _je(debit: float, credit: float, doc: str = "E100", entity: bool = True):  # type: ignore[no-untyped-def]
    credit_detail = {"PostingType": "Credit", "AccountRef": {"value": "71"}}
    if entity:
        credit_detail["Entity"] = {"Type": "Vendor", "EntityRef": {"value": "50"}}
    return {"DocNumber": doc, "TxnDate": "2026-02-03", "PrivateNote": "portal:abc", "Line": [
        {"DetailType": "JournalEntryLineDetail", "Amount": debit, "Description": "Meals",
         "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "60"}}},
        {"DetailType": "JournalEntryLineDetail", "Amount": credit,
         "JournalEntryLineDetail": credit_detail}]}


def _data():  # type: ignore[no-untyped-def]
    return company({"Account": [CARD, OWED, PAYABLE],
                    "Vendor": [{"Id": "51", "DisplayName": "Second Vendor"}]})


def test_a_bill_to_the_member_vendor_totals_its_lines_and_is_found_by_doc_number(launch):
    qbo = launch(_data())
    body = {**VENDOR, "DocNumber": "E100", "TxnDate": "2026-02-03", "PrivateNote": "portal:abc",
            "APAccountRef": {"value": "72"}, "Line": [_line(12.5), _line(7.25)]}
    bill = qbo.post("bill", body).json()["Bill"]
    assert (bill["TotalAmt"], bill["Balance"], bill["DocNumber"]) == (19.75, 19.75, "E100")
    assert bill["APAccountRef"]["value"] == "72" and bill["PrivateNote"] == "portal:abc"
    assert [line["AccountBasedExpenseLineDetail"]["BillableStatus"]
            for line in bill["Line"]] == ["NotBillable", "NotBillable"]
    assert _code(qbo.post("bill", body)) == "6140"  # the same vendor's number
    assert qbo.post("bill", {**body, "VendorRef": {"value": "51"}}).status_code == 200
    found = qbo.query("select * from Bill where DocNumber = 'E100'").json()["QueryResponse"]
    assert sorted(b["VendorRef"]["value"] for b in found["Bill"]) == ["50", "51"]
    by_date = qbo.query("select * from Bill where TxnDate = '2026-02-03'").json()
    assert len(by_date["QueryResponse"]["Bill"]) == 2
    assert _code(qbo.post("bill", {"Line": [_line(1)]})) == "2020"
    assert _code(qbo.post("bill", {**VENDOR, "Line": [_line(1, account="999")]})) == "2500"


def test_card_purchases_charge_and_refund_and_cash_purchases_need_their_type(launch):
    qbo = launch(_data())
    charge = {"PaymentType": "CreditCard", "AccountRef": {"value": "70"},
              "EntityRef": {"value": "50", "type": "Vendor"}, "DocNumber": "E200",
              "TxnDate": "2026-02-04", "Line": [_line(30)]}
    made = qbo.post("purchase", charge).json()["Purchase"]
    assert (made["TotalAmt"], made["Credit"], made["EntityRef"]["name"]) == (
        30.0, False, "Books by Bessie")
    refund = qbo.post("purchase", {**charge, "DocNumber": "E201", "Credit": True}).json()
    assert refund["Purchase"]["Credit"] is True and refund["Purchase"]["TotalAmt"] == 30.0
    cash = qbo.post("purchase", {**charge, "PaymentType": "Cash", "AccountRef": {"value": "35"},
                                 "DocNumber": "E202"}).json()["Purchase"]
    assert cash["PaymentType"] == "Cash" and cash["AccountRef"]["name"] == "Checking"
    assert _code(qbo.post("purchase", {**charge, "DocNumber": "E203",
                                       "PaymentType": None})) == "2020"
    assert _code(qbo.post("purchase", {**charge, "DocNumber": "E203",
                                       "PaymentType": "Card"})) == "2170"
    assert _code(qbo.post("purchase", {**charge, "DocNumber": "E203",
                                       "AccountRef": None})) == "2020"
    assert _code(qbo.post("purchase", charge)) == "6140"  # per transaction type
    found = qbo.query("select * from Purchase where DocNumber = 'E201'").json()
    assert [p["Id"] for p in found["QueryResponse"]["Purchase"]] == [refund["Purchase"]["Id"]]


def test_journal_entries_balance_and_keep_the_vendor_on_the_credit_line(launch):
    qbo = launch(_data())
    made = qbo.post("journalentry", _je(40, 40)).json()["JournalEntry"]
    credit = made["Line"][1]["JournalEntryLineDetail"]
    assert made["TotalAmt"] == 40.0 and credit["Entity"]["EntityRef"]["name"] == "Books by Bessie"
    assert _code(qbo.post("journalentry", _je(40, 39, doc="E301"))) == "6000"
    assert _code(qbo.post("journalentry", _je(-40, -40, doc="E302"))) == "2290"
    assert _code(qbo.post("journalentry", _je(40, 40))) == "6140"
    found = qbo.query("select * from JournalEntry where DocNumber = 'E100'").json()
    assert [j["Id"] for j in found["QueryResponse"]["JournalEntry"]] == [made["Id"]]
    payable = _je(5, 5, doc="E303", entity=False)
    payable["Line"][1]["JournalEntryLineDetail"]["AccountRef"] = {"value": "72"}
    answer = qbo.post("journalentry", payable)
    assert _code(answer) == "6000" and "vendor" in answer.json()["Fault"]["Error"][0]["Detail"]
