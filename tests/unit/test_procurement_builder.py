"""The procurement builder and the vendor invoice number rule: SPEC 9 case by case.

Pure: the reference cache is transient QboRef rows, the ConnectWise records are GL export
parts shaped as CW-REF §11 and the vendor sample (`glexport_procurement.derived.json`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from portal.services.batching.builders import inventory_journal as j
from portal.services.batching.builders import procurement as b
from portal.services.batching.types.base import CompanyFacts, Context, Planned, Record
from portal.services.batching.types.procurement import (
    export_calls,
    judge_numbers,
    record_of_row,
)
from portal.services.mapping import MappingSet, Prefs
from tests.unit.test_invoice_builder import make_settings, qbo, ref

D = Decimal
US = b.Facts(is_us=True, class_tracking="line", multicurrency=False, home_currency="USD")
CANADA = b.Facts(is_us=False, class_tracking="none", multicurrency=False, home_currency="CAD")
CACHE = [
    qbo("Vendor", "100", "Ingram Micro (INGRAM)"),
    qbo("Vendor", "101", "TD Synnex (SYNNEX)"),
    qbo("Account", "10", "Accounts Payable"),
    qbo("Account", "11", "Inventory Asset"),
    qbo("Account", "12", "Cost of Goods Sold"),
    qbo("Account", "13", "Cost of Goods Sold:Hardware", ParentRef=ref("12")),
    qbo("Account", "14", "Cost of Goods Sold:Freight In", ParentRef=ref("12")),
    qbo("Account", "15", "Cost of Goods Sold:Inventory Shrinkage", ParentRef=ref("12")),
    qbo("Account", "16", "Sales:Hardware"),
    qbo("Account", "17", "Purchase Tax"),
    qbo("Item", "20", "LAPTOP", Type="Inventory"),
    qbo("Item", "21", "CABLE", Type="NonInventory"),
    qbo("Item", "22", "Freight", Type="Service"),
    qbo("Class", "30", "East"),
    qbo("Class", "31", "West"),
    qbo("Term", "50", "Net 30", DueDays=30),
    qbo("TaxCode", "60", "GST"),
]


def mapping(settings: Any, refs: list[Any] | None = None,
            overrides: dict[tuple[str, str], str] | None = None) -> MappingSet:
    prefs = Prefs(**{n: getattr(settings, n) for n in Prefs.__dataclass_fields__})
    return MappingSet(CACHE if refs is None else refs, overrides or {}, prefs)


def detail(item: str, qty: float, cost: float, *, xref: str = "Inventory Part",
           drop: bool = False, klass: str = "East", number: int = 1, **extra: Any
           ) -> dict[str, Any]:
    """A purchase detail line as ConnectWise exports it: quantity and total negative."""
    return {"id": 1000 + number, "glTypeId": "RP", "glClass": klass,
            "item": {"id": number, "identifier": item}, "quantity": -qty, "itemCost": cost,
            "cost": cost, "total": round(-qty * cost, 2), "accountNumber": "Sales:Hardware",
            "costAccountNumber": "Cost of Goods Sold:Hardware",
            "inventoryAccountNumber": "Inventory Asset", "itemTypeXref": xref,
            "itemDescription": f"{item} description", "dropShippedFlag": drop,
            "lineNumber": number, **extra}


def purchase(*lines: dict[str, Any], vin: str = "INV-1", freight: float = 0.0,
             total: float | None = None, drop: bool = False, **extra: Any) -> dict[str, Any]:
    amount = round(-sum(ln["total"] for ln in lines) + freight, 2) if total is None else total
    return {"id": "PO #NW-PO-0001, Packing Slip: PS-1", "documentNumber": "NW-PO-0001",
            "documentDate": "2026-09-03T00:00:00", "purchaseDate": "2026-08-28T00:00:00",
            "vendorInvoiceDate": "2026-09-04T00:00:00", "vendorInvoiceNumber": vin,
            "company": {"id": 7, "identifier": "Ingram Micro", "name": "Ingram Micro"},
            "vendorAccountNumber": "INGRAM", "apAccountNumber": "Accounts Payable",
            "billingTerms": {"id": 1, "name": "Net 30"}, "billingTermsXref": "Net 30",
            "dueDays": 30, "freightAmount": freight, "dropshipFlag": drop, "total": amount,
            "packingSlip": "PS-1", "purchaseDetail": list(lines), "purchaseDetailTax": [],
            **extra}


def receipt(p: dict[str, Any], **kw: Any) -> b.Receipt:
    return b.Receipt(p, None, kw.pop("first_closed", None),
                     kw.pop("freight_account", "Cost of Goods Sold:Freight In"))


def build(p: dict[str, Any], settings: Any = None, facts: b.Facts = US,
          doc: str | None = "INV-1", **kw: Any) -> b.Built:
    settings = settings or make_settings()
    return b.build_receipt(receipt(p, **kw), settings, facts, mapping(settings),
                           request_token="t" * 32, doc_number=doc)


# ---- the Bill -------------------------------------------------------------------------------

def test_a_receipt_becomes_a_bill_to_the_vendor_with_terms_and_due_date() -> None:
    built = build(purchase(detail("LAPTOP", 2, 980.0)))
    assert built.entity == "Bill" and built.doc_number == "INV-1"
    p = built.payload
    assert p["VendorRef"] == {"value": "100"} and p["APAccountRef"] == {"value": "10"}
    assert p["SalesTermRef"] == {"value": "50"}
    assert p["TxnDate"] == "2026-09-04" and p["DueDate"] == "2026-10-04"
    assert p["DocNumber"] == "INV-1" and p["PrivateNote"].endswith("portal:" + "t" * 32)
    line = p["Line"][0]
    assert line["DetailType"] == "ItemBasedExpenseLineDetail" and line["Amount"] == 1960.0
    assert line["ItemBasedExpenseLineDetail"]["ItemRef"] == {"value": "20"}
    assert line["ItemBasedExpenseLineDetail"]["Qty"] == 2.0
    assert line["ItemBasedExpenseLineDetail"]["UnitPrice"] == 980.0
    assert "BillableStatus" not in line["ItemBasedExpenseLineDetail"]
    assert built.cw_total == D("1960.00")


def test_a_return_becomes_a_vendor_credit_with_positive_amounts() -> None:
    line = detail("LAPTOP", 1, 980.0)
    line.update(quantity=1.0, total=980.0)  # a return: the signs turn round
    built = build(purchase(line, total=-980.0, vin="CM-1"), doc="CM-1")
    assert built.entity == "VendorCredit" and built.cw_total == D("980.00")
    assert built.cw_signed == D("-980.00")
    entry = built.payload["Line"][0]
    assert entry["Amount"] == 980.0 and entry["ItemBasedExpenseLineDetail"]["Qty"] == 1.0
    assert "SalesTermRef" not in built.payload and "DueDate" not in built.payload


def test_a_blank_vendor_invoice_number_sends_no_doc_number() -> None:
    built = build(purchase(detail("LAPTOP", 1, 980.0), vin="  "), doc=None)
    assert "DocNumber" not in built.payload and built.doc_number is None
    assert b.vin(purchase(vin="  ")) == ""


@pytest.mark.parametrize(("source", "first_closed", "expected"), [
    ("VendorInvoiceDate", None, "2026-09-04"),
    ("PurchaseDate", None, "2026-08-28"),
    ("DocumentDate", None, "2026-09-03"),
    ("DocumentDate", date(2026, 8, 30), "2026-08-30"),  # first closed, not re-closed
])
def test_txn_date_per_vendor_invoice_date_source(source: str, first_closed: date | None,
                                                 expected: str) -> None:
    built = build(purchase(detail("LAPTOP", 1, 980.0)),
                  make_settings(vendor_invoice_date_source=source), first_closed=first_closed)
    assert built.payload["TxnDate"] == expected and not built.warnings


def test_a_blank_vendor_invoice_date_falls_back_to_the_document_date_with_a_warning() -> None:
    built = build(purchase(detail("LAPTOP", 1, 980.0), vendorInvoiceDate=""))
    assert built.payload["TxnDate"] == "2026-09-03"
    assert "no vendor invoice date" in built.warnings[0]


def test_drop_ship_lines_are_not_billable() -> None:
    built = build(purchase(detail("LAPTOP", 1, 980.0, drop=True), drop=True))
    assert built.payload["Line"][0]["ItemBasedExpenseLineDetail"]["BillableStatus"] == \
        "NotBillable"


def test_classes_per_line_when_used() -> None:
    settings = make_settings(use_classes=True)
    built = build(purchase(detail("LAPTOP", 1, 980.0, klass="West")), settings)
    assert built.payload["Line"][0]["ItemBasedExpenseLineDetail"]["ClassRef"] == \
        {"value": "31"}


def test_freight_as_an_account_line_or_as_the_freight_item() -> None:
    p = purchase(detail("LAPTOP", 1, 980.0), freight=45.0)
    account = build(p)
    line = account.payload["Line"][-1]
    assert line["DetailType"] == "AccountBasedExpenseLineDetail" and line["Amount"] == 45.0
    assert line["AccountBasedExpenseLineDetail"]["AccountRef"] == {"value": "14"}
    item = build(p, make_settings(freight_posting="Item"))
    line = item.payload["Line"][-1]
    assert line["ItemBasedExpenseLineDetail"]["ItemRef"] == {"value": "22"}
    assert item.cw_total == D("1025.00")


def test_freight_item_is_created_as_a_service_item_when_missing() -> None:
    settings = make_settings(freight_posting="Item", freight_item_name="Shipping")
    needs = b.receipt_needs(receipt(purchase(detail("LAPTOP", 1, 980.0), freight=45.0)),
                            settings, mapping(settings))
    assert [(n.kind, n.name, n.fields["Type"]) for n in needs] == [
        ("item", "Shipping", "Service")]


def test_freight_without_a_freight_account_is_refused() -> None:
    settings = make_settings()
    problems = b.check_receipt(receipt(purchase(detail("LAPTOP", 1, 980.0), freight=45.0),
                                       freight_account=None),
                               settings, US, mapping(settings), "receipt")
    assert "no freight GL account" in problems[0].message


def test_us_purchase_tax_as_an_account_line() -> None:
    tax = [{"id": 9, "total": -12.5, "accountNumber": "Purchase Tax"}]
    settings = make_settings(purchase_tax_as_line_item=True, purchase_tax_account="17")
    built = build(purchase(detail("CABLE", 10, 10.0, xref="Non-Inventory Part"),
                           total=112.5, purchaseDetailTax=tax), settings)
    line = built.payload["Line"][-1]
    assert line["AccountBasedExpenseLineDetail"]["AccountRef"] == {"value": "17"}
    assert line["Amount"] == 12.5 and built.cw_tax == D("12.50")
    off = make_settings(purchase_tax_as_line_item=False)
    problems = b.check_receipt(receipt(purchase(detail("CABLE", 10, 10.0), total=112.5,
                                                purchaseDetailTax=tax)),
                               off, US, mapping(off), "receipt")
    assert any("takes no tax codes" in p.message for p in problems)
    none = make_settings(purchase_tax_as_line_item=True, purchase_tax_account=None)
    problems = b.check_receipt(receipt(purchase(detail("CABLE", 10, 10.0), total=112.5,
                                                purchaseDetailTax=tax)),
                               none, US, mapping(none), "receipt")
    assert any("no purchase tax account" in p.message for p in problems)


def test_non_us_purchase_tax_uses_the_mapped_line_codes() -> None:
    settings = make_settings(purchase_tax_as_line_item=False, unmapped_tax_codes="UseCwXref")
    built = build(purchase(detail("CABLE", 10, 10.0, taxCodeXref="GST")), settings,
                  facts=CANADA)
    assert built.payload["Line"][0]["ItemBasedExpenseLineDetail"]["TaxCodeRef"] == \
        {"value": "60"}
    assert built.payload["GlobalTaxCalculation"] == "TaxExcluded"
    problems = b.check_receipt(receipt(purchase(detail("CABLE", 1, 10.0, taxCodeXref="HST"))),
                               settings, CANADA, mapping(settings), "receipt")
    assert problems[0].message == ("ConnectWise tax code 'HST' of PO NW-PO-0001 is not mapped "
                                   "to a QuickBooks tax code.")



def test_non_us_purchase_tax_lines_are_net_and_the_tax_is_left_to_the_codes() -> None:
    """The receipt's total holds the tax; the lines go net, with their code, and no account
    line, so QuickBooks' tax from the codes makes up the total."""
    settings = make_settings(purchase_tax_as_line_item=False, unmapped_tax_codes="UseCwXref")
    tax = [{"id": 9, "total": -5.0, "accountNumber": "GST Payable"}]
    built = build(purchase(detail("CABLE", 10, 10.0, taxCodeXref="GST"), total=105.0,
                           purchaseDetailTax=tax), settings, facts=CANADA)
    [line] = built.payload["Line"]
    assert line["Amount"] == 100.0 and line["ItemBasedExpenseLineDetail"]["TaxCodeRef"] == \
        {"value": "60"}
    assert built.cw_total == D("105.00") and built.cw_tax == D("5.00")
    with pytest.raises(b.BuildError, match="add up to 105.00, but ConnectWise.s total is 107"):
        build(purchase(detail("CABLE", 10, 10.0, taxCodeXref="GST"), total=107.0,
                       purchaseDetailTax=tax), settings, facts=CANADA)

