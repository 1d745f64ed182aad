"""Contract: every record kind the ConnectWise sandbox serves carries the fields real answers do.

The field lists are the vendor's 2025.1 schemas copied into portal/sandbox/connectwise/
schema_fields.py (source noted there). For each kind, over real HTTP:

- no record has a field its schema lacks;
- every record carries every flag and amount (real answers send false and 0, see the
  samples), unless the sandbox declares the field null;
- every field of the schema is sent by some record, or declared null in
  portal/sandbox/connectwise/defaults.py (the real API leaves nulls out);
- every field of a real ConnectWise answer (tests/sandbox/connectwise/data/*.real.json) is
  sent by the sandbox for that kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portal.sandbox.connectwise.defaults import VALUES
from portal.sandbox.connectwise.resources import COLLECTIONS
from portal.sandbox.connectwise.schema_fields import SCHEMAS
from portal.sandbox.connectwise.views import VIEW_SCHEMA

pytestmark = pytest.mark.contract
DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parents[1] / "sandbox" / "connectwise" / "data"
REAL_SAMPLES = {"invoice.real.json": "Invoice", "product_item.real.json": "ProductItem",
                "expense_entry.real.json": "ExpenseEntry",
                "unposted_invoice.real.json": "UnpostedInvoice"}
# GL export parts the sandbox never produces: expenses go over as expenses, not bills, and
# invoice lines carry no tax levels of their own.
NOT_PRODUCED = ("GLExportExpenseBill", "GLExportExpenseBillDetail",
                "GLExportTransactionDetailTaxLevel")
GL_PARTS = {"customers": "GLExportCustomer", "vendors": "GLExportVendor",
            "transactions": "GLExportTransaction", "expenses": "GLExportExpense",
            "expenseBills": "GLExportExpenseBill",
            "purchaseTransactions": "GLExportPurchaseTransaction",
            "adjustmentTransactions": "GLExportAdjustmentTransaction",
            "inventoryTransfers": "GLExportInventoryTransfer"}


@pytest.fixture()
def read(api):  # type: ignore[no-untyped-def]
    """The JSON of a call that must succeed; lists are read 1,000 records at a time."""
    def call(method: str, path: str, **kwargs: Any) -> Any:
        if method == "GET":
            kwargs.setdefault("params", {"pageSize": 1000})
        answer = api(method, "/" + path, **kwargs)
        assert answer.status_code in (200, 201), (path, answer.status_code, answer.text[:300])
        return answer.json()

    return call


def _nested(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    out = []
    for record in records:
        value = record.get(key)
        out += value if isinstance(value, list) else [value] if value else []
    return out


def _served(api) -> dict[str, list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """Records of every kind the sandbox serves, as a client reads them."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for path, (_table, schema, _perm) in COLLECTIONS.items():
        kinds[schema] = api("GET", path)
    kinds["Info"] = [api("GET", "system/info")]
    kinds["CompanySite"] = [s for c in kinds["Company"]
                            for s in api("GET", f"company/companies/{c['id']}/sites")]
    kinds["TaxCodeLevel"] = [lv for t in kinds["TaxCode"]
                             for lv in api("GET", f"finance/taxCodes/{t['id']}/taxCodeLevels")]
    unposted = api("GET", "finance/accounting/unpostedinvoices")
    open_invoice = next(r for r in unposted if r["total"] > 0)
    api("POST", f"finance/invoices/{open_invoice['billingLogId']}/payments",
        json={"type": "Payment", "amount": 10, "paymentDate": "2026-11-02T00:00:00Z"})
    for name, schema in VIEW_SCHEMA.items():
        rows = api("GET", f"finance/accounting/unposted{name}")
        kinds[schema] = rows
        kinds[schema + "TaxableLevel"] = [
            lv for r in rows for lv in api(
                "GET", f"finance/accounting/unposted{name}/{r['id']}/taxableLevels")]
    kinds["UnpostedPayments"] = api("GET", "finance/accounting/unpostedpayments")
    kinds["AccountingBatch"] = api("GET", "finance/accounting/batches")
    kinds["BatchEntry"] = [e for b in kinds["AccountingBatch"]
                           for e in api("GET", f"finance/accounting/batches/{b['id']}/entries")]
    kinds["Invoice"] = api("GET", "finance/invoices")
    kinds["GLEntry"] = [e for i in kinds["Invoice"]
                        for e in api("GET", f"finance/invoices/{i['id']}/glentries")]
    kinds["InvoicePayment"] = api("GET", f"finance/invoices/{open_invoice['billingLogId']}/"
                                          "payments")
    kinds["PurchaseOrder"] = api("GET", "procurement/purchaseorders")
    kinds["PurchaseOrderLineItem"] = [
        li for po in kinds["PurchaseOrder"]
        for li in api("GET", f"procurement/purchaseorders/{po['id']}/lineitems")]
    export = api("POST", "finance/accounting/export", json={
        "exportInvoicesFlag": True, "exportExpensesFlag": True, "exportProductsFlag": True,
        "thruDate": "2030-01-01T00:00:00Z"})
    kinds["GLExport"] = [export]
    for key, schema in GL_PARTS.items():
        kinds[schema] = export[key]
    for parent, key, schema in (
            ("GLExportTransaction", "detail", "GLExportTransactionDetail"),
            ("GLExportTransaction", "taxLevels", "GLExportTransactionTaxLevel"),
            ("GLExportTransactionDetail", "taxLevels", "GLExportTransactionDetailTaxLevel"),
            ("GLExportCustomer", "taxLevels", "GLExportCustomerTaxLevel"),
            ("GLExportExpense", "offset", "GLExportExpenseOffset"),
            ("GLExportExpenseBill", "detail", "GLExportExpenseBillDetail"),
            ("GLExportPurchaseTransaction", "purchaseDetail", "GLExportPurchaseTransactionDetail"),
            ("GLExportPurchaseTransaction", "purchaseDetailTax",
             "GLExportPurchaseTransactionDetailTax"),
            ("GLExportPurchaseTransaction", "taxLevels", "GLExportPurchaseTransactionTaxLevel"),
            ("GLExportAdjustmentTransaction", "adjustmentDetail",
             "GLExportAdjustmentTransactionDetail"),
            ("GLExportInventoryTransfer", "offset", "GLExportInventoryTransferOffset")):
        kinds[schema] = _nested(kinds[parent], key)
    return kinds


