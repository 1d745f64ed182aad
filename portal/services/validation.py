"""The validation view (SPEC 13.3): does QuickBooks still hold what portal posted from
ConnectWise, and does ConnectWise still hold the accounting batch?

A validation is a background run (read-only: it takes no company lock) over the posted
records of one batch, or of one record type and date range. It re-reads every document
with `/batch` queries (`Id IN (…)`, 30 queries per request), compares it with the record
as it was built from ConnectWise (the stored payload and amounts), looks the ConnectWise
accounting batches up by identifier, and stores the rows and a summary per type and
currency (the checklist's step 11), exportable as CSV.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer

from portal import clients
from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient, cond
from portal.integrations.quickbooks import escape
from portal.models import (
    Batch,
    BatchItem,
    BatchType,
    Company,
    ItemState,
    JobRun,
    RunKind,
    RunStatus,
    User,
    ValidationReport,
)
from portal.models.types import utcnow
from portal.services import runs
from portal.services.batching.preflight import run_queries
from portal.services.runs import RunProgress

log = logging.getLogger(__name__)
POSTED = (ItemState.POSTED, ItemState.MARKED, ItemState.DONE)
IDS_PER_QUERY = 100
PARTY_REFS = ("CustomerRef", "VendorRef", "EntityRef")
FIELDS = ("party", "doc_number", "date", "lines", "subtotal", "tax", "total", "currency",
          "class_or_location")
LABELS = {"party": "Customer or vendor", "doc_number": "DocNumber", "date": "TxnDate",
          "lines": "Line count", "subtotal": "Subtotal", "tax": "Tax", "total": "Total",
          "currency": "Currency", "class_or_location": "Class or location"}


class Refused(Exception):
    pass


def start(session: Session, company: Company, *, user: User | None, batch: Batch | None = None,
          record_type: str | None = None, date_from: date | None = None,
          date_to: date | None = None) -> ValidationReport:
    """A queued validation and its run (no company lock: it writes nothing outside)."""
    if batch is None and record_type not in {t.value for t in BatchType}:
        raise Refused("Choose a record type to validate.")
    run = runs.start(session, RunKind.VALIDATION, user=user, company_id=None)
    report = ValidationReport(company_id=company.id, run_id=run.id,
                              batch_id=batch.id if batch else None,
                              record_type=batch.type.value if batch else record_type,
                              date_from=date_from, date_to=date_to, status="queued",
                              created_by=user.email if user else "system", summary=[], rows=[])
    session.add(report)
    session.flush()
    return report


def _items(session: Session, report: ValidationReport) -> list[BatchItem]:
    query = sa.select(BatchItem).options(defer(BatchItem.payload, raiseload=False)).where(
        BatchItem.state.in_(POSTED), BatchItem.qbo_id.is_not(None))
    if report.batch_id:
        query = query.where(BatchItem.batch_id == report.batch_id)
    else:
        query = query.join(Batch).where(Batch.company_id == report.company_id,
                                        Batch.type == report.record_type)
        if report.date_from:
            query = query.where(BatchItem.record_date >= report.date_from)
        if report.date_to:
            query = query.where(BatchItem.record_date <= report.date_to)
    return list(session.scalars(query.order_by(BatchItem.record_date, BatchItem.id)))


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else 0)).quantize(Decimal("0.01"))


def _ref(obj: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = (obj.get(key) or {}).get("value")
        if value not in (None, ""):
            return str(value)
    return ""


def _lines(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in obj.get("Line") or []
            if line.get("DetailType") not in ("SubTotalLineDetail", None)]


def _class_or_location(obj: dict[str, Any]) -> str:
    department = _ref(obj, "DepartmentRef")
    classes = sorted({_ref(line.get(line.get("DetailType") or "") or {}, "ClassRef")
                      for line in _lines(obj)} - {""})
    header = _ref(obj, "ClassRef")
    return " / ".join(v for v in (department, header, ",".join(classes)) if v)


def compare(item: BatchItem, doc: dict[str, Any] | None, home: str) -> dict[str, Any]:
    """One row: each field's ConnectWise and QuickBooks values, and the flags."""
    payload = item.payload or {}
    cw_total = abs(item.cw_amount or Decimal(0))
    row: dict[str, Any] = {"item_id": item.id, "batch_id": item.batch_id,
                           "record": item.cw_number, "party": item.party or "",
                           "entity": item.qbo_entity, "qbo_id": item.qbo_id,
                           "currency": item.currency or home, "cw_total": f"{cw_total:.2f}",
                           "qbo_total": None, "fields": [], "flags": []}
    if doc is None:
        row["flags"].append("deleted in QuickBooks")
        row["status"] = "mismatch"
        return row
    row["qbo_total"] = f"{_money(doc.get('TotalAmt')):.2f}"
    cw_lines = _lines(payload)
    values = {
        "party": (_ref(payload, *PARTY_REFS), _ref(doc, *PARTY_REFS)),
        "doc_number": (item.qbo_doc_number or "", str(doc.get("DocNumber") or "")),
        "date": (item.record_date.isoformat() if item.record_date else "",
                 str(doc.get("TxnDate") or "")),
        "lines": (str(len(cw_lines)), str(len(_lines(doc)))),
        "subtotal": (f"{sum((_money(ln.get('Amount')) for ln in cw_lines), Decimal(0)):.2f}",
                     f"{sum((_money(ln.get('Amount')) for ln in _lines(doc)), Decimal(0)):.2f}"),
        "tax": (f"{abs(item.cw_tax or Decimal(0)):.2f}",
                f"{_money((doc.get('TxnTaxDetail') or {}).get('TotalTax')):.2f}"),
        "total": (f"{cw_total:.2f}", row["qbo_total"]),
        "currency": (item.currency or home, _ref(doc, "CurrencyRef") or home),
        "class_or_location": (_class_or_location(payload), _class_or_location(doc)),
    }
    if not payload:  # adopted or marked without a payload: what the item recorded
        for name in ("party", "lines", "subtotal", "class_or_location"):
            values.pop(name)
    for name, (cw, qbo) in values.items():
        row["fields"].append({"name": LABELS[name], "cw": cw, "qbo": qbo, "match": cw == qbo})
    if "voided" in str(doc.get("PrivateNote") or "").lower() and _money(doc.get("TotalAmt")) == 0:
        row["flags"].append("voided in QuickBooks")
    if item.qbo_sync_token is not None and str(doc.get("SyncToken")) != item.qbo_sync_token:
        row["flags"].append(f"changed in QuickBooks since posting (SyncToken "
                            f"{item.qbo_sync_token} → {doc.get('SyncToken')})")
    mismatch = any(not f["match"] for f in row["fields"]) or any(
        f.startswith(("voided", "deleted")) for f in row["flags"])
    row["status"] = "mismatch" if mismatch else "match"
    return row