# ---- references: vendor, items with costing accounts ----------------------------------------

def test_missing_items_are_created_with_the_costing_accounts() -> None:
    settings = make_settings(inventory_parts_as="Inventory",
                             inventory_start_date=date(2026, 1, 1))
    p = purchase(detail("Hardware:DOCK", 1, 150.0))
    needs = {(n.kind, n.name): n for n in b.receipt_needs(receipt(p), settings,
                                                          mapping(settings))}
    assert needs[("item", "Hardware")].fields["Type"] == "Category"
    dock = needs[("item", "Hardware:DOCK")].fields
    assert dock["Type"] == "Inventory" and dock["income_account"] == "Sales:Hardware"
    assert dock["cost_account"] == "Cost of Goods Sold:Hardware"
    assert dock["asset_account"] == "Inventory Asset"
    assert dock["inventory_start_date"] == "2026-01-01"


def test_costing_accounts_fall_back_to_the_inventory_tab() -> None:
    settings = make_settings(inventory_parts_as="Inventory", cogs_account="12",
                             inventory_asset_account="11")
    line = detail("DOCK", 1, 150.0, costAccountNumber="", inventoryAccountNumber="")
    fields = b.item_fields(line, settings)
    assert fields["cost_account_id"] == "12" and fields["asset_account_id"] == "11"