def _declared_null(schema: str) -> set[str]:
    return {name for name, value in VALUES.get(schema, {}).items() if value is None}


def test_every_record_kind_carries_the_fields_of_its_schema(read):
    kinds = _served(read)
    for schema in NOT_PRODUCED:
        assert kinds.pop(schema) == [], f"{schema} is produced now: add it to the checks"
    empty = sorted(schema for schema, records in kinds.items() if not records)
    assert empty == ["UnpostedExpenseTaxableLevel"]
    problems = []
    for schema, records in sorted(kinds.items()):
        if not records:
            continue
        fields = SCHEMAS[schema]
        nulls = _declared_null(schema)
        always = {f for f, kind in fields.items() if kind in ("bool", "num")} - nulls
        seen: set[str] = set()
        for record in records:
            seen |= set(record)
            unknown = set(record) - set(fields)
            if unknown:
                problems.append(f"{schema} {record.get('id')}: not in the schema {sorted(unknown)}")
            lacking = always - set(record)
            if lacking:
                problems.append(f"{schema} {record.get('id')}: no flag or amount {sorted(lacking)}")
        unaccounted = set(fields) - seen - nulls
        if unaccounted:
            problems.append(f"{schema}: never sent and not declared null {sorted(unaccounted)}")
        stale = nulls - set(fields)
        if stale:
            problems.append(f"{schema}: declared null but not in the schema {sorted(stale)}")
    assert problems == [], "\n".join(problems)
    assert len(kinds) >= 45


def test_fields_of_real_answers_are_sent(read):
    kinds = _served(read)
    for name, schema in REAL_SAMPLES.items():
        real = json.loads((SAMPLES / name).read_text())
        seen = {key for record in kinds[schema] for key in record}
        assert set(real) - seen == set(), (name, sorted(set(real) - seen))
        assert set(real) <= set(SCHEMAS[schema]), name


def test_the_schema_copy_matches_the_openapi_copy():
    """Both copies come from the same 2025.1 spec; their field names must agree."""
    spec = json.loads((DATA / "cw_openapi_responses.json").read_text())
    compared = 0
    for name, schema in spec["components"]["schemas"].items():
        if name in SCHEMAS and schema.get("properties"):
            assert set(schema["properties"]) == set(SCHEMAS[name]), name
            compared += 1
    assert compared >= 40
