"""Create missing QuickBooks objects from the mapping editor (customers, terms, classes,
locations), under the company's run lock, with a requestid derived from the value.

The requestid is the same for the same company, entity and name, so a retried create after
a dropped answer is replayed by QuickBooks instead of making a twin.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import clients
from portal.integrations import errors
from portal.models import Company, CwRef, JobRun, RunKind, RunStatus, User
from portal.services import audit, reference, runs
from portal.services.mapping import ENTITIES, MappingSet, prefs_for

CREATABLE = ("customer", "vendor", "term", "class", "location")
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
    return _hierarchy(mapping, kind, value)


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
    extra = (cw.extra or {}) if cw else {}
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
        created: list[str] = []
        ids: dict[str, str] = {}
        for step in plan(session, company, mapping, kind, value):
            parent = (step.body.get("ParentRef") or {}).get("value", "")
            if parent.startswith("@"):
                path = parent[1:]
                step.body["ParentRef"]["value"] = ids.get(path) or mapping.resolve(
                    kind, path).qbo_id
            name = step.body.get("DisplayName") or step.body.get("Name")
            obj = qbo.create(step.entity, step.body,
                             request_id=request_id(company, kind, f"{value}|{name}"))
            reference.upsert_qbo(session, company, step.entity, obj)
            full = obj.get("FullyQualifiedName") or name
            ids[full] = str(obj["Id"])
            created.append(str(obj["Id"]))
            audit.record(session, "mapping.create", target_type=f"qbo.{step.entity}",
                         target_id=obj["Id"], company_id=company.id,
                         after={"cw_value": value, **{k: v for k, v in step.body.items()
                                                      if k in ("DisplayName", "Name")}})
        runs.finish(session, session.get(JobRun, run.id), RunStatus.SUCCEEDED,
                    f"Created {len(created)} object(s) for '{value}'")
        return created
    except (CreateError, errors.IntegrationError) as exc:
        session.rollback()
        runs.finish(session, session.get(JobRun, run.id), RunStatus.FAILED, str(exc))
        if isinstance(exc, CreateError):
            raise
        raise CreateError(f"QuickBooks refused the create: {exc}") from None