def test_a_missing_inventory_asset_account_is_an_error() -> None:
    settings = make_settings(inventory_parts_as="Inventory", inventory_asset_account=None)
    line = detail("DOCK", 1, 150.0, inventoryAccountNumber="")
    problems = b.check_receipt(receipt(purchase(line)), settings, US, mapping(settings),
                               "receipt")
    assert problems[0].message == "Inventory asset account for item 'DOCK' is missing."
    assert "inventory_asset_account" not in problems[0].hint  # named by its label


def test_create_items_off_makes_a_missing_item_an_error() -> None:
    settings = make_settings(create_items=False)
    problems = b.check_receipt(receipt(purchase(detail("DOCK", 1, 150.0))), settings, US,
                               mapping(settings), "receipt")
    assert problems[0].kind == "item" and problems[0].status == "missing"


def test_the_vendor_near_miss_names_both_spellings() -> None:
    settings = make_settings()
    refs = [r for r in CACHE if r.qbo_id != "100"] + [qbo("Vendor", "102",
                                                          "INGRAM MICRO (INGRAM)")]
    problems = b.check_receipt(receipt(purchase(detail("LAPTOP", 1, 980.0))), settings, US,
                               mapping(settings, refs), "receipt")
    assert problems[0].message == ("Vendor 'Ingram Micro (INGRAM)' has no exact match; "
                                   "QuickBooks has 'INGRAM MICRO (INGRAM)'.")


