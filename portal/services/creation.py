"""Create missing QuickBooks objects from the mapping editor (customers, terms, classes,
locations), under the company's run lock, with a requestid derived from the value.

The requestid is the same for the same company, entity and name, so a retried create after
a dropped answer is replayed by QuickBooks instead of making a twin.
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import clients
from portal.integrations import errors
from portal.models import Company, CwRef, JobRun, RunKind, RunStatus, User
from portal.services import audit, reference, runs
from portal.services.company_settings import named
from portal.services.mapping import ENTITIES, MappingSet, prefs_for

CREATABLE = ("customer", "vendor", "term", "class", "location", "item")
_SUFFIX = re.compile(r"^(?P<name>.*) \((?P<account>[^()]*)\)$")


class CreateError(ValueError):
    """The object cannot be created; the message says why and what to do."""


@dataclass(frozen=True)
class Planned:
    entity: str
    body: dict[str, Any]


def request_id(company: Company, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{company.id}:{kind}:{value}".encode()).hexdigest()
    return f"map-{digest[:32]}"


def _cw_company(session: Session, name: str, account: str | None) -> CwRef | None:
    query = sa.select(CwRef).where(CwRef.entity == "company", CwRef.name == name)
    for ref in session.scalars(query):
        if account is None or (ref.extra or {}).get("accountNumber") == account:
            return ref
    return None


def plan(session: Session, company: Company, mapping: MappingSet, kind: str,
         value: str) -> list[Planned]:
    """What would be created, parents first: shown to the person, then sent."""
    if kind not in CREATABLE:
        raise CreateError(f"portal never creates {ENTITIES[kind][1].lower()}; create it in "
                          "QuickBooks, then refresh the reference data.")
    resolution = {"customer": lambda v: mapping.resolve("customer", v, creatable=True),
                  "vendor": lambda v: mapping.resolve("vendor", v, creatable=True),
                  "item": lambda v: mapping.resolve("item", v, creatable=True),
                  "term": mapping.term, "class": lambda v: mapping.resolve(
                      "class", v, creatable=True), "location": lambda v: mapping.resolve(
                      "location", v, creatable=True)}[kind](value)
    if resolution.status != "will_create":
        raise CreateError(resolution.message or f"'{value}' is {resolution.status}; nothing "
                                                "to create.")
    if kind == "customer":
        return [_customer(session, mapping, value)]
    if kind == "vendor":
        match = _SUFFIX.match(value)
        return [Planned("Vendor", {"DisplayName": value, "CompanyName": (
            match.group("account") if match else value)[:100]})]
    if kind == "term":
        return [_term(session, value)]
    if kind == "item":
        return _item_steps(session, company, mapping, value)
    return _hierarchy(mapping, kind, value)


def _scanned_fields(session: Session, company: Company, kind: str,
                    value: str) -> dict[str, Any] | None:
    """What the latest backlog check saw a batch would give this object (an item's type
    and accounts, a customer's terms, currency and ConnectWise identity)."""
    from portal.models import MappingScan, MappingValue

    return session.scalar(sa.select(MappingValue.create_fields).join(MappingScan).where(
        MappingScan.company_id == company.id, MappingValue.kind == kind,
        MappingValue.cw_value == value).order_by(MappingScan.id.desc()).limit(1))


def plan_from_editor(session: Session, company: Company, mapping: MappingSet, kind: str,
                     value: str) -> list[Planned]:
    """`plan`, plus what a batch would add to a customer (SPEC 7.2 step 2: terms, currency
    and the note), so creating from the editor makes the same customer a batch would."""
    steps = plan(session, company, mapping, kind, value)
    fields = _scanned_fields(session, company, kind, value) if kind == "customer" else None
    for step in steps:
        if step.entity == "Customer" and fields:
            _customer_extras(mapping, step, dict(fields))
    return steps


@dataclass(frozen=True)
class Shown:
    """One field of a planned object as the preview shows it: a label, a readable value,
    and where the value comes from when that is not obvious."""

    label: str
    value: str
    source: str = ""


LABELS = {"DisplayName": "Display name", "CompanyName": "Company name", "Name": "Name",
          "Type": "Type", "Job": "Sub-customer", "SubItem": "Sub-item",
          "SubClass": "Sub-class", "SubDepartment": "Sub-location",
          "ParentRef": "Parent", "PrimaryPhone": "Phone", "PrimaryEmailAddr": "Email",
          "BillAddr": "Billing address", "ShipAddr": "Shipping address",
          "SalesTermRef": "Terms", "CurrencyRef": "Currency", "Notes": "Notes",
          "DueDays": "Due days", "IncomeAccountRef": "Income account",
          "ExpenseAccountRef": "Expense (COGS) account",
          "AssetAccountRef": "Inventory asset account", "TrackQtyOnHand": "Track quantity",
          "QtyOnHand": "Quantity on hand", "InvStartDate": "Inventory start date",
          "Description": "Description"}
REF_ENTITIES = {"IncomeAccountRef": "Account", "ExpenseAccountRef": "Account",
                "AssetAccountRef": "Account", "SalesTermRef": "Term"}


def _shown_value(mapping: MappingSet, entity: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "ParentRef":
        ref = str(value.get("value", ""))
        if ref.startswith("@"):
            return f"{ref[1:]} (created first)"
        found = mapping.index(entity).by_id.get(ref)
        return (found.fully_qualified_name or found.name) if found else f"QuickBooks id {ref}"
    if key in REF_ENTITIES:
        ref = str(value.get("value", ""))
        found = mapping.index(REF_ENTITIES[key]).by_id.get(ref)
        return (found.fully_qualified_name or found.name) if found else f"QuickBooks id {ref}"
    if key == "CurrencyRef":
        return str(value.get("value", ""))
    if key in ("PrimaryPhone",):
        return str(value.get("FreeFormNumber", ""))
    if key in ("PrimaryEmailAddr",):
        return str(value.get("Address", ""))
    if key in ("BillAddr", "ShipAddr"):
        parts = [value.get("Line1"), value.get("City"), value.get("CountrySubDivisionCode"),
                 value.get("PostalCode")]
        return ", ".join(str(p) for p in parts if p)
    return str(value)


def describe(mapping: MappingSet, step: Planned) -> list[Shown]:
    """The fields of one planned object, labelled, in the order they are sent."""
    shown: list[Shown] = []
    for key, value in step.body.items():
        source = ""
        if step.entity == "Customer" and key == "CompanyName" and \
                mapping.prefs.append_account_name:
            source = (f"The ConnectWise Account ID: with {named('append_account_name')} on, "
                      "SPEC 5.2 keeps it here as the link to ConnectWise, and the company's "
                      "name is in the display name")
        shown.append(Shown(LABELS.get(key, key),
                           _shown_value(mapping, step.entity, key, value), source))
    return shown


def _item_steps(session: Session, company: Company, mapping: MappingSet,
                value: str) -> list[Planned]:
    """Missing categories of `Category:Sub:Item`, then the item with the type and accounts
    the backlog check saw on its ConnectWise lines."""
    fields = _scanned_fields(session, company, "item", value)
    if not fields:
        raise CreateError(f"No unposted ConnectWise line uses item '{value}', so its accounts "
                          "are unknown: check the backlog again, or let a batch create it.")
    parts = value.split(":")
    steps = [_item(mapping, {"Type": "Category"}, ":".join(parts[:depth]))
             for depth in range(1, len(parts))
             if mapping.resolve("item", ":".join(parts[:depth])).qbo_id is None]
    return [*steps, _item(mapping, dict(fields), value)]


def _customer(session: Session, mapping: MappingSet, value: str) -> Planned:
    *parents, leaf = value.split(":")
    match = _SUFFIX.match(leaf) if mapping.prefs.append_account_name else None
    name = match.group("name") if match else leaf
    account = match.group("account") if match else None
    cw = _cw_company(session, ":".join([*parents, name]), account)
    body: dict[str, Any] = {"DisplayName": leaf, "CompanyName": (account or name)[:100]}
    if parents:
        parent = mapping.resolve("customer", ":".join(parents))
        if parent.qbo_id is None:
            raise CreateError(f"Parent customer '{':'.join(parents)}' does not exist in "
                              "QuickBooks; create it there first.")
        body.update({"ParentRef": {"value": parent.qbo_id}, "Job": True})
    extra = (cw.extra or {}) if cw and mapping.prefs.copy_contact_details else {}
    if extra.get("phoneNumber"):
        body["PrimaryPhone"] = {"FreeFormNumber": str(extra["phoneNumber"])}
    if extra.get("invoiceToEmailAddress"):
        body["PrimaryEmailAddr"] = {"Address": str(extra["invoiceToEmailAddress"])}
    if extra.get("addressLine1"):
        body["BillAddr"] = {"Line1": extra.get("addressLine1"), "City": extra.get("city"),
                            "CountrySubDivisionCode": extra.get("state"),
                            "PostalCode": extra.get("zip")}
    return Planned("Customer", body)


def _term(session: Session, value: str) -> Planned:
    term = None
    for ref in session.scalars(sa.select(CwRef).where(CwRef.entity == "billing_term")):
        extra = ref.extra or {}
        if value in (extra.get("termsXref"), ref.name):
            term = ref
            break
    days = (term.extra or {}).get("dueDays") if term else None
    if not isinstance(days, int) or isinstance(days, bool):
        raise CreateError(f"Billing term '{value}' has due days '{days}'; QuickBooks needs a "
                          "whole number.")
    return Planned("Term", {"Name": value[:31], "Type": "STANDARD", "DueDays": days})


def _hierarchy(mapping: MappingSet, kind: str, value: str) -> list[Planned]:
    """Missing levels of `A:B:C`, parents first (parents are created too, SPEC 4.8)."""
    entity = ENTITIES[kind][0]
    sub = "SubClass" if entity == "Class" else "SubDepartment"
    parts = value.split(":")
    planned: list[Planned] = []
    for depth in range(1, len(parts) + 1):
        path = ":".join(parts[:depth])
        if mapping.resolve(kind, path).qbo_id and depth < len(parts):
            continue
        body: dict[str, Any] = {"Name": parts[depth - 1]}
        if depth > 1:
            body.update({sub: True, "ParentRef": {"value": f"@{':'.join(parts[:depth - 1])}"}})
        planned.append(Planned(entity, body))
    return planned


def _item(mapping: MappingSet, fields: dict[str, Any], name: str) -> Planned:
    """A product or service item: its type and accounts come from the ConnectWise line."""
    def account(key: str) -> str | None:
        value = fields.get(f"{key}_id") or None
        if value is None and fields.get(key):
            value = mapping.account(str(fields[key])).qbo_id
        return value

    kind = fields.get("Type") or "NonInventory"
    parent, _sep, leaf = name.rpartition(":")
    body: dict[str, Any] = {"Name": leaf[:100], "Type": kind}
    if parent:  # `Category:Sub:Item`: the item sits under its category (created first)
        found = mapping.resolve("item", parent).qbo_id
        body.update({"SubItem": True, "ParentRef": {"value": found or f"@{parent}"}})
    if kind == "Category":
        return Planned("Item", body)
    income = account("income_account")
    if income is None:
        raise CreateError(f"Item '{name}' needs an income account that exists in QuickBooks.")
    body["IncomeAccountRef"] = {"value": income}
    expense = account("cost_account")
    if expense:
        body["ExpenseAccountRef"] = {"value": expense}
    if fields.get("description"):
        body["Description"] = str(fields["description"])[:4000]
    if kind == "Inventory":
        asset = account("asset_account")
        if asset is None or expense is None:
            raise CreateError(f"Inventory item '{name}' needs an asset and a COGS account: "
                              f"choose {named('inventory_asset_account')} and "
                              f"{named('cogs_account')}, or create the item as "
                              "non-inventory.")
        body.update({"AssetAccountRef": {"value": asset}, "TrackQtyOnHand": True,
                     "QtyOnHand": 0, "InvStartDate": str(fields.get("inventory_start_date")
                                                         or "2000-01-01")})
    return Planned("Item", body)


def _send(session: Session, company: Company, qbo: Any, mapping: MappingSet, kind: str,
          value: str, steps: list[Planned]) -> list[str]:
    """Create the planned objects in order, each cached at once; returns their ids.

    The requestid comes from the value, so a retry after a lost answer is replayed; a name
    QuickBooks already holds (a stale cache) is adopted when it is active.
    """
    ids: dict[str, str] = {}
    created: list[str] = []
    for step in steps:
        parent = (step.body.get("ParentRef") or {}).get("value", "")
        if parent.startswith("@"):
            path = parent[1:]
            step.body["ParentRef"]["value"] = ids.get(path) or mapping.resolve(
                kind, path).qbo_id
        name = step.body.get("DisplayName") or step.body.get("Name")
        session.commit()  # a token refresh during the call writes; start fresh after it
        try:
            obj = qbo.create(step.entity, step.body,
                             request_id=request_id(company, kind, f"{value}|{name}"))
        except errors.Invalid as exc:
            obj = _existing(qbo, step.entity, str(name)) if exc.code in ("6240", "6000") \
                else None
            if obj is None:
                raise
        reference.upsert_qbo(session, company, step.entity, obj)
        full = obj.get("FullyQualifiedName") or name
        ids[full] = str(obj["Id"])
        created.append(str(obj["Id"]))
        audit.record(session, "mapping.create", target_type=f"qbo.{step.entity}",
                     target_id=obj["Id"], company_id=company.id,
                     after={"cw_value": value, **{k: v for k, v in step.body.items()
                                                  if k in ("DisplayName", "Name")}})
        session.commit()  # cached at once, and no write is held open across the next call
    return created


def _existing(qbo: Any, entity: str, name: str) -> dict[str, Any] | None:
    from portal.integrations.quickbooks import escape

    field = "DisplayName" if entity in ("Customer", "Vendor") else "Name"
    rows = qbo.query(f"SELECT * FROM {entity} WHERE {field} = {escape(name)} "
                     "AND Active IN (true, false)").get(entity, [])
    if not rows:
        return None
    if not rows[0].get("Active", True):
        raise CreateError(f"{entity} '{name}' is inactive in QuickBooks; reactivate it.")
    return rows[0]


def ensure(session: Session, company: Company, qbo: Any, mapping: MappingSet,
           need: Any) -> list[str]:
    """Create one reference a batch needs (the batch already holds the company lock)."""
    if need.kind == "item":
        steps = [_item(mapping, dict(need.fields), need.name)]
    else:
        steps = plan(session, company, mapping, need.kind, need.name)
        for step in steps:
            if step.entity == "Customer":
                _customer_extras(mapping, step, dict(need.fields))
    return _send(session, company, qbo, mapping, need.kind, need.name, steps)


def _rounds(needs: list[Any]) -> dict[int, list[Any]]:
    """The /batch rounds of a batch's references: an object created in a round can only
    be referenced from a later one, so each goes in the first round after the needs it
    refers to (its parent: a category, class or location; a customer's sales term). What
    already exists in QuickBooks is no reason to wait, so most go in round 0 or 1."""
    by_key = {(need.kind, need.name): need for need in needs}
    found: dict[tuple[str, str], int] = {}

    def round_of(need: Any) -> int:
        key = (need.kind, need.name)
        if key not in found:
            found[key] = 0  # a cycle cannot happen; this only guards the recursion
            depends = [(need.kind, need.name.rpartition(":")[0])] if ":" in need.name \
                and need.kind != "customer" else []  # parent customers are never created
            term = (need.fields or {}).get("term") if need.kind == "customer" else None
            if term:
                depends.append(("term", term))
            found[key] = 1 + max((round_of(by_key[d]) for d in depends if d in by_key),
                                 default=-1)
        return found[key]

    rounds: dict[int, list[Any]] = {}
    for need in needs:
        rounds.setdefault(round_of(need), []).append(need)
    return rounds


def _step(session: Session, company: Company, mapping: MappingSet, need: Any
          ) -> Planned | None:
    """The one object to send for a need (its parents came in earlier rounds), or None
    when it exists by now."""
    if mapping.resolve(need.kind, need.name, creatable=True).status != "will_create":
        return None
    if need.kind == "item":
        step = _item(mapping, dict(need.fields), need.name)
    else:
        step = plan(session, company, mapping, need.kind, need.name)[-1]
        if step.entity == "Customer":
            _customer_extras(mapping, step, dict(need.fields))
        elif step.entity == "Vendor" and (need.fields or {}).get("CompanyName"):
            step.body["CompanyName"] = str(need.fields["CompanyName"])[:100]  # SPEC 5.2
    parent = (step.body.get("ParentRef") or {}).get("value", "")
    if parent.startswith("@"):
        found = mapping.resolve(need.kind, parent[1:]).qbo_id
        if found is None:
            raise CreateError(f"The parent '{parent[1:]}' of '{need.name}' is not in "
                              "QuickBooks.")
        step.body["ParentRef"]["value"] = found
    return step


def ensure_all(session: Session, company: Company, qbo: Any,
               load: Any, needs: list[Any], send: Any, in_flight: int = 4) -> int:
    """Create what a batch needs in rounds of /batch requests (30 objects each); returns how
    many were created.

    `load()` gives the current MappingSet; `send(operations, request_id)` posts one /batch
    and must be safe to call from several threads (the engine waits out throttling there):
    the requests of one round are independent, so up to `in_flight` go at once. The
    requestid is derived from the names, so a resumed batch replays a round whose answer
    was lost; a name QuickBooks already holds is adopted when active.
    """
    rounds = _rounds(needs)
    created = 0
    for number in sorted(rounds):
        mapping = load()
        steps = [(need, step) for need in rounds[number]
                 if (step := _step(session, company, mapping, need)) is not None]
        chunks = [steps[start:start + 30] for start in range(0, len(steps), 30)]
        session.commit()  # nothing held open across the calls (the token may refresh)

        def create(chunk: list[tuple[Any, Planned]]) -> list[dict[str, Any]]:
            names = "|".join(f"{n.kind}:{n.name}" for n, _s in chunk)
            rid = hashlib.sha256(f"{company.id}:refs:{names}".encode()).hexdigest()[:32]
            answers = {a.get("bId"): a for a in send(
                [{"bId": f"r{i}", "operation": "create", step.entity: step.body}
                 for i, (_need, step) in enumerate(chunk)], rid)}
            # every answer (and any lookup of a lost one) before the first write
            return [_answer(qbo, step, answers.get(f"r{i}"))
                    for i, (_need, step) in enumerate(chunk)]

        if len(chunks) > 1:
            with ThreadPoolExecutor(min(in_flight, len(chunks)),
                                    thread_name_prefix="qbo-create") as pool:
                answered = list(pool.map(create, chunks))
        else:
            answered = [create(chunk) for chunk in chunks]
        for chunk, objects in zip(chunks, answered):
            for (need, step), obj in zip(chunk, objects):
                reference.upsert_qbo(session, company, step.entity, obj)
                audit.record(session, "mapping.create", target_type=f"qbo.{step.entity}",
                             target_id=obj["Id"], company_id=company.id,
                             after={"cw_value": need.name, "by": "batch"})
                created += 1
        session.commit()
    return created


def _answer(qbo: Any, step: Planned, answer: dict[str, Any] | None) -> dict[str, Any]:
    """The created object of one /batch answer; a taken name is adopted, a lost answer is
    looked up, anything else is refused with QuickBooks' reason."""
    if answer and step.entity in answer:
        return answer[step.entity]
    name = str(step.body.get("DisplayName") or step.body.get("Name"))
    fault = (answer or {}).get("Fault") or {}
    error = (fault.get("Error") or [{}])[0]
    code = str(error.get("code") or "")
    if answer is None or code in ("6240", "6000", "10000") or \
            str(fault.get("type", "")).lower() == "systemfault":
        found = _existing(qbo, step.entity, name)
        if found is not None:
            return found
        if answer is None or code == "10000":
            return qbo.create(step.entity, step.body)
    raise CreateError(f"QuickBooks refused {step.entity.lower()} '{name}': "
                      f"{error.get('Detail') or error.get('Message') or code}")


def _customer_extras(mapping: MappingSet, step: Planned, fields: dict[str, Any]) -> None:
    """SPEC 7.2 step 2: terms, currency, the note, and contact details only when asked."""
    if fields.get("term"):
        term = mapping.term(str(fields["term"]))
        if term.qbo_id:
            step.body["SalesTermRef"] = {"value": term.qbo_id}
    if fields.get("currency"):
        step.body["CurrencyRef"] = {"value": fields["currency"]}
    if fields.get("copy_contact_details") is False:
        for key in ("PrimaryPhone", "PrimaryEmailAddr", "BillAddr", "ShipAddr"):
            step.body.pop(key, None)
    identifier = fields.get("cw_identifier") or fields.get("cw_company_id")
    if identifier:
        step.body["Notes"] = f"Created by portal from ConnectWise company {identifier}"


def create(session: Session, company: Company, kind: str, value: str, by: User) -> list[str]:
    """Create what `plan` lists, holding the company's run lock; returns the new ids.

    Each object goes into the reference cache at once, so the editor sees it.
    """
    try:
        run = runs.start(session, RunKind.MAPPING_CREATE, user=by, company_id=company.id,
                         total=1)
    except runs.RunAlreadyActive:
        session.rollback()
        raise CreateError("Another run is working on this company; try again when it has "
                          "finished.") from None
    session.commit()
    runs.claim(session, run.id, job_id=None, stale_seconds=300)
    try:
        mapping = MappingSet.load(session, company, prefs_for(session, company))
        qbo = clients.quickbooks(session, company)
        created = _send(session, company, qbo, mapping, kind, value,
                        plan_from_editor(session, company, mapping, kind, value))
        runs.finish(session, session.get(JobRun, run.id), RunStatus.SUCCEEDED,
                    f"Created {len(created)} object(s) for '{value}'")
        return created
    except (CreateError, errors.IntegrationError) as exc:
        session.rollback()
        runs.finish(session, session.get(JobRun, run.id), RunStatus.FAILED, str(exc))
        if isinstance(exc, CreateError):
            raise
        raise CreateError(f"QuickBooks refused the create: {exc}") from None
