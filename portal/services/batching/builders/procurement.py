"""Turn one ConnectWise item receipt into its QuickBooks Bill or VendorCredit (SPEC 9.2).

Pure: no database, no HTTP. Item receipts become Bills (returns: VendorCredits) to the
vendor, with one item line per received product, freight and purchase tax as the settings
say (adjustments and transfers are `builders/inventory_journal.py`'s). The record type
(`types/procurement.py`) reads ConnectWise, decides the DocNumber (the vendor invoice number,
suffixed or refused per `partial_receipt_mode`) and hands it in; a reference that does not
resolve raises BuildError, so a half-mapped document is never posted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from portal.services.batching.builders.invoice import (
    CENT,
    MAX_DOC_NUMBER,
    RESOLVED,
    _dec,
    _product_fields,
    _jsonable,
    line_amounts,
    money,
)
from portal.services.batching.types import base
from portal.services.batching.types.base import Need
from portal.services.company_settings import CompanySettings, named
from portal.services.mapping import MappingSet, Problem, Resolution

INVENTORY_PART = "Inventory Part"


class BuildError(base.BuildError):
    """A procurement record that cannot be built as it stands; `hint` says what fixes it."""


@dataclass(frozen=True)
class Facts:
    """What the QuickBooks company is, as far as procurement depends on it."""

    is_us: bool
    class_tracking: str  # none | line | txn
    multicurrency: bool
    home_currency: str


@dataclass(frozen=True)
class Receipt:
    """One item receipt as the record type read it (SPEC 9.2)."""

    purchase: dict[str, Any]  # one GL export "purchaseTransactions" element
    vendor: dict[str, Any] | None = None  # its GL export "vendors" element
    first_closed: date | None = None  # the day the PO was first closed (DocumentDate)
    freight_account: str | None = None  # ConnectWise's freight GL account (GL setup, FT)


@dataclass
class Built:
    entity: str | None  # Bill | VendorCredit | JournalEntry; None: nothing to post
    doc_number: str | None
    payload: dict[str, Any] | None
    cw_total: Decimal  # positive, as the document carries it
    cw_tax: Decimal | None
    warnings: list[str] = field(default_factory=list)
    note: str | None = None
    cw_signed: Decimal | None = None  # ConnectWise's own total, sign included


# ---- small readers ----------------------------------------------------------------------

def day_of(value: Any) -> date | None:
    """GL export dates: `2014-05-01T00:00:00`, or US style `5/1/2014 5:21:58 AM`."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        month, day, year = text.split(" ")[0].split("/")
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _name(ref: Any) -> str:
    ref = ref or {}
    return str(ref.get("name") or ref.get("identifier") or "")


def vendor_id(purchase: dict[str, Any], vendor: dict[str, Any] | None = None) -> str:
    """SPEC 5.2: `vendorAccountNumber` on the receipt, else the vendor's Vendor ID."""
    return str(purchase.get("vendorAccountNumber") or purchase.get("vendorNumber")
               or (vendor or {}).get("vendorNumber") or "").strip()


def vendor_resolution(purchase: dict[str, Any], mapping: MappingSet,
                      vendor: dict[str, Any] | None = None) -> Resolution:
    found = mapping.vendor(_name(purchase.get("company")), vendor_id(purchase, vendor))
    if found.status == "near_miss" and found.candidates:  # SPEC 9.3's wording
        found = Resolution(found.kind, found.cw_value, found.status, found.qbo_id,
                           found.qbo_name, found.candidates,
                           message=f"Vendor '{found.cw_value}' has no exact match; QuickBooks "
                                   f"has '{found.candidates[0].name}'.",
                           hint="Rename the vendor on one side, or Accept the match in "
                                "Mappings.")
    return found


def vin(purchase: dict[str, Any]) -> str:
    """The vendor invoice number; blank (or only spaces) means none."""
    text = str(purchase.get("vendorInvoiceNumber") or "")
    return text if text.strip() else ""