def test_a_new_vendor_is_created_per_create_vendors() -> None:
    settings = make_settings()
    refs = [r for r in CACHE if r.qbo_id != "100"]
    needs = b.receipt_needs(receipt(purchase(detail("LAPTOP", 1, 980.0))), settings,
                            mapping(settings, refs))
    assert [(n.kind, n.name) for n in needs] == [("vendor", "Ingram Micro (INGRAM)")]
    off = make_settings(create_vendors=False)
    problems = b.check_receipt(receipt(purchase(detail("LAPTOP", 1, 980.0))), off, US,
                               mapping(off, refs), "receipt")
    assert problems[0].kind == "vendor" and problems[0].status == "missing"


def test_an_inventory_part_that_is_non_inventory_in_quickbooks_is_a_warning() -> None:
    p = purchase(detail("CABLE", 1, 10.0, xref="Inventory Part"))
    built = build(p, make_settings(inventory_parts_as="Inventory"))
    assert built.warnings == ["Item 'CABLE' is NonInventory in QuickBooks but 'Inventory "
                              "Part' in ConnectWise."]
    # inventory parts are meant to be NonInventory here: nothing to warn about
    assert build(p, make_settings(inventory_parts_as="NonInventory")).warnings == []


def test_lines_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(b.BuildError, match="add up to"):
        build(purchase(detail("LAPTOP", 1, 980.0), total=999.0))


