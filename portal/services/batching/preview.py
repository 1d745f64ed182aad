"""A QuickBooks document as a person reads it: "Validate only" shows, per record, exactly the
payload a batch would post (built by the same builder), with names instead of ids.

References that pre-flight would create appear as `new:<kind>:<name>` in a preview
payload; they are shown by name with "(will be created)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from portal.services.mapping import MappingSet

REF_ENTITIES = {"CustomerRef": "Customer", "VendorRef": "Vendor", "ItemRef": "Item",
                "ClassRef": "Class", "DepartmentRef": "Department", "SalesTermRef": "Term",
                "TaxCodeRef": "TaxCode", "AccountRef": "Account", "APAccountRef": "Account",
                "TxnTaxCodeRef": "TaxCode", "EntityRef": "Vendor", "TaxRateRef": "TaxRate"}
DETAILS = ("SalesItemLineDetail", "ItemBasedExpenseLineDetail",
           "AccountBasedExpenseLineDetail", "JournalEntryLineDetail")


@dataclass
class LineView:
    description: str
    item: str | None
    account: str | None
    qty: str | None
    rate: str | None
    amount: Decimal
    klass: str | None
    tax: str | None
    side: str | None = None  # Debit / Credit on journal entries


@dataclass
class DocumentView:
    entity: str
    doc_number: str | None
    party: str | None
    date: str | None
    due: str | None
    terms: str | None
    location: str | None
    currency: str | None
    memo: str | None
    lines: list[LineView] = field(default_factory=list)
    subtotal: Decimal = Decimal("0.00")
    tax: Decimal | None = None
    total: Decimal = Decimal("0.00")
    note: str | None = None  # nothing posted ("zero invoice: marked without a document")


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    text = format(Decimal(str(value)).normalize(), "f")
    return text


class Names:
    """QuickBooks ids to the names a person knows, from the reference cache."""

    def __init__(self, mapping: MappingSet) -> None:
        self.mapping = mapping

    def __call__(self, key: str, ref: dict[str, Any] | None) -> str | None:
        if not ref:
            return None
        value = str(ref.get("value") or "")
        if value.startswith("new:"):
            return f"{value.split(':', 2)[2]} (will be created)"
        entity = REF_ENTITIES.get(key)
        found = self.mapping.index(entity).by_id.get(value) if entity else None
        if found is not None:
            return found.fully_qualified_name or found.name
        return str(ref.get("name") or value)

    def item_account(self, ref: dict[str, Any] | None) -> str | None:
        """The income account an item posts to (what QuickBooks uses for the line)."""
        if not ref:
            return None
        item = self.mapping.index("Item").by_id.get(str(ref.get("value") or ""))
        account = (item.extra or {}).get("IncomeAccountRef") if item is not None else None
        return self("AccountRef", {"value": account}) if account else None


def describe(entity: str | None, payload: dict[str, Any] | None, mapping: MappingSet,
             note: str | None = None) -> DocumentView:
    """The document for a person: party, dates, lines (item, account, class, tax) and
    totals. A record with nothing to post shows only its note."""
    names = Names(mapping)
    if entity is None or payload is None:
        return DocumentView(entity="(nothing posted)", doc_number=None, party=None, date=None,
                            due=None, terms=None, location=None, currency=None, memo=None,
                            note=note)
    party_key = next((k for k in ("CustomerRef", "VendorRef", "EntityRef") if k in payload),
                     None)
    view = DocumentView(
        entity=entity, doc_number=payload.get("DocNumber"),
        party=names(party_key, payload.get(party_key)) if party_key else None,
        date=payload.get("TxnDate"), due=payload.get("DueDate"),
        terms=names("SalesTermRef", payload.get("SalesTermRef")),
        location=names("DepartmentRef", payload.get("DepartmentRef")),
        currency=(payload.get("CurrencyRef") or {}).get("value"),
        memo=(payload.get("CustomerMemo") or {}).get("value") or payload.get("Memo"),
        note=note)
    for line in payload.get("Line") or []:
        kind = line.get("DetailType")
        detail = line.get(kind) or {} if kind in DETAILS else {}
        if kind not in DETAILS:
            continue
        item = detail.get("ItemRef")
        account = names("AccountRef", detail.get("AccountRef")) or names.item_account(item)
        view.lines.append(LineView(
            description=str(line.get("Description") or ""), item=names("ItemRef", item),
            account=account, qty=_plain(detail.get("Qty")),
            rate=_plain(detail.get("UnitPrice")), amount=_money(line.get("Amount")),
            klass=names("ClassRef", detail.get("ClassRef")),
            tax=names("TaxCodeRef", detail.get("TaxCodeRef")),
            side=detail.get("PostingType")))
        if kind != "JournalEntryLineDetail":
            view.subtotal += _money(line.get("Amount"))
    tax = (payload.get("TxnTaxDetail") or {}).get("TotalTax")
    view.tax = _money(tax) if tax is not None else None
    view.total = view.subtotal + (view.tax or Decimal(0)) if entity != "JournalEntry" else \
        sum((ln.amount for ln in view.lines if ln.side == "Debit"), Decimal("0.00"))
    return view