def total_of(purchase: dict[str, Any]) -> Decimal:
    return money(purchase.get("total"))


def is_return(purchase: dict[str, Any]) -> bool:
    return total_of(purchase) < 0


def entity_of(purchase: dict[str, Any]) -> str:
    """A receipt with a negative total is a return: a VendorCredit (SPEC 9.2)."""
    return "VendorCredit" if is_return(purchase) else "Bill"


def suffixed(number: str, n: int) -> str:
    """`VIN`, then `VIN-2`, `VIN-3` … (SuffixDocNumber)."""
    return number if n <= 1 else f"{number}-{n}"


def txn_date(receipt: Receipt, settings: CompanySettings) -> tuple[date | None, list[str]]:
    """SPEC 9.2 `vendor_invoice_date_source`, with its fallback and warning."""
    purchase = receipt.purchase
    document = receipt.first_closed or day_of(purchase.get("documentDate"))
    source = settings.vendor_invoice_date_source
    if source == "PurchaseDate":
        return day_of(purchase.get("purchaseDate")) or document, []
    if source == "VendorInvoiceDate":
        invoiced = day_of(purchase.get("vendorInvoiceDate"))
        if invoiced is None:
            return document, [f"PO {purchase.get('documentNumber')} has no vendor invoice "
                              f"date; the bill is dated {document} (the document date)."]
        return invoiced, []
    return document, []


def terms_of(purchase: dict[str, Any], vendor: dict[str, Any] | None) -> str | None:
    value = purchase.get("billingTermsXref") or _name(purchase.get("billingTerms")) or \
        _name((vendor or {}).get("billingTerms"))
    return str(value) if value else None


