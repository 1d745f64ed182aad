"""The per-write context handed to entity rules, and reference checks they all share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import faults
from .store import Event, Realm

PLURALS = {"Account": "Accounts", "Customer": "Customers", "Vendor": "Vendors", "Employee": "Employees",
           "Item": "Items", "Class": "Classes", "Department": "Departments", "Term": "Terms",
           "TaxCode": "TaxCodes", "TaxRate": "TaxRates", "Invoice": "Invoices",
           "CreditMemo": "CreditMemos", "PaymentMethod": "PaymentMethods"}


@dataclass
class Ctx:
    """Everything a rule needs: the company, switches, the time, and where to put events."""

    realm: Realm
    switches: dict[str, Any]
    now: float
    seeding: bool = False
    allow_duplicate_docnumber: bool = False
    events: list[Event] = field(default_factory=list)
    stale: bool = False
    stale_consumed: bool = False

    def event(self, entity: str, entity_id: str, operation: str) -> None:
        """Queue a webhook event (seeding produces none)."""
        if not self.seeding:
            self.events.append(Event(self.realm.realm_id, entity, entity_id, operation, self.now))

    @property
    def settings(self) -> dict[str, Any]:
        """The company's settings (country, tax mode, tracking…)."""
        return self.realm.settings


def ref_value(ref: Any) -> str | None:
    """The Id inside a reference, whether sent as {"value": …} or bare."""
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    if isinstance(ref, (str, int)) and not isinstance(ref, bool) and str(ref):
        return str(ref)
    return None


def resolve(ctx: Ctx, ref: Any, entity: str, *, required_field: str | None = None,
            allow_inactive: bool = False) -> dict[str, Any] | None:
    """Look up a reference: missing → 2020 (if required), unknown → 2500, inactive → 610."""
    value = ref_value(ref)
    if value is None:
        if required_field:
            raise faults.required(required_field)
        return None
    target = ctx.realm.get(entity, value)
    if target is None:
        raise faults.invalid_reference(PLURALS.get(entity, entity + "s"), value)
    if not allow_inactive and target.get("Active") is False:
        raise faults.not_found()
    return target


def named_ref(ref: dict[str, Any], target: dict[str, Any], *, fqn: bool = True) -> dict[str, Any]:
    """A reference as the server echoes it: the value plus the display name."""
    name = target.get("FullyQualifiedName") if fqn else None
    name = name or target.get("DisplayName") or target.get("Name")
    out = {"value": str(ref_value(ref))}
    if name:
        out["name"] = name
    if isinstance(ref, dict) and ref.get("type"):
        out["type"] = ref["type"]
    return out


def check_length(obj: dict[str, Any], key: str, maximum: int) -> None:
    """2050 when a string field is longer than QBO accepts."""
    value = obj.get(key)
    if isinstance(value, str) and len(value) > maximum:
        raise faults.too_long(key, len(value), maximum)


def trim_names(ctx: Ctx, obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    """QBO trims surrounding spaces from names (switch sim.qbo_trims_names)."""
    if ctx.switches.get("sim.qbo_trims_names"):
        for key in keys:
            if isinstance(obj.get(key), str):
                obj[key] = obj[key].strip()
