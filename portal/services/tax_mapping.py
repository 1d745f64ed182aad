"""Tax code mapping rows: many ConnectWise codes to one QuickBooks code, with the level check.

Each ConnectWise tax level is sent as the matching rate of the mapped QuickBooks code (SPEC
4.6), so for a non-US company the number of levels must equal the number of rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Company, CwRef, QboRef, TaxCodeMapping
from portal.services import mapping_rows

LEVELS = ("One", "Two", "Three", "Four", "Five", "Six")


class TaxMappingError(ValueError):
    """A mapping that cannot be saved; the message says why and how to fix it."""


@dataclass(frozen=True)
class TaxRow:
    cw_code: str
    description: str
    levels: int
    xrefs: tuple[str, ...]
    qbo_id: str | None
    qbo_name: str | None
    qbo_rates: int | None
    problem: str | None


def cw_levels(ref: CwRef) -> tuple[int, tuple[str, ...]]:
    """(levels with a rate or an Xref, their Xrefs) of a ConnectWise tax code."""
    extra = ref.extra or {}
    count, xrefs = 0, []
    for word in LEVELS:
        rate = extra.get(f"level{word}Rate")
        xref = extra.get(f"level{word}TaxCodeXref")
        if rate or xref:
            count += 1
            if xref:
                xrefs.append(str(xref))
    return count, tuple(xrefs)


def _qbo_codes(session: Session, company: Company) -> dict[str, QboRef]:
    return {r.qbo_id: r for r in session.scalars(sa.select(QboRef).where(
        QboRef.company_id == company.id, QboRef.entity == "TaxCode",
        QboRef.active.is_(True)))}


def _rates(qbo: QboRef) -> int:
    return int((qbo.extra or {}).get("sales_rates") or 0)


def mismatch(company: Company, cw_code: str, levels: int, qbo: QboRef) -> str | None:
    """The SPEC's level-mismatch message for non-US companies, or None. A code with no
    level (an exempt one) counts too: mapped to a code with rates, its sales would be
    taxed at rates ConnectWise never charged."""
    rates = _rates(qbo)
    if company.is_us or levels == rates:
        return None
    return (f"Tax mapping {cw_code} → {qbo.name}: ConnectWise code {cw_code} has {levels} "
            f"levels but QuickBooks code {qbo.name} has {rates} rates.")


def caution(company: Company, cw_code: str, levels: int, qbo: QboRef) -> str | None:
    """For a US company, where the level check does not apply (SPEC 4.6), a mapping whose
    counts differ is saved with a warning: a code that charges no tax mapped to a code
    with rates, or the other way round, is most likely a slip."""
    rates = _rates(qbo)
    if not company.is_us or levels == rates or (levels and rates):
        return None
    if not levels:
        return (f"ConnectWise code {cw_code} charges no tax (0 levels), but QuickBooks code "
                f"{qbo.name} has {rates} rate(s): QuickBooks may tax these sales. For "
                "tax-exempt sales choose a QuickBooks code without rates.")
    return (f"ConnectWise code {cw_code} has {levels} tax level(s), but QuickBooks code "
            f"{qbo.name} has no rate: these sales would carry no tax in QuickBooks.")


def rows(session: Session, company: Company) -> list[TaxRow]:
    codes = _qbo_codes(session, company)
    mapped = {m.cw_tax_code: m.qbo_tax_code_id for m in session.scalars(
        sa.select(TaxCodeMapping).where(TaxCodeMapping.company_id == company.id))}
    result = []
    for ref in session.scalars(sa.select(CwRef).where(CwRef.entity == "tax_code")
                               .order_by(CwRef.identifier)):
        code = ref.identifier or str(ref.cw_id)
        levels, xrefs = cw_levels(ref)
        qbo = codes.get(mapped.get(code, ""))
        problem = mismatch(company, code, levels, qbo) if qbo else None
        if code in mapped and qbo is None:
            problem = f"The mapped QuickBooks tax code of {code} is inactive or was deleted."
        result.append(TaxRow(code, ref.name or "", levels, xrefs,
                             qbo.qbo_id if qbo else None, qbo.name if qbo else None,
                             int((qbo.extra or {}).get("sales_rates") or 0) if qbo else None,
                             problem))
    return result


def choices(session: Session, company: Company) -> list[tuple[str, str]]:
    return [(r.qbo_id, f"{r.name} ({int((r.extra or {}).get('sales_rates') or 0)} rate(s))")
            for r in sorted(_qbo_codes(session, company).values(), key=lambda r: r.name)]


def save(session: Session, company: Company, cw_code: str, qbo_id: str) -> str | None:
    """Map one ConnectWise code (each appears once); refuses a level mismatch, and returns
    a warning for a US mapping that is saved but looks wrong (`caution`)."""
    ref = session.scalar(sa.select(CwRef).where(CwRef.entity == "tax_code",
                                                CwRef.identifier == cw_code))
    if ref is None:
        raise TaxMappingError(f"ConnectWise has no tax code '{cw_code}'; refresh the "
                              "reference data.")
    qbo = _qbo_codes(session, company).get(qbo_id)
    if qbo is None:
        raise TaxMappingError("Choose an active QuickBooks tax code from the list.")
    levels, _xrefs = cw_levels(ref)
    problem = mismatch(company, cw_code, levels, qbo)
    if problem:
        raise TaxMappingError(f"{problem} Make the level counts agree (edit the ConnectWise "
                              "tax code or choose another QuickBooks code).")
    mapping_rows.put(session, TaxCodeMapping, company, "cw_tax_code", cw_code,
                     "qbo_tax_code_id", qbo_id, action="mapping.tax_code.set",
                     qbo_tax_code=qbo.name)
    return caution(company, cw_code, levels, qbo)


def name_of(session: Session, company: Company, qbo_id: str) -> str:
    """The QuickBooks tax code's name (for the "saved" message)."""
    found = _qbo_codes(session, company).get(qbo_id)
    return found.name if found else qbo_id


def remove(session: Session, company: Company, cw_code: str) -> None:
    mapping_rows.drop(session, TaxCodeMapping, company, "cw_tax_code", cw_code,
                      "qbo_tax_code_id", action="mapping.tax_code.remove")