def _documents(qbo: Any, items: list[BatchItem], sleep: Any) -> dict[tuple[str, str], dict]:
    """Every document of `items`, by (entity, Id), in /batch queries."""
    by_entity: dict[str, list[str]] = {}
    for item in items:
        by_entity.setdefault(item.qbo_entity or "", []).append(str(item.qbo_id))
    plans = []
    for entity, ids in by_entity.items():
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start:start + IDS_PER_QUERY]
            plans.append((entity, f"SELECT * FROM {entity} WHERE Id IN "
                                  f"({', '.join(escape(i) for i in chunk)}) MAXRESULTS 1000"))
    answers = run_queries(lambda ops: qbo.batch(ops), [q for _e, q in plans], sleep=sleep)
    found = {}
    for (entity, _query), answer in zip(plans, answers):
        if answer is None:
            raise errors.Transient("QuickBooks did not answer the validation queries.")
        for doc in answer.get(entity) or []:
            found[(entity, str(doc.get("Id")))] = doc
    return found


def _cw_batches(cw: ConnectWiseClient, identifiers: list[str]) -> set[str]:
    """The identifiers ConnectWise still holds an accounting batch for."""
    held: set[str] = set()
    for start in range(0, len(identifiers), 50):
        chunk = identifiers[start:start + 50]
        for row in cw.iter_all("/finance/accounting/batches",
                               conditions=cond("batchIdentifier", "in", chunk)):
            held.add(str(row.get("batchIdentifier")))
    return held


