"""Unposted views: which records the Accounting Interface lists, built from invoices, expenses and receipts."""

from __future__ import annotations

from typing import Any

from .defaults import complete
from .store import Store

OWNER_TABLE = {"invoice": "invoices", "expense": "expense_entries", "receipt": "receipts",
               "adjustment": "adjustments", "transfer": "transfers"}
OWNER_VIEW = {"invoice": "invoices", "expense": "expenses", "receipt": "procurement",
              "adjustment": "procurement", "transfer": "procurement"}
VIEW_SCHEMA = {"invoices": "UnpostedInvoice", "expenses": "UnpostedExpense",
               "procurement": "UnpostedProcurement"}
TAX_LEVEL_NAMES = ("state", "county", "city", "country", "composite", "levelSix")


def is_posted(store: Store, gl_ids: list[int]) -> bool:
    """A record leaves the unposted lists only when every one of its GL entries is batched."""
    if not gl_ids:
        return False
    entries = store.tables["gl_entries"]
    return all(entries.get(i, {}).get("_batch") for i in gl_ids)


def tax_fields(levels: list[dict[str, Any]]) -> dict[str, Any]:
    """The six-level flag/xref/amount fields unposted records carry (state…levelSix)."""
    out: dict[str, Any] = {}
    by_level = {lv["taxLevel"]: lv for lv in levels}
    for n, name in enumerate(TAX_LEVEL_NAMES, start=1):
        level = by_level.get(n)
        out[f"{name}TaxFlag"] = False
        if level is not None:
            out[f"{name}TaxXref"] = level.get("taxCodeXref")
        out[f"{name}TaxAmount"] = level.get("taxAmount", 0.0) if level else 0.0
    return out


def unposted_invoice(store: Store, inv: dict[str, Any]) -> dict[str, Any]:
    """UnpostedInvoice for one closed invoice (CW-REF §10; real sample's key order)."""
    view = {
        "id": inv["_unpostedId"], "billingLogId": inv["id"],
        "locationId": inv.get("locationId"), "location": inv.get("location"),
        "departmentId": inv.get("departmentId"), "department": inv.get("department"),
        "company": inv["company"], "accountNumber": inv.get("accountNumber"),
        "billToCompany": inv.get("billToCompany"), "billToSite": inv.get("billingSite"),
        "shipToCompany": inv.get("shipToCompany"), "shipToSite": inv.get("shippingSite"),
        "invoiceNumber": inv["invoiceNumber"], "invoiceDate": inv.get("date"),
        "invoiceType": inv.get("type"), "description": "Accounts Receivable",
        "billingTerms": inv.get("billingTerms"),
        "dueDays": str(inv.get("_dueDays")) if inv.get("_dueDays") is not None else None,
        "dueDate": inv.get("dueDate"), "currency": inv.get("currency"),
        "subTotal": inv.get("subtotal"), "total": inv.get("total"),
        "hasTime": bool(inv.get("_hasTime")), "hasExpenses": bool(inv.get("_hasExpenses")),
        "hasProducts": bool(inv.get("_hasProducts")),
        "invoiceTaxableFlag": inv.get("taxableFlag"), "taxCode": inv.get("taxCode"),
        "avalaraTaxFlag": False, "itemTaxableFlag": inv.get("taxableFlag"),
        "salesTaxAmount": inv.get("salesTax"),
    }
    view.update(tax_fields(inv.get("_taxLevels") or []))
    view["createdBy"] = inv.get("_createdBy")
    view["dateClosed"] = inv.get("_dateClosed")
    view["_info"] = {"lastUpdated": inv.get("_dateClosed"), "updatedBy": inv.get("closedBy")}
    view["_owner"] = ("invoice", inv["id"])
    return view


def unposted_expense(store: Store, exp: dict[str, Any]) -> dict[str, Any]:
    """UnpostedExpense for one expense entry (classification as the enum string here)."""
    view = {
        "id": exp["_unpostedId"], "locationId": exp.get("locationId"),
        "departmentId": exp.get("businessUnitId"), "company": exp.get("company"),
        "accountNumber": exp.get("_accountNumber"), "creditAccount": exp.get("_creditAccount"),
        "expenseDetailId": exp["id"], "expenseType": exp.get("type"),
        "classification": exp.get("_classification"), "glType": "EE",
        "member": exp.get("member"), "dateExpense": exp.get("date"),
        "chargeDescription": exp.get("notes"), "inPolicy": True,
        "paymentMethod": exp.get("paymentMethod"), "currency": exp.get("currency"),
        "total": exp.get("amount"), "billableAmount": exp.get("_billableAmount", 0.0),
        "nonBillableAmount": exp.get("_nonBillableAmount", exp.get("amount")),
        "agreement": exp.get("agreement"), "ticket": exp.get("ticket"),
        "project": exp.get("project"), "taxCode": exp.get("_taxCode"),
        "avalaraTaxFlag": False, "itemTaxableFlag": False, "salesTaxAmount": 0.0,
    }
    view.update(tax_fields([]))
    view["dateClosed"] = exp.get("_dateClosed")
    view["_info"] = {"lastUpdated": exp.get("_dateClosed"), "updatedBy": "approver"}
    view["_owner"] = ("expense", exp["id"])
    return view