# ---- adjustments and transfers (SPEC 9.4) ------------------------------------------------

def adjustment(qty: int, cost: float) -> dict[str, Any]:
    return {"id": "1", "documentDate": "2026-10-01T00:00:00", "glTypeID": "IA",
            "accountNumber": "Cost of Goods Sold:Inventory Shrinkage", "glClass": "East",
            "adjustmentDetail": [{"glClass": "East", "item": {"id": 1, "identifier": "LAPTOP"},
                                  "quantity": qty, "cost": cost, "total": qty * cost,
                                  "inventoryAccountNumber": "Inventory Asset",
                                  "accountNumber": "Cost of Goods Sold:Inventory Shrinkage"}]}


def journal(legs: list[j.Leg], settings: Any = None) -> b.Built:
    settings = settings or make_settings()
    return j.build_journal(legs, settings, US, mapping(settings), doc_number="A1",
                           day=date(2026, 10, 1), what="adjustment A1", request_token="t" * 32)


def postings(built: b.Built) -> dict[str, tuple[str, float]]:
    return {ln["JournalEntryLineDetail"]["AccountRef"]["value"]:
            (ln["JournalEntryLineDetail"]["PostingType"], ln["Amount"])
            for ln in built.payload["Line"]}


def test_a_positive_adjustment_debits_the_inventory_asset() -> None:
    built = journal(j.adjustment_legs(adjustment(25, 10.0)))
    assert built.entity == "JournalEntry" and built.doc_number == "A1"
    assert postings(built) == {"11": ("Debit", 250.0), "15": ("Credit", 250.0)}
    assert built.payload["TxnDate"] == "2026-10-01"


def test_a_negative_adjustment_credits_the_inventory_asset() -> None:
    built = journal(j.adjustment_legs(adjustment(-1, 980.0)))
    assert postings(built) == {"11": ("Credit", 980.0), "15": ("Debit", 980.0)}
    assert built.cw_total == D("980.00")