def validation_run(session: Session, run: JobRun, progress: RunProgress,
                   cw: ConnectWiseClient) -> tuple[RunStatus, str]:
    import time

    report = session.scalar(sa.select(ValidationReport).where(ValidationReport.run_id == run.id))
    if report is None:
        return RunStatus.FAILED, "The validation of this run no longer exists."
    company = session.get(Company, report.company_id)
    report.status = "running"
    session.commit()
    items = _items(session, report)
    progress.start(len(items), f"Validating {len(items)} document(s)", phase="validating")
    qbo = clients.quickbooks(session, company)
    home = company.home_currency or "USD"
    rows: list[dict[str, Any]] = []
    for start in range(0, len(items), 300):
        window = items[start:start + 300]
        session.commit()  # nothing held open across the calls
        docs = _documents(qbo, window, time.sleep)
        held = _cw_batches(cw, [i.cw_batch_identifier for i in window if i.cw_batch_identifier])
        for item in window:
            row = compare(item, docs.get((item.qbo_entity or "", str(item.qbo_id))), home)
            row["cw_batch"] = item.cw_batch_identifier
            if item.state is not ItemState.POSTED and item.cw_batch_identifier not in held:
                row["flags"].append(f"ConnectWise batch {item.cw_batch_identifier} no longer "
                                    "exists")
                row["status"] = "mismatch"
            rows.append(row)
        progress.advance(len(window))
    report.rows = rows
    report.summary = summarise(rows, report.record_type or "")
    report.checked = len(rows)
    report.mismatched = sum(r["status"] == "mismatch" for r in rows)
    report.status = "done"
    report.finished_at = utcnow()
    report.message = f"{report.checked} checked, {report.mismatched} mismatched"
    session.commit()
    return RunStatus.SUCCEEDED, report.message


def summarise(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Totals per type and currency: ConnectWise, QuickBooks, difference."""
    sums: dict[tuple[str, str], list[Decimal]] = {}
    for row in rows:
        key = (row.get("entity") or kind, row["currency"])
        cw, qbo = sums.setdefault(key, [Decimal(0), Decimal(0)])
        sums[key] = [cw + Decimal(row["cw_total"]), qbo + Decimal(row["qbo_total"] or 0)]
    return [{"type": k, "currency": c, "cw_total": f"{cw:.2f}", "qbo_total": f"{qbo:.2f}",
             "difference": f"{qbo - cw:.2f}"} for (k, c), (cw, qbo) in sorted(sums.items())]


def csv_rows(report: ValidationReport) -> Iterator[list[Any]]:
    yield ["record", "type", "QuickBooks id", "status", "field", "ConnectWise", "QuickBooks",
           "flags"]
    for row in report.rows or []:
        flags = "; ".join(row.get("flags") or [])
        wrong = [f for f in row.get("fields") or [] if not f["match"]]
        if not wrong:
            yield [row["record"], row.get("entity"), row.get("qbo_id"), row["status"], "", "",
                   "", flags]
        for f in wrong:
            yield [row["record"], row.get("entity"), row.get("qbo_id"), row["status"],
                   f["name"], f["cw"], f["qbo"], flags]


def latest(session: Session, batch_id: int) -> ValidationReport | None:
    return session.scalar(sa.select(ValidationReport).where(
        ValidationReport.batch_id == batch_id).order_by(ValidationReport.id.desc()).limit(1))


def checklist_columns() -> list[Any]:
    """What step 11 reads, as columns the dashboard's one statement selects."""
    newest = sa.select(ValidationReport.id).where(ValidationReport.status == "done") \
        .order_by(ValidationReport.id.desc()).limit(1)
    return [newest.scalar_subquery().label("validation_id"),
            newest.with_only_columns(ValidationReport.checked).scalar_subquery()
            .label("validation_checked"),
            newest.with_only_columns(ValidationReport.mismatched).scalar_subquery()
            .label("validation_mismatched")]


def checklist_state(row: Any) -> tuple[str, str]:
    """Step 11: done once a validation was stored; a warning while it found mismatches."""
    if row.validation_id is None:
        return "todo", "Validate a batch against QuickBooks from its page."
    if row.validation_mismatched:
        return "warning", (f"The latest validation found {row.validation_mismatched} "
                           "mismatch(es).")
    return "done", (f"The latest validation checked {row.validation_checked} document(s): "
                    "all match.")