def unposted_receipt(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    """UnpostedProcurement (Purchase) for one PO receipt; ids of products are strings."""
    po = store.tables["purchase_orders"][rec["purchaseOrderId"]]
    view = {
        "id": rec["_unpostedId"], "description": "Purchase", "unpostedProductId": str(rec["id"]),
        "locationId": po.get("locationId"), "departmentId": po.get("businessUnitId"),
        "procurementType": "Purchase",
        "purchaseOrder": {"id": po["id"], "name": po["poNumber"],
                          "_info": {"purchaseOrder_href": "{base}procurement/purchaseorders/"
                                    f"{po['id']}"}},
        "purchaseDate": po.get("poDate"), "trackingNumber": po.get("trackingNumber"),
        "billingTerms": po.get("terms"), "currency": po.get("currency"),
        "total": rec.get("total"), "taxCode": po.get("taxCode"), "avalaraTaxFlag": False,
        "itemTaxableFlag": False, "purchaseOrderTaxableFlag": bool(po.get("taxPoFlag")),
    }
    view.update(tax_fields(rec.get("_taxLevels") or []))
    view.update({
        "taxTotal": rec.get("tax", 0.0), "customer": po.get("customerCompany"),
        "vendor": po.get("vendorCompany"), "vendorAccountNumber": po.get("_vendorAccountNumber"),
        "vendorInvoiceNumber": rec.get("vendorInvoiceNumber"),
        "vendorInvoiceDate": rec.get("vendorInvoiceDate"), "taxFreightFlag": False,
        "freightTaxTotal": 0.0, "freightCost": rec.get("freightCost", 0.0),
        "dateClosed": rec.get("_dateClosed") or rec.get("dateReceived"),
        "_info": {"lastUpdated": rec.get("dateReceived"), "updatedBy": po.get("enteredBy")},
        "_owner": ("receipt", rec["id"]),
    })
    return view


def unposted_inventory(store: Store, kind: str, rec: dict[str, Any]) -> dict[str, Any]:
    """UnpostedProcurement for an inventory adjustment or a warehouse transfer."""
    view = {
        "id": rec["_unpostedId"], "description": rec.get("reason") or rec.get("identifier"),
        "unpostedProductId": str(rec["id"]), "locationId": rec.get("locationId"),
        "procurementType": "Adjustment" if kind == "adjustment" else "Transfer",
        "purchaseDate": rec.get("closedDate"), "total": rec.get("total"),
        "taxTotal": 0.0, "freightCost": 0.0, "dateClosed": rec.get("closedDate"),
        "_info": {"lastUpdated": rec.get("closedDate"), "updatedBy": rec.get("closedBy")},
        "_owner": (kind, rec["id"]),
    }
    view.update(tax_fields([]))
    return view


def build_view(store: Store, kind: str, rec: dict[str, Any]) -> dict[str, Any]:
    """The unposted row for a record of any kind."""
    if kind == "invoice":
        return unposted_invoice(store, rec)
    if kind == "expense":
        return unposted_expense(store, rec)
    if kind == "receipt":
        return unposted_receipt(store, rec)
    return unposted_inventory(store, kind, rec)


def eligible(kind: str, rec: dict[str, Any]) -> bool:
    """Closed invoices, expenses with GL data, closed receipts, adjustments and transfers."""
    if kind == "invoice":
        return bool((rec.get("status") or {}).get("isClosed"))
    return "_unpostedId" in rec


def refresh(store: Store, kind: str, owner_id: int) -> None:
    """Recompute whether one record is on its unposted list."""
    rec = store.tables[OWNER_TABLE[kind]].get(owner_id)
    view_table = store.unposted[OWNER_VIEW[kind]]
    if rec is None or "_unpostedId" not in rec:
        return
    if eligible(kind, rec) and not is_posted(store, rec.get("_glEntryIds") or []):
        view_table[rec["_unpostedId"]] = complete(build_view(store, kind, rec),
                                                  VIEW_SCHEMA[OWNER_VIEW[kind]])
    else:
        view_table.pop(rec["_unpostedId"], None)


def rebuild(store: Store) -> None:
    """Build every unposted view from scratch (after a load)."""
    for name in store.unposted:
        store.unposted[name] = {}
    for kind, table in OWNER_TABLE.items():
        for rec in store.tables[table].values():
            refresh(store, kind, rec["id"])