def transfer(from_class: str, to_class: str, to_account: str = "Inventory Asset"
             ) -> dict[str, Any]:
    return {"id": "1", "documentDate": "2026-10-05T00:00:00", "accountNumber": to_account,
            "inventoryAccountNumber": to_account, "glClass": to_class, "quantity": 3.0,
            "cost": 980.0, "total": 2940.0, "item": {"id": 1, "identifier": "LAPTOP"},
            "offset": {"accountNumber": "Inventory Asset", "glClass": from_class,
                       "total": -2940.0}}


def test_a_transfer_between_classes_moves_the_value() -> None:
    settings = make_settings(use_classes=True)
    built = journal(j.transfer_legs(transfer("East", "West")), settings)
    classes = {ln["JournalEntryLineDetail"]["ClassRef"]["value"]:
               ln["JournalEntryLineDetail"]["PostingType"] for ln in built.payload["Line"]}
    assert classes == {"31": "Debit", "30": "Credit"}


def test_a_transfer_between_accounts_moves_the_value() -> None:
    built = journal(j.transfer_legs(transfer("East", "West",
                                             to_account="Cost of Goods Sold:Hardware")))
    assert postings(built) == {"13": ("Debit", 2940.0), "11": ("Credit", 2940.0)}


def test_a_transfer_with_both_sides_the_same_has_no_accounting_effect() -> None:
    built = journal(j.transfer_legs(transfer("East", "West")))  # classes not used
    assert built.entity is None and built.payload is None
    assert "no accounting effect" in (built.note or "")


# ---- the vendor invoice number rule (SPEC 9.2) ------------------------------------------

def _ctx(**settings: Any) -> Context:
    s = make_settings(**settings)
    facts = CompanyFacts(1, "Northwind", True, False, True, "line", False, "USD", True, None,
                         True)
    return Context(facts, s, mapping(s))


def _receipt_record(key: str, vin: str, vendor: str = "Ingram Micro",
                    vendor_id: str = "INGRAM") -> Record:
    return Record(key=f"rcv:NW-PO-0003:{key}", cw_id=1, number="NW-PO-0003",
                  day=date(2026, 9, 1), kind="Purchase",
                  party=vendor, total=D("10"), source_refs=(vin, vendor_id, "3", key))


def _judge(ctx: Context, records: list[Record],
           holders: dict[tuple[str, str], list[dict[str, Any]]]
           ) -> tuple[dict[str, str], dict[str, Any]]:
    from portal.services.batching.types.procurement import PROCUREMENT

    plans = {r.key: PROCUREMENT.planned(r, ctx) for r in records}
    chosen, problems = judge_numbers([r.key for r in records], plans, holders, {},
                                     {r.key: r.key.rsplit(":", 1)[1] for r in records},
                                     {r.key: r for r in records}, ctx)
    short = {k.rsplit(":", 1)[1]: v for k, v in chosen.items()}
    return short, {k.rsplit(":", 1)[1]: v for k, v in problems.items()}


BILL_OF_SYNNEX = {"Id": "900", "DocNumber": "INV-1", "VendorRef": {"value": "101",
                                                                   "name": "TD Synnex"}}
BILL_OF_INGRAM = {"Id": "901", "DocNumber": "INV-1", "VendorRef": {"value": "100",
                                                                   "name": "Ingram"}}


def test_a_number_on_any_vendors_bill_blocks_the_receipt() -> None:
    chosen, problems = _judge(_ctx(), [_receipt_record("r1", "INV-1")],
                              {("Bill", "INV-1"): [BILL_OF_SYNNEX]})
    assert chosen == {} and problems["r1"].message.startswith(
        "Vendor invoice number INV-1 is already on QuickBooks bill Id 900 (vendor TD Synnex).")


def test_same_vendor_scope_ignores_other_vendors_bills() -> None:
    ctx = _ctx(vin_uniqueness_scope="SameVendor")
    chosen, problems = _judge(ctx, [_receipt_record("r1", "INV-1")],
                              {("Bill", "INV-1"): [BILL_OF_SYNNEX]})
    assert chosen == {"r1": "INV-1"} and not problems
    chosen, problems = _judge(ctx, [_receipt_record("r1", "INV-1")],
                              {("Bill", "INV-1"): [BILL_OF_INGRAM]})
    assert "bill Id 901" in problems["r1"].message


