"""The item-type table: which QuickBooks Item type a new item gets from its ConnectWise
product type's "Type Xref" (SPEC 5.2 "Item type").

Defaults come from the SPEC; a company may save a row per Xref (table `item_type_mapping`)
that wins over the default. `resolve()` is pure, so the invoice builder can use it on a
settings snapshot; the rest reads and writes the rows for the mapping editor.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Company, CwRef
from portal.models.settings import ITEM_TYPES, ItemTypeMapping
from portal.services import mapping_rows
from portal.services.company_settings import CompanySettings, get_settings

INVENTORY_PART = "Inventory Part"  # follows the Inventory tab's `inventory_parts_as`
DEFAULTS: dict[str, str] = {"Non-Inventory Part": "NonInventory", "Other Charge": "Service",
                            "Service": "Service"}
UNKNOWN_DEFAULT = "NonInventory"  # blank or unknown Xref, with a yellow warning
LABELS: dict[str, str] = {"Inventory": "Inventory", "NonInventory": "Non-inventory",
                          "Service": "Service"}
SAMPLE_PRODUCTS = 5  # products named per row on the editor page


class ItemTypeError(ValueError):
    """A row that cannot be saved; the message says why and how to fix it."""


def default_for(type_xref: str, inventory_parts_as: str) -> str | None:
    """The SPEC default QuickBooks type of an Xref, or None when it is blank or unknown."""
    if type_xref == INVENTORY_PART:
        return inventory_parts_as
    return DEFAULTS.get(type_xref)


def resolve(type_xref: str, settings: CompanySettings) -> tuple[str, bool]:
    """(QuickBooks item type, known) for a product type Xref.

    A saved row wins; then the default table. `known` is False for a blank or unknown Xref
    without a row: it becomes NonInventory and the caller warns.
    """
    saved = settings.item_type_for(type_xref)
    if saved is not None:
        return saved, True
    default = default_for(type_xref, settings.inventory_parts_as)
    if default is not None:
        return default, True
    return UNKNOWN_DEFAULT, False


@dataclass(frozen=True)
class ItemTypeView:
    """One Type Xref on the editor page: the CW product types and products that use it."""

    type_xref: str
    type_names: tuple[str, ...]
    products: tuple[str, ...]  # up to SAMPLE_PRODUCTS identifiers
    product_count: int
    default: str  # what applies without a row
    known: bool  # False: blank or unknown Xref (warns without a row)
    saved: str | None  # the company's row, if any
    cached: bool  # False: a saved row whose Xref no cached product type has

    @property
    def effective(self) -> str:
        return self.saved or self.default


def _xref(ref: CwRef) -> str:
    return str((ref.extra or {}).get("typeXref") or "").strip()


def _type_id(product: CwRef) -> int | None:
    kind = (product.extra or {}).get("type")
    return kind.get("id") if isinstance(kind, dict) else None


def cached_xrefs(session: Session) -> dict[str, list[CwRef]]:
    """The cached ConnectWise product types, by Type Xref (blank included, as "")."""
    result: dict[str, list[CwRef]] = {}
    for ref in session.scalars(sa.select(CwRef).where(CwRef.entity == "product_type")
                               .order_by(CwRef.name, CwRef.cw_id)):
        result.setdefault(_xref(ref), []).append(ref)
    return result


def _saved(session: Session, company: Company) -> dict[str, ItemTypeMapping]:
    return {r.type_xref: r for r in session.scalars(sa.select(ItemTypeMapping).where(
        ItemTypeMapping.company_id == company.id))}


def rows(session: Session, company: Company) -> list[ItemTypeView]:
    """Every Type Xref of the cached product types, plus saved rows no cached type uses.

    The caller commits: reading the settings may store the company's defaults.
    """
    parts_as = get_settings(session, company).inventory_parts_as
    types = cached_xrefs(session)
    saved = _saved(session, company)
    by_type: dict[int, list[str]] = {}
    for product in session.scalars(sa.select(CwRef).where(CwRef.entity == "catalog")
                                   .order_by(CwRef.identifier)):
        type_id = _type_id(product)
        if type_id is not None:
            by_type.setdefault(type_id, []).append(product.identifier or str(product.cw_id))
    result = []
    for xref in sorted(set(types) | set(saved), key=lambda x: (x == "", x.casefold())):
        refs = types.get(xref, [])
        products = [p for ref in refs for p in by_type.get(ref.cw_id, [])]
        default = default_for(xref, parts_as)
        row = saved.get(xref)
        result.append(ItemTypeView(
            xref, tuple(r.name or r.identifier or str(r.cw_id) for r in refs),
            tuple(products[:SAMPLE_PRODUCTS]), len(products), default or UNKNOWN_DEFAULT,
            default is not None, row.qbo_type if row else None, bool(refs)))
    return result


def save(session: Session, company: Company, type_xref: str, qbo_type: str) -> None:
    """Give one Type Xref its QuickBooks type (one row per Xref); audited, the caller commits.

    Refuses a type other than Inventory, NonInventory or Service, a blank Xref, and an Xref
    that no cached product type has (unless a row for it exists, so it can be changed).
    """
    if qbo_type not in ITEM_TYPES:
        raise ItemTypeError(f"Choose Inventory, NonInventory or Service ('{qbo_type[:40]}' is "
                            "not a QuickBooks item type portal creates).")
    if not type_xref.strip():
        raise ItemTypeError("A product type without a Type Xref cannot be mapped: give it a "
                            "Type Xref in ConnectWise (Setup Tables › Product Type), then "
                            "refresh the reference data.")
    if len(type_xref) > 100:
        raise ItemTypeError("A Type Xref longer than 100 characters cannot be mapped.")
    row = session.scalar(sa.select(ItemTypeMapping).where(
        ItemTypeMapping.company_id == company.id, ItemTypeMapping.type_xref == type_xref))
    if row is None and type_xref not in cached_xrefs(session):
        raise ItemTypeError(f"ConnectWise has no product type with Type Xref '{type_xref}'; "
                            "refresh the reference data.")
    mapping_rows.put(session, ItemTypeMapping, company, "type_xref", type_xref, "qbo_type",
                     qbo_type, action="mapping.item_type.set", row=row)


def reset(session: Session, company: Company, type_xref: str) -> None:
    """Delete the row of one Xref, so the default applies again; audited when one existed."""
    mapping_rows.drop(session, ItemTypeMapping, company, "type_xref", type_xref, "qbo_type",
                      action="mapping.item_type.reset")


__all__ = ["DEFAULTS", "INVENTORY_PART", "ITEM_TYPES", "LABELS", "ItemTypeError",
           "ItemTypeView", "cached_xrefs", "default_for", "reset", "resolve", "rows", "save"]
