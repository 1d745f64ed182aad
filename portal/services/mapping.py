"""Resolve ConnectWise values to QuickBooks objects, and validate transactions before posting.

Everything here reads the local reference cache and overrides and writes nothing: the batch
builders call the resolvers, and pre-flight calls the validator over every record so that
all problems are listed at once, each with the fix (SPEC 5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Company, QboRef
from portal.services.company_settings import named
from portal.services.matching import Difference, differences, name_problems, normalise

# Entities the editor shows, with the QuickBooks list behind each.
ENTITIES: dict[str, tuple[str, str]] = {
    "customer": ("Customer", "Customers"),
    "account": ("Account", "GL accounts"),
    "class": ("Class", "Classes"),
    "location": ("Department", "Locations"),
    "term": ("Term", "Sales terms"),
    "item": ("Item", "Products and items"),
    "vendor": ("Vendor", "Vendors"),
}
BLOCKING = {"near_miss", "missing", "conflict", "inactive", "error"}
NAME_LIMITS = {"Customer": 500, "Vendor": 500, "Item": 100, "Class": 100, "Department": 100,
               "Term": 31}
CREATE_WORDS = {"Customer": "Customer name", "Vendor": "Vendor name", "Item": "Item name",
                "Class": "Class name", "Department": "Location name", "Term": "Term name"}


@dataclass(frozen=True)
class Prefs:
    """The settings resolution depends on (SPEC 4.1, 4.4, 4.5, 4.8), with their defaults."""

    append_account_name: bool = True
    create_customers: bool = True
    create_items: bool = True
    gl_account_match: str = "Name"
    use_classes: bool = False
    create_classes: bool = False
    use_locations: bool = False
    location_source: str = "Class"
    create_locations: bool = False
    doc_number_prefix: str = ""
    item_account_mismatch: str = "Error"
    create_vendors: bool = True
    create_member_vendors: bool = True
    copy_contact_details: bool = True  # what a created customer carries (SPEC 4.5)


@dataclass(frozen=True)
class Candidate:
    qbo_id: str
    name: str
    diffs: tuple[Difference, ...] = ()


@dataclass(frozen=True)
class Resolution:
    """How one ConnectWise value maps: its status, the QuickBooks object, and the fix."""

    kind: str  # editor entity key: customer, account, ...
    cw_value: str
    status: str  # exact, override, will_create, near_miss, missing, conflict, inactive, error
    qbo_id: str | None = None
    qbo_name: str | None = None
    candidates: tuple[Candidate, ...] = ()
    message: str | None = None
    hint: str | None = None

    @property
    def blocking(self) -> bool:
        return self.status in BLOCKING


@dataclass
class _Index:
    exact: dict[str, QboRef] = field(default_factory=dict)
    near: dict[str, list[QboRef]] = field(default_factory=lambda: defaultdict(list))
    inactive: dict[str, QboRef] = field(default_factory=dict)
    by_id: dict[str, QboRef] = field(default_factory=dict)


def _key(ref: QboRef, by_number: bool = False) -> str | None:
    if by_number:
        return ref.acct_num
    return ref.fully_qualified_name or ref.name


class MappingSet:
    """The cache of one company, indexed for exact and near-miss lookups, plus overrides.

    Built once per batch or scan (a few queries), then every lookup is a dict access.
    """

    def __init__(self, refs: Iterable[QboRef], overrides: dict[tuple[str, str], str],
                 prefs: Prefs) -> None:
        self.prefs = prefs
        self.overrides = overrides
        self._indexes: dict[tuple[str, bool], _Index] = {}
        self._names_taken: dict[str, tuple[str, str]] = {}  # normalised display name -> who
        grouped: dict[str, list[QboRef]] = defaultdict(list)
        for ref in refs:
            grouped[ref.entity].append(ref)
            if ref.entity in ("Customer", "Vendor", "Employee"):
                self._names_taken.setdefault(normalise(ref.name), (ref.entity, ref.name))
        for entity, rows in grouped.items():
            self._indexes[(entity, False)] = self._build(rows, False)
            if entity == "Account":
                self._indexes[(entity, True)] = self._build(rows, True)

    @staticmethod
    def _build(rows: list[QboRef], by_number: bool) -> _Index:
        index = _Index()
        for ref in rows:
            index.by_id[ref.qbo_id] = ref
            key = _key(ref, by_number)
            if not key:
                continue
            if not ref.active:
                index.inactive.setdefault(key, ref)
                continue
            index.exact.setdefault(key, ref)
            index.near[normalise(key)].append(ref)
        return index

    @classmethod
    def load(cls, session: Session, company: Company, prefs: Prefs | None = None) -> MappingSet:
        from portal.models import MappingOverride

        refs = session.scalars(sa.select(QboRef).where(QboRef.company_id == company.id))
        overrides = {(o.entity, o.cw_key): o.qbo_id for o in session.scalars(
            sa.select(MappingOverride).where(MappingOverride.company_id == company.id))}
        return cls(refs, overrides, prefs or Prefs())

    def index(self, entity: str, by_number: bool = False) -> _Index:
        return self._indexes.get((entity, by_number)) or _Index()

    # -- the generic rule ------------------------------------------------------------

    def resolve(self, kind: str, value: str, *, creatable: bool = False,
                by_number: bool = False, what: str | None = None) -> Resolution:
        """Exact (code-point equal), else an override, else a diagnosis."""
        entity = ENTITIES[kind][0]
        index = self.index(entity, by_number)
        override = self.overrides.get((kind, value))
        if override is not None:
            ref = index.by_id.get(override)
            if ref is None or not ref.active:
                return Resolution(kind, value, "error", override,
                                  ref.name if ref else None,
                                  message=f"Override for '{value}' points to an inactive or "
                                          "deleted QuickBooks object.",
                                  hint="Choose another object or clear the override.")
            return Resolution(kind, value, "override", ref.qbo_id, _key(ref, by_number))
        ref = index.exact.get(value)
        if ref is not None:
            return Resolution(kind, value, "exact", ref.qbo_id, _key(ref, by_number))
        label = what or ENTITIES[kind][1].rstrip("s").lower()
        near = [Candidate(r.qbo_id, _key(r, by_number) or "",
                          tuple(differences(value, _key(r, by_number) or "")))
                for r in index.near.get(normalise(value), [])]
        if near:
            return Resolution(kind, value, "near_miss", candidates=tuple(near),
                              message=f"{label.capitalize()} '{value}' is not in QuickBooks "
                                      f"exactly; '{near[0].name}' differs only by "
                                      f"{', '.join(sorted({d.kind for d in near[0].diffs}))}.",
                              hint="Accept the QuickBooks spelling as an override, or fix the "
                                   "name on one side so both match exactly.")
        dead = index.inactive.get(value)
        if dead is not None:
            return Resolution(kind, value, "inactive", dead.qbo_id, value,
                              message=f"{label.capitalize()} '{value}' is inactive in "
                                      "QuickBooks.", hint="Reactivate it in QuickBooks.")
        if creatable:
            problems = name_problems(value, NAME_LIMITS.get(entity, 500),
                                     CREATE_WORDS.get(entity, "Name"))
            if problems:
                return Resolution(kind, value, "error", message=problems[0],
                                  hint="Fix the name in ConnectWise.")
            taken = self._names_taken.get(normalise(value)) if entity in (
                "Customer", "Vendor") else None
            if taken is not None:
                return Resolution(kind, value, "conflict",
                                  message=f"Creating {entity.lower()} '{value}' would clash "
                                          f"with {taken[0]} '{taken[1]}' (QuickBooks 6240: "
                                          "names are shared by customers, vendors and "
                                          "employees).",
                                  hint=self._clash_hint(entity))
            return Resolution(kind, value, "will_create")
        return Resolution(kind, value, "missing",
                          message=f"{label.capitalize()} '{value}' does not exist in "
                                  "QuickBooks.",
                          hint=f"Create it in QuickBooks, or choose an existing "
                               f"{label} as an override.")

    def _clash_hint(self, entity: str) -> str:
        """A name another customer, vendor or employee holds: appending the account id
        separates them, unless it is on already (then only a rename does)."""
        if entity in ("Customer", "Vendor") and not self.prefs.append_account_name:
            return f"Turn on {named('append_account_name')}, or rename one of them."
        return (f"Rename the ConnectWise {'company' if entity == 'Customer' else 'vendor'} "
                "or the QuickBooks one so the names differ (the account id is already "
                f"appended: {named('append_account_name')} is on).")

    # -- entity rules ---------------------------------------------------------------

    def customer(self, name: str, account_id: str) -> list[Resolution]:
        """The customer of a record, parents first for `Parent:Child` (SPEC 5.2).

        Append on: the leaf is `Child (ACCOUNTID)`; parents must exist exactly and are
        never created.
        """
        prefs = self.prefs
        parts = name.split(":")
        if len(parts) > 5:
            return [Resolution("customer", name, "error",
                               message=f"Customer '{name}' has more than 5 levels.",
                               hint="QuickBooks allows at most 5 levels of sub-customers.")]
        if not prefs.append_account_name and parts[-1] != account_id:
            return [Resolution(
                "customer", name, "error",
                message=f"Append account name is off, so ConnectWise company '{name}' needs the "
                        f"Account ID '{name}' (Company › Finance) — or turn append on.",
                hint=f"Set the Account ID in ConnectWise (Company › Finance), or turn on "
                     f"{named('append_account_name')}.")]
        leaf = f"{parts[-1]} ({account_id})" if prefs.append_account_name else parts[-1]
        results = []
        for depth in range(1, len(parts)):
            parent = ":".join(parts[:depth])
            found = self.resolve("customer", parent)
            if found.blocking:
                found = Resolution("customer", parent, found.status, found.qbo_id,
                                   found.qbo_name, found.candidates,
                                   message=f"Parent customer '{parent}' does not exist in "
                                           "QuickBooks; create it there first."
                                   if found.status == "missing" else found.message,
                                   hint=found.hint)
            results.append(found)
        full = ":".join([*parts[:-1], leaf])
        found = self.resolve("customer", full, creatable=prefs.create_customers)
        if found.status in ("will_create", "missing") and prefs.append_account_name:
            found = self._existing_without_account_id(found, name) or found
        results.append(found)
        return results

    def _existing_without_account_id(self, found: Resolution, name: str) -> Resolution | None:
        """With append on, a customer QuickBooks already holds under the bare name (or a
        near spelling of it) is almost surely the same one: creating would make a twin."""
        index = self.index("Customer")
        twins = [index.exact[name]] if name in index.exact else index.near.get(
            normalise(name), [])
        if not twins:
            return None
        candidates = tuple(Candidate(r.qbo_id, _key(r) or "", tuple(differences(name, _key(r)
                                                                              or "")))
                           for r in twins)
        return Resolution(
            "customer", found.cw_value, "near_miss", candidates=candidates,
            message=f"QuickBooks already has customer '{candidates[0].name}', which looks like "
                    f"ConnectWise '{name}' without its account id; creating "
                    f"'{found.cw_value}' would make a twin.",
            hint=f"Accept the existing customer as an override, or turn off "
                 f"{named('append_account_name')} if QuickBooks names customers exactly "
                 "like ConnectWise.")

    def vendor(self, name: str, vendor_id: str) -> Resolution:
        """A procurement vendor: `NAME (VENDORID)` with append on, else `NAME` (SPEC 5.2)."""
        value = f"{name} ({vendor_id})" if self.prefs.append_account_name and vendor_id \
            else name
        return self.resolve("vendor", value, creatable=self.prefs.create_vendors)

    def member_vendor(self, member_name: str, identifier: str,
                      vendor_number: str | None) -> Resolution:
        """The vendor a member's reimbursements are owed to: `First Last (VENDORNUMBER)`."""
        if not vendor_number:
            return Resolution("vendor", member_name, "error",
                              message=f"Member {identifier} has no Vendor Nbr in ConnectWise "
                                      f"(System › Members › {identifier}).",
                              hint="Enter the member's vendor number in ConnectWise.")
        value = f"{member_name} ({vendor_number})" if self.prefs.append_account_name \
            else member_name
        return self.resolve("vendor", value, creatable=self.prefs.create_member_vendors)

    def account(self, value: str, context: str = "") -> Resolution:
        """GL accounts are never created: a missing one names where it is used."""
        by_number = self.prefs.gl_account_match == "Number"
        found = self.resolve("account", value, by_number=by_number, what="GL account")
        if found.status != "missing":
            return found
        where = f" ({context})" if context else ""
        return Resolution("account", value, "missing",
                          message=f"GL account '{value}'{where} does not exist in QuickBooks.",
                          hint="Create the account in QuickBooks (portal never creates "
                               "accounts), or fix the GL mapping in ConnectWise, then re-open "
                               "and re-close the invoice so ConnectWise rebuilds its GL "
                               "entries.")

    def klass(self, value: str) -> Resolution:
        return self.resolve("class", value, creatable=self.prefs.create_classes, what="class")

    def location(self, value: str) -> Resolution:
        return self.resolve("location", value, creatable=self.prefs.create_locations,
                            what="location")

    def term(self, value: str) -> Resolution:
        return self.resolve("term", value, creatable=True, what="sales term")

    def item(self, value: str) -> Resolution:
        return self.resolve("item", value, creatable=self.prefs.create_items, what="item")

    def tax_code(self, value: str) -> Resolution:
        return self.resolve("tax_code", value, what="tax code")


