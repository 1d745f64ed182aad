"""The reference cache: pull both sides' lists into local tables; read them back for editors.

A refresh replaces one list at a time inside one transaction (delete, then bulk insert),
so a reader never sees half a list and a failed list keeps its previous rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient
from portal.models import Company, CwRef, QboRef, RefFetch
from portal.models.types import utcnow
from portal.services.runs import RunProgress

# QuickBooks lists: entity, and whether inactive objects are fetched too.
QBO_LISTS: tuple[str, ...] = ("Customer", "Vendor", "Employee", "Item", "Account", "Class",
                              "Department", "Term", "TaxCode", "TaxRate")
QBO_LABELS = {"Customer": "customers", "Vendor": "vendors", "Employee": "employees",
              "Item": "items", "Account": "accounts", "Class": "classes",
              "Department": "locations", "Term": "terms", "TaxCode": "tax codes",
              "TaxRate": "tax rates", "CompanyCurrency": "currencies"}

# ConnectWise lists: entity -> (path, conditions)
CW_LISTS: dict[str, tuple[str, str | None]] = {
    "company": ("/company/companies", None),
    "member": ("/system/members", None),
    "catalog": ("/procurement/catalog", None),
    "product_type": ("/procurement/types", None),
    "gl_account": ("/finance/glAccounts", None),
    "tax_code": ("/finance/taxCodes", None),
    "billing_term": ("/finance/billingTerms", None),
    "location": ("/system/locations", None),
    "currency": ("/finance/currencies", None),
    "work_role": ("/time/workRoles", None),
    "work_type": ("/time/workTypes", None),
}
CW_LABELS = {"company": "companies", "member": "members", "catalog": "catalog items",
             "product_type": "product types", "gl_account": "GL accounts",
             "tax_code": "tax codes", "billing_term": "billing terms",
             "location": "locations and territories", "currency": "currencies",
             "work_role": "work roles", "work_type": "work types"}


@dataclass(frozen=True)
class ListAge:
    side: str
    entity: str
    label: str
    fetched_at: datetime | None
    count: int
    error: str | None

    @property
    def minutes(self) -> int | None:
        if self.fetched_at is None:
            return None
        return int((utcnow() - self.fetched_at).total_seconds() // 60)


# ---- QuickBooks -------------------------------------------------------------------------

def _ref_value(ref: Any) -> str | None:
    return str(ref.get("value")) if isinstance(ref, dict) and ref.get("value") else None


def qbo_row(company_id: int, entity: str, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The cache row of one QuickBooks object (what matching and editors need)."""
    name = obj.get("DisplayName") or obj.get("Name") or obj.get("FullyQualifiedName") or ""
    extra: dict[str, Any] = {}
    if entity == "Item":
        extra = {k: _ref_value(obj.get(k)) for k in ("IncomeAccountRef", "ExpenseAccountRef",
                                                      "AssetAccountRef")}
    elif entity == "TaxCode":
        rates = (obj.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        extra = {"sales_rates": len(rates), "taxable": obj.get("Taxable"),
                 "sales_rate_ids": [_ref_value(r.get("TaxRateRef")) for r in rates]}
    elif entity == "TaxRate":
        extra = {"rate": obj.get("RateValue")}
    elif entity == "CompanyCurrency":
        extra = {"code": obj.get("Code")}
    elif entity == "Term":
        extra = {"due_days": obj.get("DueDays")}
    elif entity in ("Customer", "Vendor") and obj.get("CompanyName"):
        extra = {"company_name": obj.get("CompanyName")}
    return {"company_id": company_id, "entity": entity, "qbo_id": str(obj.get("Id")),
            "name": str(name)[:500],
            "fully_qualified_name": obj.get("FullyQualifiedName"),
            "acct_num": obj.get("AcctNum"), "type": obj.get("Type") or obj.get("AccountType"),
            "subtype": obj.get("AccountSubType"),
            "currency": _ref_value(obj.get("CurrencyRef")),
            "active": bool(obj.get("Active", True)),
            "parent_id": _ref_value(obj.get("ParentRef")), "sync_token": obj.get("SyncToken"),
            "last_updated_time": (obj.get("MetaData") or {}).get("LastUpdatedTime"),
            "extra": extra, "fetched_at": now}


def _replace(session: Session, model: type, where: Any, rows: list[dict[str, Any]]) -> None:
    session.execute(sa.delete(model).where(where))
    if rows:
        session.execute(sa.insert(model), rows)


def _fetched(session: Session, side: str, company_key: int, entity: str, count: int,
             error: str | None) -> None:
    row = session.scalar(sa.select(RefFetch).where(
        RefFetch.side == side, RefFetch.company_key == company_key, RefFetch.entity == entity))
    if row is None:
        row = RefFetch(side=side, company_key=company_key, entity=entity)
        session.add(row)
    if error is None:
        row.fetched_at = utcnow()
        row.count = count
    row.error = error[:500] if error else None


def refresh_qbo_list(session: Session, company: Company, qbo: QuickBooksClient,
                     entity: str) -> int:
    """Replace one QuickBooks list of the company (inactive objects included)."""
    where = "Active IN (true, false)" if entity not in ("TaxRate", "TaxCode") else ""
    now = utcnow()
    rows = [qbo_row(company.id, entity, obj, now) for obj in qbo.query_all(entity, where)]
    _replace(session, QboRef, sa.and_(QboRef.company_id == company.id,
                                       QboRef.entity == entity), rows)
    _fetched(session, "qbo", company.id, entity, len(rows), None)
    return len(rows)


def upsert_qbo(session: Session, company: Company, entity: str, obj: dict[str, Any]) -> None:
    """Put an object portal just created or read straight into the cache."""
    row = qbo_row(company.id, entity, obj, utcnow())
    session.execute(sa.delete(QboRef).where(QboRef.company_id == company.id,
                                            QboRef.entity == entity,
                                            QboRef.qbo_id == row["qbo_id"]))
    session.execute(sa.insert(QboRef), [row])


# ---- ConnectWise ------------------------------------------------------------------------

def cw_row(entity: str, record: dict[str, Any], now: datetime) -> dict[str, Any]:
    code = record.get("currencyCode")
    if isinstance(code, dict):  # FinanceCurrency: a CurrencyCodeReference
        code = code.get("name")
    identifier = record.get("identifier") or record.get("accountNumber") or \
        record.get("glAccountNumber") or record.get("code") or code
    name = record.get("name") or record.get("description") or (
        " ".join(filter(None, [record.get("firstName"), record.get("lastName")])) or None)
    keep = {k: v for k, v in record.items() if k not in ("_info", "id", "identifier", "name")
            and not isinstance(v, (list, dict))}
    for key in ("types", "type", "productClass", "currency", "territory", "securityRole"):
        if key in record:
            keep[key] = record[key]
    return {"entity": entity, "cw_id": int(record.get("id", 0)),
            "identifier": str(identifier)[:255] if identifier is not None else None,
            "name": str(name)[:500] if name else None, "extra": keep, "fetched_at": now}


def refresh_cw_list(session: Session, cw: ConnectWiseClient, entity: str) -> int:
    path, conditions = CW_LISTS[entity]
    now = utcnow()
    rows = [cw_row(entity, record, now) for record in cw.iter_all(path, conditions=conditions)]
    _replace(session, CwRef, CwRef.entity == entity, rows)
    _fetched(session, "cw", 0, entity, len(rows), None)
    return len(rows)


# ---- the whole refresh ------------------------------------------------------------------

def refresh_all(session: Session, company: Company, cw: ConnectWiseClient | None,
                qbo: QuickBooksClient, progress: RunProgress) -> list[str]:
    """Refresh every list of both sides, committing each; returns the lists that failed.

    One failing list (a missing permission, say) does not stop the others; its previous
    rows stay and the page shows the error beside it.
    """
    steps: list[tuple[str, str, Callable[[], int]]] = []
    if cw is not None:
        steps += [("cw", entity, lambda e=entity: refresh_cw_list(session, cw, e))
                  for entity in CW_LISTS]
    lists = list(QBO_LISTS) + (["CompanyCurrency"] if company.multicurrency else [])
    steps += [("qbo", entity, lambda e=entity: refresh_qbo_list(session, company, qbo, e))
              for entity in lists]
    progress.start(len(steps), "Fetching reference data")
    failed: list[str] = []
    for side, entity, fetch in steps:
        label = (CW_LABELS.get(entity) if side == "cw" else QBO_LABELS.get(entity)) or entity
        system = "ConnectWise" if side == "cw" else "QuickBooks"
        try:
            count = fetch()
        except errors.IntegrationError as exc:
            session.rollback()
            _fetched(session, side, company.id if side == "qbo" else 0, entity, 0, exc.message)
            failed.append(f"{system} {label}")
            progress.advance()
            progress.message(f"{system} {label}: failed: {exc.message}", level="error")
            continue
        progress.advance()
        progress.message(f"{system} {label}: {count:,}")
    return failed


def ages(session: Session, company: Company | None) -> list[ListAge]:
    """How old each list is, for "QuickBooks customers fetched 12 minutes ago (5,012)"."""
    fetched = {(f.side, f.company_key, f.entity): f for f in session.scalars(sa.select(RefFetch))}
    result: list[ListAge] = []
    for entity, label in CW_LABELS.items():
        f = fetched.get(("cw", 0, entity))
        result.append(ListAge("cw", entity, f"ConnectWise {label}", f.fetched_at if f else None,
                              f.count if f else 0, f.error if f else None))
    if company is not None:
        for entity in QBO_LISTS:
            f = fetched.get(("qbo", company.id, entity))
            result.append(ListAge("qbo", entity, f"QuickBooks {QBO_LABELS[entity]}",
                                  f.fetched_at if f else None, f.count if f else 0,
                                  f.error if f else None))
    return result


def qbo_objects(session: Session, company_id: int, entity: str, *,
                active_only: bool = True) -> Iterator[QboRef]:
    query = sa.select(QboRef).where(QboRef.company_id == company_id, QboRef.entity == entity)
    if active_only:
        query = query.where(QboRef.active.is_(True))
    return iter(session.scalars(query.order_by(QboRef.fully_qualified_name, QboRef.name)))


def choices(session: Session, company_id: int, entity: str,
            account_types: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(QuickBooks id, label) pairs of active cached objects, for a setting's dropdown."""
    wanted = set(account_types or ())
    result = []
    for ref in qbo_objects(session, company_id, entity):
        if wanted and ref.type not in wanted:
            continue
        label = ref.fully_qualified_name or ref.name
        if ref.acct_num:
            label = f"{ref.acct_num} {label}"
        result.append((ref.qbo_id, label))
    return result


def search(session: Session, company_id: int, entity: str, text: str,
           limit: int = 30) -> list[tuple[str, str]]:
    """(id, label) of active cached objects whose name contains `text` (case-insensitive)."""
    like = f"%{text.lower().replace('%', '').replace('_', '')}%"
    rows = session.execute(
        sa.select(QboRef.qbo_id, QboRef.name, QboRef.fully_qualified_name, QboRef.acct_num)
        .where(QboRef.company_id == company_id, QboRef.entity == entity,
               QboRef.active.is_(True),
               sa.or_(sa.func.lower(QboRef.name).like(like),
                      sa.func.lower(QboRef.fully_qualified_name).like(like)))
        .order_by(QboRef.fully_qualified_name, QboRef.name).limit(limit))
    result = []
    for qbo_id, name, full, acct_num in rows:
        label = full or name
        result.append((qbo_id, f"{acct_num} {label}" if acct_num else label))
    return result
