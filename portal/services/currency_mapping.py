"""Currency mapping rows: a ConnectWise currency code -> a QuickBooks currency code (SPEC 4.7).

A CW code without a row maps to itself (ISO codes are the same on both sides). Rows only
name currencies the QuickBooks company already has (its home currency, or a cached
CompanyCurrency): portal never creates QuickBooks currencies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Company, CurrencyMapping, CwRef, QboRef
from portal.services import mapping_rows

ISO_CODE = re.compile(r"[A-Z]{3}")


class CurrencyMappingError(ValueError):
    """A row that cannot be saved; the message says why and how to fix it."""


@dataclass(frozen=True)
class CurrencyView:
    """One ConnectWise currency on the editor page."""

    cw_code: str
    name: str
    saved: str | None  # the company's row, if any
    effective: str | None  # the QuickBooks code it maps to (None: not an ISO code, unmapped)
    available: bool  # the company has `effective`
    cached: bool  # False: a saved row whose CW code is no longer in the cache


def qbo_code(ref: QboRef) -> str | None:
    """The ISO code of a cached CompanyCurrency: `extra["code"]` when the cache keeps it,
    else a name that is itself an ISO code."""
    for candidate in ((ref.extra or {}).get("code"), ref.name):
        text = str(candidate or "").strip().upper()
        if ISO_CODE.fullmatch(text):
            return text
    return None


def qbo_currencies(session: Session, company: Company) -> dict[str, str]:
    """{code: label} of the currencies the QuickBooks company has: home first."""
    found: dict[str, str] = {}
    if company.home_currency:
        found[company.home_currency] = f"{company.home_currency} (home currency)"
    for ref in session.scalars(sa.select(QboRef).where(
            QboRef.company_id == company.id, QboRef.entity == "CompanyCurrency",
            QboRef.active.is_(True)).order_by(QboRef.name)):
        code = qbo_code(ref)
        if code and code not in found:
            found[code] = code if ref.name == code else f"{code} ({ref.name})"
    return found


def cw_currencies(session: Session) -> dict[str, str]:
    """{code: name} of the cached ConnectWise currencies."""
    return {ref.identifier: ref.name or ref.identifier
            for ref in session.scalars(sa.select(CwRef).where(CwRef.entity == "currency")
                                       .order_by(CwRef.identifier))
            if ref.identifier}


def _saved(session: Session, company: Company) -> dict[str, CurrencyMapping]:
    return {r.cw_currency: r for r in session.scalars(sa.select(CurrencyMapping).where(
        CurrencyMapping.company_id == company.id))}


def rows(session: Session, company: Company) -> list[CurrencyView]:
    """Every cached ConnectWise currency, plus saved rows for codes no longer cached."""
    cw = cw_currencies(session)
    saved = _saved(session, company)
    have = qbo_currencies(session, company)
    result = []
    for code in sorted(set(cw) | set(saved)):
        row = saved.get(code)
        effective = row.qbo_currency if row else (code if ISO_CODE.fullmatch(code) else None)
        result.append(CurrencyView(code, cw.get(code, ""), row.qbo_currency if row else None,
                                   effective, effective in have, code in cw))
    return result


def save(session: Session, company: Company, cw_code: str, qbo_currency: str) -> None:
    """Add or replace the row of one ConnectWise code (each appears once); audited.

    Refuses a ConnectWise code that is not cached (unless its row exists) and a QuickBooks
    code the company does not have. The caller commits.
    """
    cw_code = cw_code.strip()
    qbo_currency = qbo_currency.strip().upper()
    row = session.scalar(sa.select(CurrencyMapping).where(
        CurrencyMapping.company_id == company.id, CurrencyMapping.cw_currency == cw_code))
    if row is None and cw_code not in cw_currencies(session):
        raise CurrencyMappingError(f"ConnectWise has no currency '{cw_code[:20]}'; refresh "
                                   "the reference data.")
    if not qbo_currency:
        raise CurrencyMappingError("Choose a QuickBooks currency.")
    if qbo_currency not in qbo_currencies(session, company):
        raise CurrencyMappingError(
            f"QuickBooks company {company.qbo_name} has no currency '{qbo_currency[:20]}'. "
            "Add it in QuickBooks (Settings › Currencies) and refresh the reference data; "
            "portal never creates QuickBooks currencies.")
    mapping_rows.put(session, CurrencyMapping, company, "cw_currency", cw_code,
                     "qbo_currency", qbo_currency, action="mapping.currency.set", row=row)


def remove(session: Session, company: Company, cw_code: str) -> None:
    """Delete the row of one ConnectWise code (it maps to itself again); audited."""
    mapping_rows.drop(session, CurrencyMapping, company, "cw_currency", cw_code,
                      "qbo_currency", action="mapping.currency.remove")


__all__ = ["CurrencyMappingError", "CurrencyView", "cw_currencies", "qbo_code",
           "qbo_currencies", "remove", "rows", "save"]