def test_refuse_mode_refuses_the_second_partial_receipt_of_a_selection() -> None:
    records = [_receipt_record("r1", "INV-1"), _receipt_record("r2", "INV-1")]
    chosen, problems = _judge(_ctx(), records, {})
    assert chosen == {"r1": "INV-1"} and list(problems) == ["r2"]
    assert "r1 in this selection" in problems["r2"].message


def test_suffix_mode_numbers_further_receipts_vin_2_vin_3() -> None:
    ctx = _ctx(partial_receipt_mode="SuffixDocNumber")
    records = [_receipt_record(f"r{n}", "INV-1") for n in (1, 2, 3)]
    chosen, problems = _judge(ctx, records, {("Bill", "INV-1"): [BILL_OF_INGRAM]})
    assert chosen == {"r1": "INV-1-2", "r2": "INV-1-3", "r3": "INV-1-4"} and not problems


def test_suffix_mode_still_respects_21_characters() -> None:
    ctx = _ctx(partial_receipt_mode="SuffixDocNumber")
    long = "X" * 21
    chosen, problems = _judge(ctx, [_receipt_record("r1", long)],
                              {("Bill", long): [BILL_OF_INGRAM]})
    assert chosen == {} and "r1" in problems


def test_blank_numbers_are_not_planned() -> None:
    from portal.services.batching.types.procurement import PROCUREMENT

    assert PROCUREMENT.planned(_receipt_record("r1", ""), _ctx()) is None
    plan = PROCUREMENT.planned(_receipt_record("r1", "V"), _ctx(
        partial_receipt_mode="SuffixDocNumber"))
    assert isinstance(plan, Planned) and plan.candidates[:2] == ("V-2", "V-3")


# ---- listing rows and export calls -------------------------------------------------------

def _row(n: int, kind: str = "Purchase", po: str = "NW-PO-0003", total: float = 10.0
         ) -> dict[str, Any]:
    return {"id": 4000 + n, "unpostedProductId": str(n), "procurementType": kind,
            "purchaseOrder": {"id": 3, "name": po}, "vendor": {"id": 7, "name": "Ingram"},
            "vendorInvoiceNumber": "INV-1", "total": total, "dateClosed": "2026-09-01T00:00:00Z"}


def test_rows_become_records_of_three_kinds() -> None:
    receipt_ = record_of_row(_row(1))
    ret = record_of_row(_row(2, total=-5.0))
    adj = record_of_row(_row(3, "Adjustment"))
    xfr = record_of_row(_row(4, "Transfer"))
    assert receipt_.key == "rcv:NW-PO-0003:1" and receipt_.gl_entry_ids == (4001,)
    assert ret.kind == "Return" and adj.key == "adj:3" and adj.number == "A3"
    assert xfr.key == "xfr:4" and xfr.number == "T4"
    from portal.services.batching.types.procurement import PROCUREMENT

    assert PROCUREMENT.identifier(receipt_, date(2026, 9, 2)) == "2026-09-02-PNW-PO-0003"
    assert PROCUREMENT.identifier(adj, date(2026, 9, 2)) == "2026-09-02-A3"
    assert PROCUREMENT.identifier(xfr, date(2026, 9, 2)) == "2026-09-02-T4"
    assert PROCUREMENT.entry_field_of(xfr) == "transfer"


def test_two_receipts_of_one_po_never_share_an_export_call() -> None:
    records = [record_of_row(_row(1)), record_of_row(_row(2)), record_of_row(_row(3, po="X"))]
    calls = export_calls(records)
    assert [[r.key for r in c] for c in calls] == [
        ["rcv:NW-PO-0003:1", "rcv:X:3"], ["rcv:NW-PO-0003:2"]]