def prefs_for(session: Session, company: Company) -> Prefs:
    """The company's settings that matter to resolution (the setup tabs' values)."""
    from portal.services.company_settings import get_settings

    settings = get_settings(session, company)
    return Prefs(**{name: getattr(settings, name) for name in Prefs.__dataclass_fields__})


# ---- pre-flight over ConnectWise invoices --------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One issue of one record; `key` groups records that share the same fix."""

    record: str  # e.g. "invoice 10042"
    severity: str  # error, warning
    message: str
    hint: str | None = None
    kind: str | None = None  # editor entity, when a mapping fixes it
    cw_value: str | None = None
    status: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind or "", self.cw_value or "", self.message if not self.kind else
                self.status or "")


def _problem(record: str, resolution: Resolution) -> Problem:
    return Problem(record, "error", resolution.message or resolution.status, resolution.hint,
                   resolution.kind, resolution.cw_value, resolution.status)


# ---- overrides ------------------------------------------------------------------------------

def set_override(session: Session, company: Company, kind: str, cw_value: str, qbo_id: str,
                 by: str) -> None:
    """Map `cw_value` to the QuickBooks object `qbo_id` (must be an active cached object)."""
    from portal.models import MappingOverride
    from portal.services import audit

    entity = ENTITIES[kind][0]
    ref = session.scalar(sa.select(QboRef).where(
        QboRef.company_id == company.id, QboRef.entity == entity, QboRef.qbo_id == qbo_id))
    if ref is None or not ref.active:
        raise ValueError("Choose an active QuickBooks object from the list.")
    row = session.scalar(sa.select(MappingOverride).where(
        MappingOverride.company_id == company.id, MappingOverride.entity == kind,
        MappingOverride.cw_key == cw_value))
    before = {"qbo_id": row.qbo_id} if row else None
    if row is None:
        row = MappingOverride(company_id=company.id, entity=kind, cw_key=cw_value)
        session.add(row)
    row.qbo_id = qbo_id
    row.qbo_name_at_save = ref.fully_qualified_name or ref.name
    row.created_by = by
    session.flush()
    audit.record(session, "mapping.override.set", target_type=f"mapping.{kind}",
                 target_id=cw_value, company_id=company.id, before=before,
                 after={"qbo_id": qbo_id, "qbo_name": row.qbo_name_at_save})


def clear_override(session: Session, company: Company, kind: str, cw_value: str) -> bool:
    from portal.models import MappingOverride
    from portal.services import audit

    row = session.scalar(sa.select(MappingOverride).where(
        MappingOverride.company_id == company.id, MappingOverride.entity == kind,
        MappingOverride.cw_key == cw_value))
    if row is None:
        return False
    audit.record(session, "mapping.override.clear", target_type=f"mapping.{kind}",
                 target_id=cw_value, company_id=company.id, before={"qbo_id": row.qbo_id})
    session.delete(row)
    session.flush()
    return True
