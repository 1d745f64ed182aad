"""The mapping scan: "what would fail if I batched now?" over the unposted backlog.

It reads ConnectWise (the unposted list and the GL export, 50 records per call), runs the
batch engine's own pre-flight over each record type, and stores one row per distinct value and
problem. Nothing is written to either system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient
from portal.models import BatchType, Company
from portal.models.mapping import MappingScan, MappingValue
from portal.services import company_settings, qbo_setup
from portal.services.batching import preflight
from portal.services.batching.engine import prefs_of
from portal.services.batching.types import record_type
from portal.services.batching.types.base import CompanyFacts, Context, Filters, Record
from portal.services.mapping import (
    BLOCKING,
    MappingSet,
    Resolution,
)
from portal.services.runs import RunProgress
from portal.services.sorting import Sort

MAX_REFS = 25
SCANNED = (BatchType.INVOICE, BatchType.EXPENSE, BatchType.INVENTORY)  # by their own pre-flight


@dataclass
class _Row:
    resolution: Resolution | None
    message: str | None
    hint: str | None
    records: list[str] = field(default_factory=list)
    create_fields: dict[str, Any] | None = None

    def add(self, record: str) -> None:
        if record not in self.records:
            self.records.append(record)


@dataclass
class BacklogCheck:
    """The stored scan and the pre-flight reports it came from, by record type."""

    scan: MappingScan
    reports: dict[BatchType, preflight.Report]


def scan(session: Session, company: Company, cw: ConnectWiseClient,
         mapping: MappingSet | None, progress: RunProgress, run_id: int | None = None,
         qbo: QuickBooksClient | None = None) -> BacklogCheck:
    """Check every unposted record against the mappings and replace the company's previous
    scan (one commit at the end).

    Invoices, expense groups and procurement go through the batch engine's own pre-flight
    (`batching.preflight`), so the backlog check and a batch of the same records find the
    same problems. The reference
    cache is refreshed first when it was never loaded or is older than the company's limit:
    a check against an empty cache would call every account missing.
    """
    settings = company_settings.get_settings(session, company)
    if qbo is not None:
        preflight.refresh_stale(session, company, qbo, cw,
                                settings.reference_cache_max_age_minutes, progress)
    mapping = MappingSet.load(session, company, prefs_of(settings))
    ctx = Context(CompanyFacts.of(company), settings, mapping, {})
    values: dict[tuple[str, str], _Row] = {}
    send = (lambda ops: qbo.batch(ops)) if qbo is not None else None
    reports: dict[BatchType, preflight.Report] = {}
    failing: set[str] = set()
    total = 0
    for kind in SCANNED:  # through each type's own pre-flight, as a batch would check them
        rtype = record_type(kind)
        records = [r for r in rtype.list_unposted(cw, Filters(settings=settings))
                   if not r.held]  # held back (unapproved, personal, Skip): never posted
        progress.start(len(records), f"Checking {len(records)} unposted "
                                     f"{kind.label.lower()} records")
        check = preflight.Preflight(rtype, ctx)
        found = preflight.evaluate(check, cw, records, send, progress=progress,
                                   on_window=_editor_rows(rtype, ctx, mapping, values))
        if check.company_answers is not None:
            qbo_setup.apply_settings(company, *check.company_answers)
        _problem_rows(rtype, records, found, values)
        failing |= {found.labels[k] for k in found.failing()}
        reports[kind] = found
        total += len(records)
    return BacklogCheck(_store(session, company, values, total, len(failing), run_id),
                        reports)


def _editor_rows(rtype: Any, ctx: Context, mapping: MappingSet,
                 values: dict[tuple[str, str], _Row]) -> Any:
    """Each checked record's resolutions and what a batch would create, as editor rows."""
    def add(window: Any, checked: list[preflight.Checked]) -> None:
        for done in checked:
            record = done.record
            label = rtype.label(record)
            for resolution in rtype.values(window, record, ctx):
                values.setdefault((resolution.kind, resolution.cw_value),
                                  _Row(resolution, resolution.message, resolution.hint)
                                  ).add(label)
            for need in done.needs:
                # what a batch would create: service items and categories get rows too,
                # and each keeps the fields a create from the editor needs
                row = values.setdefault((need.kind, need.name), _Row(
                    mapping.resolve(need.kind, need.name, creatable=True), None, None))
                row.create_fields = row.create_fields or dict(need.fields)
                row.add(label)

    return add


def _problem_rows(rtype: Any, records: list[Record], report: preflight.Report,
                  values: dict[tuple[str, str], _Row]) -> None:
    """Problems no mapping fixes get a row each ("record"), the records it affects listed
    once; a message naming its own record is stated without it, so records group."""
    for record in records:
        label = rtype.label(record)
        for problem in report.problems.get(record.key, []):
            if problem.kind:
                continue  # the resolution's own row carries it
            message = problem.message.replace(f" on {label}", "")
            values.setdefault(("record", message), _Row(None, message, problem.hint)
                              ).add(label)