def _due_days(purchase: dict[str, Any], vendor: dict[str, Any] | None) -> int | None:
    for value in (purchase.get("dueDays"), (vendor or {}).get("dueDays")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


def _lines(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in purchase.get("purchaseDetail") or []
            if (line.get("item") or {}).get("identifier")]


def _tax_total(purchase: dict[str, Any]) -> Decimal:
    """Purchase tax: the `purchaseDetailTax` lines, in the header's sign."""
    amount = sum((_dec(t.get("total")) for t in purchase.get("purchaseDetailTax") or []),
                 Decimal(0))
    return money(-amount if total_of(purchase) >= 0 else amount)


def _sign(purchase: dict[str, Any]) -> Decimal:
    """Detail lines carry the opposite sign to their header (CW-REF §24); a return's
    document is positive too, so every amount is multiplied by this."""
    return Decimal(-1) if total_of(purchase) >= 0 else Decimal(1)


def _resolved(found: Resolution, what: str) -> str:
    if found.status not in RESOLVED or found.qbo_id is None:
        raise BuildError(found.message or f"{what} '{found.cw_value}' does not resolve.",
                         found.hint)
    return found.qbo_id


def item_type(line: dict[str, Any], settings: CompanySettings) -> tuple[str, bool]:
    from portal.services import item_types

    return item_types.resolve(str(line.get("itemTypeXref") or ""), settings)


def _asset_account(line: dict[str, Any]) -> str | None:
    return line.get("inventoryAccountNumber") or None


# ---- checks (SPEC 9.3, 5.6) -------------------------------------------------------------

def receipt_values(receipt: Receipt, settings: CompanySettings,
                   mapping: MappingSet) -> list[Resolution]:
    """Every mapping a receipt uses, blocking or not (the mapping editor's rows)."""
    purchase = receipt.purchase
    found = [vendor_resolution(purchase, mapping, receipt.vendor)]
    if purchase.get("apAccountNumber"):
        found.append(mapping.account(str(purchase["apAccountNumber"]),
                                     f"PO {purchase.get('documentNumber')} AP"))
    terms = terms_of(purchase, receipt.vendor)
    if terms:
        found.append(mapping.term(terms))
    for line in _lines(purchase):
        item = mapping.item(str(line["item"]["identifier"]))
        found.append(item)
        if item.status == "will_create":  # SPEC 5.2 costing accounts, only for a new item
            for key in ("costAccountNumber", "inventoryAccountNumber"):
                if line.get(key):
                    found.append(mapping.account(str(line[key]),
                                                 f"item '{line['item']['identifier']}'"))
        if settings.use_classes and line.get("glClass"):
            found.append(mapping.klass(str(line["glClass"])))
    if _freight(purchase) and settings.freight_posting == "AccountLine":
        if receipt.freight_account:
            found.append(mapping.account(receipt.freight_account, "freight"))
    elif _freight(purchase):
        found.append(mapping.item(settings.freight_item_name))
    return found


def check_receipt(receipt: Receipt, settings: CompanySettings, facts: Facts,
                  mapping: MappingSet, label: str) -> list[Problem]:
    """Every problem that stops this receipt (writes nothing)."""
    purchase = receipt.purchase
    number = str(purchase.get("documentNumber") or "")
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for found in receipt_values(receipt, settings, mapping):
        if found.blocking and (found.kind, found.cw_value) not in seen:
            seen.add((found.kind, found.cw_value))
            problems.append(Problem(label, "error", found.message or found.status, found.hint,
                                    found.kind, found.cw_value, found.status))
    if not _lines(purchase) and not _freight(purchase):
        problems.append(Problem(label, "error", f"PO {number}: the receipt has no product "
                                                "lines in ConnectWise's GL export.",
                                "Check the receipt in ConnectWise (Procurement › Purchase "
                                "Orders), then refresh."))
    if len(vin(purchase)) > MAX_DOC_NUMBER:
        problems.append(Problem(label, "error",
                                f"Vendor invoice number '{vin(purchase)}' of PO {number} is "
                                f"{len(vin(purchase))} characters; QuickBooks allows 21.",
                                "Shorten the vendor invoice number on the PO in ConnectWise."))
    for line in _lines(purchase):
        identifier = str(line["item"]["identifier"])
        item = mapping.item(identifier)
        kind, _known = item_type(line, settings)
        if item.status == "will_create" and kind == "Inventory" and not (
                _asset_account(line) or settings.inventory_asset_account):
            problems.append(Problem(label, "error",
                                    f"Inventory asset account for item '{identifier}' is "
                                    "missing.",
                                    f"Map the ConnectWise inventory GL, or set "
                                    f"{named('inventory_asset_account')}.",
                                    "item", identifier, "missing_asset"))
    if _freight(purchase) and settings.freight_posting == "AccountLine" and \
            not receipt.freight_account:
        problems.append(Problem(label, "error",
                                f"PO {number} carries freight, but ConnectWise has no freight "
                                "GL account (GL account mapping of type Freight).",
                                "Map a freight GL account in ConnectWise (Finance › GL "
                                "Accounts), or set "
                                f"{named('freight_posting')} to Item."))
    tax = _tax_total(purchase)
    if tax and facts.is_us and not settings.purchase_tax_as_line_item:
        problems.append(Problem(label, "error",
                                f"ConnectWise charged purchase tax {tax} on PO {number}, but "
                                "QuickBooks US takes no tax codes on purchases.",
                                f"Turn on {named('purchase_tax_as_line_item')}."))
    if tax and settings.purchase_tax_as_line_item and not settings.purchase_tax_account:
        problems.append(Problem(label, "error",
                                f"PO {number} carries purchase tax {tax}, but no purchase tax "
                                "account is chosen.", f"Choose {named('purchase_tax_account')}."))
    if _taxed(facts, settings):
        for line in _lines(purchase):
            code, wanted = tax_code_of(purchase, line, settings, mapping)
            if code is None and ("tax", wanted) not in seen:
                seen.add(("tax", wanted))
                problems.append(Problem(label, "error",
                                        f"ConnectWise tax code '{wanted}' of PO {number} is "
                                        "not mapped to a QuickBooks tax code.",
                                        "Add a row in Taxes › Tax code mappings."))
    currency = str((purchase.get("currency") or {}).get("currencyCode") or "").strip()
    if currency and currency != facts.home_currency and not facts.multicurrency:
        problems.append(Problem(label, "error", f"PO {number} is in {currency} but "
                                                "QuickBooks has multicurrency off.",
                                "Turn on multicurrency in QuickBooks, or buy in "
                                f"{facts.home_currency}."))
    return problems


def receipt_warnings(receipt: Receipt, settings: CompanySettings,
                     mapping: MappingSet) -> list[str]:
    """SPEC 9.3 item type mismatch: a warning, never a block. Only where the item-type table
    asks for Inventory (with `inventory_parts_as = NonInventory` the item is meant to be
    NonInventory)."""
    warnings = []
    items = mapping.index("Item")
    for line in _lines(receipt.purchase):
        identifier = str(line["item"]["identifier"])
        if str(line.get("itemTypeXref") or "") != INVENTORY_PART or \
                item_type(line, settings)[0] != "Inventory":
            continue
        found = mapping.item(identifier)
        ref = items.by_id.get(found.qbo_id or "") if found.status in RESOLVED else None
        if ref is not None and (ref.type or "") == "NonInventory":
            warnings.append(f"Item '{identifier}' is NonInventory in QuickBooks but "
                            "'Inventory Part' in ConnectWise.")
    return warnings


# ---- what to create first ---------------------------------------------------------------

def item_fields(line: dict[str, Any], settings: CompanySettings) -> dict[str, Any]:
    """How a missing product is created (SPEC 5.2 with the costing accounts): as an
    invoice line's product, since the receipt line carries the same accounts."""
    return _product_fields(line, settings)


def receipt_needs(receipt: Receipt, settings: CompanySettings,
                  mapping: MappingSet) -> list[Need]:
    """References to create before the bill posts: vendor, term, items, classes, freight."""
    found: dict[tuple[str, str], Need] = {}

    def add(kind: str, resolution: Resolution, fields: dict[str, Any]) -> None:
        if resolution.status == "will_create":
            found.setdefault((kind, resolution.cw_value),
                             Need(kind, resolution.cw_value, fields))

    purchase = receipt.purchase
    add("vendor", vendor_resolution(purchase, mapping, receipt.vendor), {})
    terms = terms_of(purchase, receipt.vendor)
    if terms:
        add("term", mapping.term(terms), {"DueDays": _due_days(purchase, receipt.vendor)})
    for line in _lines(purchase):
        identifier = str(line["item"]["identifier"])
        parts = identifier.split(":")
        if settings.create_product_categories:
            for depth in range(1, len(parts)):
                value = ":".join(parts[:depth])
                add("item", mapping.item(value), {"Type": "Category",
                                                  "parent": value.rpartition(":")[0] or None})
        add("item", mapping.item(identifier), item_fields(line, settings))
        if settings.use_classes and line.get("glClass"):
            add("class", mapping.klass(str(line["glClass"])),
                {"parent": str(line["glClass"]).rpartition(":")[0] or None})
    if _freight(purchase) and settings.freight_posting == "Item":
        account = receipt.freight_account
        add("item", mapping.item(settings.freight_item_name),
            {"Type": "Service", "income_account": account, "cost_account": account,
             "asset_account": None, "description": "Freight"})
    return list(found.values())


# ---- the Bill or VendorCredit -----------------------------------------------------------

def _freight(purchase: dict[str, Any]) -> Decimal:
    return money(purchase.get("freightAmount"))


def _class_ref(line: dict[str, Any], settings: CompanySettings, facts: Facts,
               mapping: MappingSet) -> dict[str, str] | None:
    if not settings.use_classes or facts.class_tracking == "none" or not line.get("glClass"):
        return None
    return {"value": _resolved(mapping.klass(str(line["glClass"])), "Class")}


def tax_code_of(purchase: dict[str, Any], line: dict[str, Any], settings: CompanySettings,
                mapping: MappingSet) -> tuple[str | None, str]:
    """(QuickBooks TaxCode id or None, what was looked for) of a purchase line: the Taxes
    tab's row for the PO's ConnectWise tax code, else (with `UseCwXref`) the line's Xref
    exactly; a line that is not taxable takes `exempt_tax_code`."""
    if line.get("taxable") is False and not line.get("taxCodeXref"):
        return settings.exempt_tax_code, "exempt"
    cw_code = _name(purchase.get("taxCode")) or str(purchase.get("purchaseHeaderTaxGroup") or "")
    codes = mapping.index("TaxCode")
    for row in settings.tax_code_mappings:
        if row.cw_tax_code == cw_code:
            ref = codes.by_id.get(row.qbo_tax_code_id)
            return (ref.qbo_id if ref is not None and ref.active else None), cw_code
    xref = str(line.get("taxCodeXref") or "")
    if settings.unmapped_tax_codes == "UseCwXref" and xref and xref in codes.exact:
        return codes.exact[xref].qbo_id, xref
    return None, xref or cw_code


def _taxed(facts: Facts, settings: CompanySettings) -> bool:
    """Non-US companies take tax codes on purchase lines (SPEC 9.2)."""
    return not facts.is_us and not settings.purchase_tax_as_line_item


def _line_tax(purchase: dict[str, Any], line: dict[str, Any], settings: CompanySettings,
              facts: Facts, mapping: MappingSet) -> dict[str, str] | None:
    if not _taxed(facts, settings):
        return None
    code, wanted = tax_code_of(purchase, line, settings, mapping)
    if code is None:
        raise BuildError(f"ConnectWise tax code '{wanted}' of PO "
                         f"{purchase.get('documentNumber')} is not mapped to a QuickBooks "
                         "tax code.", "Add a row in Taxes › Tax code mappings.")
    return {"value": code}


def build_receipt(receipt: Receipt, settings: CompanySettings, facts: Facts,
                  mapping: MappingSet, *, request_token: str,
                  doc_number: str | None) -> Built:
    """The Bill (or VendorCredit for a return) of one receipt, `doc_number` as the record
    type decided it (None: blank vendor invoice number, no DocNumber)."""
    purchase = receipt.purchase
    po = str(purchase.get("documentNumber") or "")
    entity = entity_of(purchase)
    sign = _sign(purchase)
    day, warnings = txn_date(receipt, settings)
    warnings += receipt_warnings(receipt, settings, mapping)
    drop_ship = bool(purchase.get("dropshipFlag"))
    lines: list[dict[str, Any]] = []
    for line in sorted(_lines(purchase), key=lambda ln: int(ln.get("lineNumber") or 0)):
        identifier = str(line["item"]["identifier"])
        amount = money(_dec(line.get("total")) * sign)
        qty = _dec(line.get("quantity")) * sign
        price = _dec(line.get("itemCost") if line.get("itemCost") is not None
                     else line.get("cost"))
        qty, price, amount, prefix = line_amounts(qty, amount, price)
        detail: dict[str, Any] = {
            "ItemRef": {"value": _resolved(mapping.item(identifier), "Item")},
            "Qty": qty, "UnitPrice": price}
        if drop_ship or line.get("dropShippedFlag"):
            detail["BillableStatus"] = "NotBillable"
        klass = _class_ref(line, settings, facts, mapping)
        if klass:
            detail["ClassRef"] = klass
        tax = _line_tax(purchase, line, settings, facts, mapping)
        if tax:
            detail["TaxCodeRef"] = tax
        description = prefix + str(line.get("itemDescription") or line.get("memo") or "")
        entry: dict[str, Any] = {"DetailType": "ItemBasedExpenseLineDetail",
                                 "Amount": amount, "ItemBasedExpenseLineDetail": detail}
        if description:
            entry["Description"] = description[:4000]
        lines.append(entry)
    freight = abs(_freight(purchase))
    if freight:
        lines.append(_freight_line(receipt, settings, mapping, freight))
    tax = _tax_total(purchase)
    if tax and settings.purchase_tax_as_line_item:
        lines.append({"DetailType": "AccountBasedExpenseLineDetail", "Amount": abs(tax),
                      "Description": f"Purchase tax, PO {po}",
                      "AccountBasedExpenseLineDetail": {
                          "AccountRef": {"value": str(settings.purchase_tax_account)}}})
    cw_total = abs(total_of(purchase))
    payload: dict[str, Any] = {
        "VendorRef": {"value": _resolved(vendor_resolution(purchase, mapping, receipt.vendor),
                                         "Vendor")},
        "TxnDate": day.isoformat() if day else None,
        "Line": lines,
        "PrivateNote": f"ConnectWise PO {po} receipt "
                       f"{purchase.get('packingSlip') or purchase.get('id') or ''}".rstrip()
                       + f" · portal:{request_token}"}
    if doc_number:
        payload["DocNumber"] = doc_number
    if purchase.get("apAccountNumber"):
        payload["APAccountRef"] = {"value": _resolved(mapping.account(
            str(purchase["apAccountNumber"])), "GL account")}
    if entity == "Bill":
        terms = terms_of(purchase, receipt.vendor)
        if terms:
            payload["SalesTermRef"] = {"value": _resolved(mapping.term(terms), "Term")}
        due = _due_days(purchase, receipt.vendor)
        if due is not None and day is not None:
            payload["DueDate"] = (day + timedelta(days=due)).isoformat()
    if not facts.is_us and not settings.purchase_tax_as_line_item and any(
            "TaxCodeRef" in ln.get("ItemBasedExpenseLineDetail", {}) for ln in lines):
        payload["GlobalTaxCalculation"] = "TaxExcluded"
    currency = str((purchase.get("currency") or {}).get("currencyCode") or "").strip()
    if facts.multicurrency and currency:
        payload["CurrencyRef"] = {"value": currency}
    if payload["TxnDate"] is None:
        del payload["TxnDate"]
    posted = sum((ln["Amount"] for ln in lines), Decimal(0))
    if tax and not settings.purchase_tax_as_line_item:
        posted += abs(tax)  # non-US: QuickBooks adds the line codes' tax to the lines
    if abs(posted - cw_total) > CENT:
        raise BuildError(f"The lines of PO {po} add up to {posted}, but ConnectWise's total "
                         f"is {cw_total}.", "Check the receipt's lines and freight in "
                                            "ConnectWise.")
    return Built(entity, doc_number, _jsonable(payload), cw_total,
                 abs(tax) if tax else None, warnings, cw_signed=total_of(purchase))


def _freight_line(receipt: Receipt, settings: CompanySettings, mapping: MappingSet,
                  amount: Decimal) -> dict[str, Any]:
    """SPEC 9.2 / 4.4 `freight_posting`: an account line, or the freight item."""
    po = receipt.purchase.get("documentNumber")
    if settings.freight_posting == "Item":
        item = _resolved(mapping.item(settings.freight_item_name), "Item")
        return {"DetailType": "ItemBasedExpenseLineDetail", "Amount": amount,
                "Description": f"Freight, PO {po}",
                "ItemBasedExpenseLineDetail": {"ItemRef": {"value": item}, "Qty": Decimal(1),
                                               "UnitPrice": amount}}
    account = _resolved(mapping.account(str(receipt.freight_account or "")), "GL account")
    return {"DetailType": "AccountBasedExpenseLineDetail", "Amount": amount,
            "Description": f"Freight, PO {po}",
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}}}
