"""The GLExport structure: invoices, expenses and procurement turned into GL transactions (CW-REF §11)."""

from __future__ import annotations

from typing import Any, Iterable

from .defaults import complete
from .store import Store

CUSTOMER_TYPE = {"id": 1, "name": "Customer"}
VENDOR_TYPE = {"id": 5, "name": "Vendor"}


def gl_date(value: str | None) -> str | None:
    """GLExport dates are zone-less strings (`2011-06-20T00:00:00`)."""
    if not value:
        return None
    return value[:19] if len(value) >= 19 else value[:10] + "T00:00:00"


def _short(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    """References inside GLExport carry id and identifier/name only (the vendor samples)."""
    if not ref:
        return None
    return {k: v for k, v in ref.items() if k in ("id", "identifier", "name")}


def _terms(store: Store, ref: dict[str, Any] | None) -> dict[str, Any]:
    term = store.tables["billing_terms"].get((ref or {}).get("id", -1)) or {}
    return {"billingTerms": _short(ref), "billingTermsXref": term.get("termsXref"),
            "dueDays": term.get("dueDays")}


def _tax_code(store: Store, ref: dict[str, Any] | None) -> dict[str, Any]:
    return store.tables["tax_codes"].get((ref or {}).get("id", -1)) or {}


LEVEL_WORDS = ("One", "Two", "Three", "Four", "Five", "Six")


def tax_levels_of(code: dict[str, Any]) -> list[dict[str, Any]]:
    """The levels of a CW tax code that have a rate or an Xref."""
    out = []
    for n, word in enumerate(LEVEL_WORDS, start=1):
        rate = code.get(f"level{word}Rate")
        xref = code.get(f"level{word}TaxCodeXref")
        if rate or xref:
            out.append({"taxLevel": n, "taxRate": rate or 0.0, "taxCodeXref": xref or "",
                        "agencyXref": code.get(f"level{word}AgencyXref") or ""})
    return out


def customer_entry(store: Store, company_ref: dict[str, Any]) -> dict[str, Any]:
    """GLExportCustomer: account number, terms and tax set-up of one customer."""
    company = store.tables["companies"].get(company_ref["id"]) or {}
    code = _tax_code(store, company.get("taxCode"))
    levels = tax_levels_of(code)
    names = ("state", "county", "city", "country", "composite")
    entry: dict[str, Any] = {
        "company": _short(company_ref), "companyType": CUSTOMER_TYPE,
        "contact": _short(company.get("billingContact") or company.get("defaultContact")),
        "site": _short(company.get("billingSite") or company.get("site")),
        "accountNumber": company.get("accountNumber"),
    }
    entry.update(_terms(store, company.get("billingTerms")))
    entry.update({"taxable": bool(levels), "taxCode": _short(company.get("taxCode")),
                  "currency": company.get("currency")})
    for i, name in enumerate(names):
        level = levels[i] if i < len(levels) else None
        entry[f"{name}TaxXref"] = level["taxCodeXref"] if level else ""
        entry[f"{name}TaxRate"] = level["taxRate"] if level else 0.0
    entry["taxGroupRate"] = round(sum(lv["taxRate"] for lv in levels) / 100, 6)
    entry["taxAgencyXref"] = levels[0]["agencyXref"] if levels else ""
    for i, name in enumerate(names):
        entry[f"{name}TaxAgencyXref"] = levels[i]["agencyXref"] if i < len(levels) else ""
    entry["taxLevels"] = [{"taxRate": lv["taxRate"], "taxCodeXref": lv["taxCodeXref"],
                           "agencyXref": lv["agencyXref"], "taxLevel": lv["taxLevel"]}
                          for lv in levels]
    return entry


def invoice_transaction(store: Store, inv: dict[str, Any]) -> dict[str, Any]:
    """GLExportTransaction for one invoice: header (AR) plus its GL detail lines."""
    company = store.tables["companies"].get(inv["company"]["id"]) or {}
    code = _tax_code(store, inv.get("taxCode"))
    levels = inv.get("_taxLevels") or []
    date = gl_date(inv.get("date"))
    doc_type = "CREDITMEMO" if inv.get("type") == "CreditMemo" else "INVOICE"
    tx: dict[str, Any] = {
        "id": inv["id"], "glClass": inv.get("_glClass", ""), "glTypeId": "AR",
        "documentDate": date, "documentNumber": inv["invoiceNumber"], "documentType": doc_type,
        "memo": inv.get("reference") or "", "description": "Accounts Receivable",
        "attention": inv.get("attention"),
        "salesTerritory": (inv.get("territory") or {}).get("name"),
        "company": _short(inv["company"]), "companyType": CUSTOMER_TYPE,
        "companyAccountNumber": company.get("accountNumber"),
        "site": _short(inv.get("billingSite")),
    }
    tx.update(_terms(store, inv.get("billingTerms")))
    tx.update({
        "dueDate": gl_date(inv.get("dueDate")), "emailDeliveryFlag": False,
        "printDeliveryFlag": False, "agreementPrePaymentFlag": False,
        "accountNumber": inv.get("_arAccount"), "billingType": inv.get("type"),
        "glEntryIds": ",".join(str(i) for i in inv.get("_glEntryIds") or []),
        "purchaseOrder": None, "project": _short(inv.get("project")),
        "currency": inv.get("currency"), "total": inv.get("total"),
        "taxable": bool(inv.get("taxableFlag")),
        "taxableTotal": float(round(sum(lv.get("taxableAmount", 0.0) for lv in levels[:1]), 2)),
        "taxCode": _short(inv.get("taxCode")),
        "taxGroupRate": round(sum(lv["taxRate"] for lv in tax_levels_of(code)) / 100, 6),
        "piggyBackFlag": False, "taxAccountNumber": inv.get("_taxAccount"),
        "salesTax": inv.get("salesTax", 0.0),
    })
    for n, name in enumerate(("stateTax", "countyTax", "cityTax"), start=1):
        tx[name] = next((lv["taxAmount"] for lv in levels if lv["taxLevel"] == n), 0.0)
    for n in range(1, 6):
        tx[f"taxableAmount{n}"] = next((lv.get("taxableAmount", 0.0) for lv in levels
                                        if lv["taxLevel"] == n), 0.0)
    xrefs = {lv["taxLevel"]: lv["taxCodeXref"] for lv in levels}
    tx.update({
        "taxAgencyXref": tax_levels_of(code)[0]["agencyXref"] if tax_levels_of(code) else "",
        "stateTaxXref": xrefs.get(1, ""), "countyTaxXref": xrefs.get(2, ""), "taxId": "",
        "taxDpAppliedFlag": False, "useAvalaraFlag": False, "sendAvalaraTaxFlag": False,
        "shipToCompany": _short(inv.get("shipToCompany")),
        "shipToCompanyAccountNumber": company.get("accountNumber"),
        "shipToCompanyType": CUSTOMER_TYPE, "shipToTaxId": "",
        "shipSite": _short(inv.get("shippingSite")),
        "detail": [dict(line, documentDate=date, documentType=doc_type,
                        currency=inv.get("currency")) for line in inv.get("_lines") or []],
        "taxLevels": [{"taxAmount": lv["taxAmount"], "taxableAmount": lv.get("taxableAmount"),
                       "taxCodeXref": lv["taxCodeXref"], "taxLevel": lv["taxLevel"]}
                      for lv in levels],
    })
    return tx


def _member_vendor(store: Store, member_ref: dict[str, Any]) -> dict[str, Any]:
    member = store.tables["members"].get(member_ref["id"]) or {}
    return {"member": _short(member_ref), "vendorNumber": member.get("vendorNumber")}


def expense_entry(store: Store, exp: dict[str, Any]) -> dict[str, Any]:
    """GLExportExpense with its balancing `offset` line."""
    member = store.tables["members"].get(exp["member"]["id"]) or {}
    company = store.tables["companies"].get((exp.get("company") or {}).get("id", -1)) or {}
    gl_ids = exp.get("_glEntryIds") or [0, 0]
    date = gl_date(exp.get("date"))
    return {
        "id": gl_ids[0], "documentDate": date, "documentType": "EXPENSE",
        "apAccountNumber": exp.get("_apAccount"), "apClass": exp.get("_glClass", ""),
        "accountNumber": exp.get("_accountNumber"), "glClass": exp.get("_glClass", ""),
        "glTypeId": "EE", "memo": exp.get("notes") or "",
        "description": (exp.get("type") or {}).get("name"),
        "periodStartDate": gl_date(exp.get("_periodStart")),
        "periodEndDate": gl_date(exp.get("_periodEnd")),
        "member": _short(exp.get("member")), "vendorNumber": member.get("vendorNumber"),
        "company": _short(exp.get("company")), "companyAccountNumber": company.get("accountNumber"),
        "project": _short(exp.get("project")), "currency": exp.get("currency"),
        "total": exp.get("amount"),
        "offset": {"id": gl_ids[-1], "documentDate": date, "documentType": "EXPENSE",
                   "accountNumber": exp.get("_creditAccount"), "glTypeId": "EO",
                   "glClass": exp.get("_glClass", ""), "member": _short(exp.get("member")),
                   "memo": (exp.get("paymentMethod") or {}).get("name"),
                   "description": exp.get("_classification"),
                   "total": -float(exp.get("amount") or 0.0)},
    }


def purchase_transaction(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    """GLExportPurchaseTransaction for one receipt (id is free text, lines negative)."""
    po = store.tables["purchase_orders"][rec["purchaseOrderId"]]
    vendor = store.tables["companies"].get(po["vendorCompany"]["id"]) or {}
    date = gl_date(rec.get("dateReceived"))
    lines = []
    for line_id in rec.get("lineIds") or []:
        line = store.tables["po_lines"].get(line_id) or {}
        item = store.tables["catalog"].get((line.get("product") or {}).get("id", -1)) or {}
        qty = float(rec.get("quantities", {}).get(str(line_id), line.get("receivedQuantity") or 0))
        cost = float(line.get("unitCost") or 0.0)
        lines.append({
            "id": line_id, "documentDate": date, "glClass": rec.get("_glClass", ""),
            "glTypeId": "RP", "glItemId": item.get("identifier"), "description": "Purchase",
            "cost": cost, "memo": line.get("description"),
            "accountNumber": item.get("_incomeAccount"),
            "costAccountNumber": item.get("_cogsAccount"),
            "inventoryAccountNumber": item.get("_inventoryAccount"),
            "item": {"id": item.get("id"), "identifier": item.get("identifier")},
            "itemDescription": item.get("description"),
            "salesDescription": item.get("customerDescription"), "taxable": False,
            "itemPrice": item.get("price"), "itemCost": cost,
            "unitOfMeasure": _short(line.get("unitOfMeasure")),
            "quantity": -qty, "total": round(-qty * cost, 2),
            "serializedFlag": bool(item.get("serializedFlag")),
            "serialNumbers": line.get("serialNumbers") or "",
            "dropShippedFlag": bool(po.get("dropShipCustomerFlag")),
            "lineNumber": line.get("lineNumber"), "itemTypeXref": item.get("_typeXref"),
            "taxCodeXref": "", "taxRate": 0.0, "taxAgencyXref": "",
        })
    code = _tax_code(store, po.get("taxCode")) if rec.get("tax") else {}
    levels = tax_levels_of(code)
    taxes = purchase_tax_lines(code, levels, lines, rec, date)
    for line in lines:
        if line["total"] and levels:
            line.update({"taxable": True, "taxCodeXref": levels[0]["taxCodeXref"],
                         "taxRate": round(sum(lv["taxRate"] for lv in levels) / 100, 6),
                         "taxAgencyXref": levels[0]["agencyXref"],
                         "taxCode": _short({"id": code.get("id"),
                                            "name": code.get("identifier")}),
                         "purchaseHeaderTaxGroup": code.get("identifier")})
    tx: dict[str, Any] = {
        "id": f"PO #{po['poNumber']}, Packing Slip: {rec.get('packingSlip') or po['poNumber']}",
        "documentDate": gl_date(rec.get("_dateClosed")) or date,
        "documentNumber": po["poNumber"], "description": "Purchase",
        "memo": "", "apAccountNumber": rec.get("_apAccount"), "purchaseDate": gl_date(po.get("poDate")),
        "company": _short(po["vendorCompany"]), "companyType": VENDOR_TYPE,
        "contact": _short(po.get("vendorContact")), "site": _short(po.get("vendorSite")),
        "purchaseClass": rec.get("_glClass", ""), "freightAmount": rec.get("freightCost", 0.0),
        "freightPackingSlip": rec.get("packingSlip"), "packingSlip": rec.get("packingSlip"),
        "dropshipFlag": bool(po.get("dropShipCustomerFlag")), "currency": po.get("currency"),
        "total": rec.get("total"),
    }
    tx.update(_terms(store, po.get("terms")))
    tx.update({
        "vendorNumber": vendor.get("vendorIdentifier") or "",
        "vendorAccountNumber": po.get("_vendorAccountNumber") or "",
        "vendorInvoiceDate": gl_date(rec.get("vendorInvoiceDate")),
        "vendorInvoiceNumber": rec.get("vendorInvoiceNumber") or "",
        "shipToCompany": _short(po.get("customerCompany")), "taxCode": _short(po.get("taxCode")),
        "taxGroupRate": round(sum(lv["taxRate"] for lv in levels) / 100, 6),
        "useAvalaraTaxFlag": False, "purchaseHeaderTaxableFlag": bool(taxes),
        "purchaseHeaderFreightTaxableFlag": False,
        "purchaseHeaderTaxGroup": code.get("identifier") or "",
        "taxLevels": [{"taxCodeXref": lv["taxCodeXref"], "taxLevel": lv["taxLevel"]}
                      for lv in levels],
        "purchaseDetail": lines, "purchaseDetailTax": taxes,
    })
    return tx


def purchase_tax_line_amounts(levels: list[dict[str, Any]],
                              line_totals: list[float]) -> list[list[float]]:
    """Purchase tax per product line and level, rounded per line (the data set's receipts
    carry their sum as `tax`)."""
    return [[round(abs(total) * lv["taxRate"] / 100, 2) for lv in levels]
            for total in line_totals]


def purchase_tax_lines(code: dict[str, Any], levels: list[dict[str, Any]],
                       lines: list[dict[str, Any]], rec: dict[str, Any],
                       date: str | None) -> list[dict[str, Any]]:
    """GLExportPurchaseTransactionDetailTax: one line per taxed product line and tax level,
    in the detail lines' sign (opposite to the header). The vendor sample's list is empty,
    so the shape follows the 2025 schema; `glTypeId` "PT" (purchase tax, from the spec's
    enum) and the tax GL account on `accountNumber` are [inferred]."""
    out: list[dict[str, Any]] = []
    amounts = purchase_tax_line_amounts(levels, [line["total"] for line in lines])
    for line, per_level in zip(lines, amounts):
        for level, amount in zip(levels, per_level):
            if not amount:
                continue
            sign = -1.0 if line["total"] < 0 else 1.0
            out.append({
                "id": line["id"] * 10 + level["taxLevel"], "documentDate": date,
                "accountNumber": rec.get("_taxAccount"), "glClass": line["glClass"],
                "cost": amount, "glTypeId": "PT", "glItemId": line["glItemId"],
                "memo": f"Level {level['taxLevel']} Purchase Tax", "vendorNumber": "",
                "vendorAccountNumber": "", "item": line["item"], "taxableFlag": True,
                "itemDescription": line.get("itemDescription"),
                "salesDescription": line.get("salesDescription"),
                "costAccountNumber": line.get("costAccountNumber"),
                "inventoryAccountNumber": line.get("inventoryAccountNumber"),
                "itemTypeXref": line.get("itemTypeXref"),
                "unitOfMeasure": line.get("unitOfMeasure"), "serialNumbers": "",
                "itemPrice": 0.0, "itemCost": 0.0, "quantity": 0.0,
                "total": sign * amount, "serializedFlag": False, "dropShippedFlag":
                    line["dropShippedFlag"], "lineNumber": line["lineNumber"],
                "taxCode": _short({"id": code.get("id"), "name": code.get("identifier")}),
                "taxRate": round(level["taxRate"] / 100, 6),
                "taxRatePercent": level["taxRate"], "taxAgencyXref": level["agencyXref"],
                "taxNote": level["taxCodeXref"],
                "purchaseHeaderTaxGroup": code.get("identifier")})
    return out


def vendor_entry(store: Store, vendor_ref: dict[str, Any]) -> dict[str, Any]:
    """GLExportVendor for a procurement vendor."""
    vendor = store.tables["companies"].get(vendor_ref["id"]) or {}
    entry: dict[str, Any] = {"vendor": _short(vendor_ref),
                             "vendorNumber": vendor.get("vendorIdentifier") or "",
                             "company": _short(vendor_ref),
                             "accountNumber": vendor.get("accountNumber") or ""}
    terms = _terms(store, vendor.get("billingTerms"))
    entry.update({"billingTerms": terms["billingTerms"], "dueDays": terms["dueDays"],
                  "site": _short(vendor.get("site")), "taxCode": _short(vendor.get("taxCode"))})
    return entry


def adjustment_transaction(store: Store, adj: dict[str, Any]) -> dict[str, Any]:
    """GLExportAdjustmentTransaction (note `glTypeID` with capital ID, as in the spec)."""
    details = []
    for d in adj.get("adjustmentDetails") or []:
        item = store.tables["catalog"].get(d["catalogItem"]["id"]) or {}
        qty = int(d.get("quantityAdjusted") or 0)
        cost = float(d.get("unitCost") or 0.0)
        details.append({"glClass": adj.get("_glClass", ""), "description": d.get("description"),
                        "memo": adj.get("reason"), "item": {"id": item.get("id"),
                                                            "identifier": item.get("identifier")},
                        "quantity": qty, "total": round(qty * cost, 2), "cost": cost,
                        "costAccountNumber": item.get("_cogsAccount"),
                        "inventoryAccountNumber": item.get("_inventoryAccount"),
                        "accountNumber": adj.get("_accountNumber"),
                        "productAccountNumber": item.get("_incomeAccount")})
    return {"id": str(adj["id"]), "documentType": "ADJUSTMENT",
            "documentDate": gl_date(adj.get("closedDate")), "glTypeID": "IA",
            "accountNumber": adj.get("_accountNumber"), "memo": adj.get("reason"),
            "glClass": adj.get("_glClass", ""), "adjustmentDescription": adj.get("identifier"),
            "adjustmentDetail": details}


def transfer_entry(store: Store, xfr: dict[str, Any]) -> dict[str, Any]:
    """GLExportInventoryTransfer with its `offset`."""
    item = store.tables["catalog"].get(xfr["item"]["id"]) or {}
    qty = float(xfr.get("quantity") or 0)
    cost = float(xfr.get("cost") or 0.0)
    date = gl_date(xfr.get("closedDate"))
    return {"id": str(xfr["id"]), "documentType": "TRANSFER", "documentDate": date,
            "accountNumber": xfr.get("_toAccount"), "glClass": xfr.get("_toClass", ""),
            "glTypeId": "IT", "description": "Inventory Transfer", "memo": xfr.get("reason"),
            "inventoryAccountNumber": xfr.get("_toAccount"), "transferId": xfr["id"],
            "item": {"id": item.get("id"), "identifier": item.get("identifier")},
            "glItemId": item.get("identifier"), "itemDescription": item.get("description"),
            "quantity": qty, "cost": cost, "total": round(qty * cost, 2),
            "transferFromLocationXref": xfr.get("_fromLocation"),
            "transferToLocationXref": xfr.get("_toLocation"),
            "itemTypeXref": item.get("_typeXref"),
            "offset": {"id": xfr["id"], "documentType": "TRANSFER", "documentDate": date,
                       "accountNumber": xfr.get("_fromAccount"),
                       "glClass": xfr.get("_fromClass", ""), "total": -round(qty * cost, 2),
                       "memo": xfr.get("reason"), "description": "Inventory Transfer",
                       "glTypeId": "IT"}}


def build(store: Store, owners: Iterable[tuple[str, int]],
          settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """A GLExport for the given records (kind, id), grouped the way CW groups them."""
    out: dict[str, Any] = {"exportSettings": settings or {}, "vendors": [], "customers": [],
                           "transactions": [], "expenses": [], "expenseBills": [],
                           "purchaseTransactions": [], "adjustmentTransactions": [],
                           "inventoryTransfers": []}
    seen_customers: set[int] = set()
    seen_vendors: set[tuple[str, int]] = set()
    for kind, owner_id in owners:
        if kind == "invoice":
            inv = store.tables["invoices"][owner_id]
            out["transactions"].append(invoice_transaction(store, inv))
            if inv["company"]["id"] not in seen_customers:
                seen_customers.add(inv["company"]["id"])
                out["customers"].append(customer_entry(store, inv["company"]))
        elif kind == "expense":
            exp = store.tables["expense_entries"][owner_id]
            out["expenses"].append(expense_entry(store, exp))
            key = ("member", exp["member"]["id"])
            if key not in seen_vendors:
                seen_vendors.add(key)
                out["vendors"].append(_member_vendor(store, exp["member"]))
        elif kind == "receipt":
            rec = store.tables["receipts"][owner_id]
            out["purchaseTransactions"].append(purchase_transaction(store, rec))
            vendor_ref = store.tables["purchase_orders"][rec["purchaseOrderId"]]["vendorCompany"]
            key = ("vendor", vendor_ref["id"])
            if key not in seen_vendors:
                seen_vendors.add(key)
                out["vendors"].append(vendor_entry(store, vendor_ref))
        elif kind == "adjustment":
            out["adjustmentTransactions"].append(
                adjustment_transaction(store, store.tables["adjustments"][owner_id]))
        elif kind == "transfer":
            out["inventoryTransfers"].append(
                transfer_entry(store, store.tables["transfers"][owner_id]))
    return complete(out, "GLExport")