def _store(session: Session, company: Company, values: dict[tuple[str, str], _Row],
           records: int, failing: int, run_id: int | None) -> MappingScan:
    session.execute(sa.delete(MappingScan).where(MappingScan.company_id == company.id))
    result = MappingScan(company_id=company.id, run_id=run_id, records=records,
                         records_with_errors=failing)
    session.add(result)
    session.flush()
    session.execute(sa.insert(MappingValue), [_value_row(result.id, kind, value, row)
                                              for (kind, value), row in values.items()])
    return result


def _value_row(scan_id: int, kind: str, value: str, row: _Row) -> dict[str, Any]:
    resolution = row.resolution
    candidates = [{"qbo_id": c.qbo_id, "name": c.name,
                   "diffs": [d.describe() for d in c.diffs]}
                  for c in (resolution.candidates if resolution else ())]
    return {"scan_id": scan_id, "kind": kind, "cw_value": value[:500],
            "status": resolution.status if resolution else "error",
            "qbo_id": resolution.qbo_id if resolution else None,
            "qbo_name": resolution.qbo_name if resolution else None,
            "records": len(row.records), "record_refs": row.records[:MAX_REFS],
            "message": row.message, "hint": row.hint, "candidates": candidates,
            "create_fields": row.create_fields}


def latest(session: Session, company: Company) -> MappingScan | None:
    return session.scalar(sa.select(MappingScan).where(MappingScan.company_id == company.id)
                          .order_by(MappingScan.id.desc()).limit(1))


# The mapping editor's sortable columns (server-side, so paging follows the order).
EDITOR_SORTS = {"cw_value": MappingValue.cw_value, "records": MappingValue.records,
                "status": MappingValue.status, "qbo_name": MappingValue.qbo_name}


def editor_order(query: sa.Select[Any], sort: Sort) -> sa.Select[Any]:
    """The editor's rows in the asked order; by default blocking values first, the most
    used first. Ties fall back to the ConnectWise value, then the id, so pages are stable."""
    if not sort.key:
        return query.order_by(sa.case((MappingValue.status.in_(BLOCKING), 0), else_=1),
                              MappingValue.records.desc(), MappingValue.cw_value,
                              MappingValue.id)
    column = EDITOR_SORTS[sort.key]
    return query.order_by(column.desc() if sort.descending else column.asc(),
                          MappingValue.cw_value, MappingValue.id)


def counts(session: Session, scan_row: MappingScan, kind: str | None = None) -> dict[str, int]:
    """Rows per status (for the editor's header), optionally for one entity."""
    query = sa.select(MappingValue.status, sa.func.count()).where(
        MappingValue.scan_id == scan_row.id)
    if kind:
        query = query.where(MappingValue.kind == kind)
    return dict(session.execute(query.group_by(MappingValue.status)).all())


def acceptable(session: Session, scan_row: MappingScan, kind: str) -> int:
    """Near-misses of one entity that "Accept all near-misses" would accept: those with
    exactly one QuickBooks candidate (the confirmation names this number)."""
    rows = session.scalars(sa.select(MappingValue.candidates).where(
        MappingValue.scan_id == scan_row.id, MappingValue.kind == kind,
        MappingValue.status == "near_miss"))
    return sum(1 for candidates in rows if len(candidates or []) == 1)


def blocking(session: Session, scan_row: MappingScan) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(MappingValue).where(
        MappingValue.scan_id == scan_row.id, MappingValue.status.in_(
            ["near_miss", "missing", "conflict", "inactive", "error"]))) or 0


def recheck(session: Session, company: Company, kind: str, cw_value: str,
            mapping: MappingSet) -> MappingValue | None:
    """Resolve one value again (after an override changed) and update its scan row."""
    scan_row = latest(session, company)
    if scan_row is None:
        return None
    value = session.scalar(sa.select(MappingValue).where(
        MappingValue.scan_id == scan_row.id, MappingValue.kind == kind,
        MappingValue.cw_value == cw_value))
    if value is None:
        return None
    creatable = {"customer": mapping.prefs.create_customers, "item": mapping.prefs.create_items,
                 "term": True, "class": mapping.prefs.create_classes,
                 "location": mapping.prefs.create_locations}.get(kind, False)
    by_number = kind == "account" and mapping.prefs.gl_account_match == "Number"
    resolution = mapping.resolve(kind, cw_value, creatable=creatable, by_number=by_number)
    fresh = _value_row(scan_row.id, kind, cw_value, _Row(resolution, resolution.message,
                                                          resolution.hint))
    for name in ("status", "qbo_id", "qbo_name", "message", "hint", "candidates"):
        setattr(value, name, fresh[name])
    return value
