"""The mapping scan: "what would fail if I batched now?" over the unposted backlog.

It reads ConnectWise (the unposted list and the GL export, 50 invoices per call), runs the
same validator the batch engine runs, and stores one row per distinct value and problem.
Nothing is written to either system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient
from portal.jobs.progress import DbProgress
from portal.models import Company
from portal.models.mapping import MappingScan, MappingValue
from portal.services import company_settings, doc_numbers, invoice_builder
from portal.services.cw_invoices import EXPORT_CHUNK, exported
from portal.services.mapping import (MappingSet, Resolution, _collect, expense_values,
                                    purchase_values, validate_invoice, values_of)

MAX_REFS = 25


@dataclass
class _Row:
    resolution: Resolution | None
    message: str | None
    hint: str | None
    records: list[str] = field(default_factory=list)
    create_fields: dict[str, Any] | None = None


def unposted_invoices(cw: ConnectWiseClient) -> list[dict[str, Any]]:
    return list(cw.iter_all("/finance/accounting/unpostedinvoices",
                            fields="id,billingLogId,invoiceNumber,locationId"))


def taken_doc_numbers(qbo: QuickBooksClient, numbers: list[str]) -> dict[str, str]:
    """DocNumber -> "Invoice 401" of the documents already using it."""
    return {doc: f"{entity} {qbo_id}" for doc, (entity, qbo_id, _day) in
            doc_numbers.taken(qbo.batch, numbers).items()}


def scan(session: Session, company: Company, cw: ConnectWiseClient, mapping: MappingSet,
         progress: DbProgress, run_id: int | None = None,
         qbo: QuickBooksClient | None = None) -> MappingScan:
    """Scan every unposted invoice and replace the company's previous scan (one commit)."""
    rows = unposted_invoices(cw)
    ids = [int(r["billingLogId"]) for r in rows if r.get("billingLogId")]
    numbers = {int(r["billingLogId"]): str(r.get("invoiceNumber")) for r in rows
               if r.get("billingLogId")}
    progress.start(len(ids), f"Checking {len(ids)} unposted invoices")
    settings = company_settings.get_settings(session, company)
    facts = invoice_builder.Facts.of(company)
    values: dict[tuple[str, str], _Row] = {}
    failing: set[str] = set()
    seen_ids: set[int] = set()
    for transaction in exported(cw, ids):
        record = f"invoice {transaction.get('documentNumber')}"
        seen_ids.add(int(transaction.get("id") or 0))
        for resolution in values_of(transaction, mapping):
            row = values.setdefault((resolution.kind, resolution.cw_value),
                                    _Row(resolution, resolution.message, resolution.hint))
            if record not in row.records:
                row.records.append(record)
        source = invoice_builder.Source(transaction, None)
        for need in invoice_builder.needs(source, settings, facts, mapping):
            # what a batch would create: service items and categories get rows too, and
            # every row keeps the fields a create from the editor needs (accounts, type)
            row = values.setdefault((need.kind, need.name), _Row(
                mapping.resolve(need.kind, need.name, creatable=True), None, None))
            row.create_fields = row.create_fields or dict(need.fields)
            if record not in row.records:
                row.records.append(record)
        problems = validate_invoice(transaction, mapping, company)
        for problem in problems:
            failing.add(record)
            if problem.kind is None:
                row = values.setdefault(("record", problem.message),
                                        _Row(None, problem.message, problem.hint))
                row.records.append(record)
        if not problems:
            refused = invoice_builder.check(source, settings, facts, mapping,
                                            summary_level=settings.invoice_export_detail)
            if refused is not None:  # tax mapping, lines, totals: one row per distinct cause
                failing.add(record)
                message = refused.message.replace(
                    f" on invoice {transaction.get('documentNumber')}", "")
                row = values.setdefault(("record", message), _Row(None, message, refused.hint))
                row.records.append(record)
        progress.advance()
    if qbo is not None:
        prefix = mapping.prefs.doc_number_prefix
        wanted = {f"{prefix}{numbers[i]}": numbers[i] for i in seen_ids if i in numbers}
        for doc_number, used_by in taken_doc_numbers(qbo, sorted(wanted)).items():
            record = f"invoice {wanted[doc_number]}"
            message = (f"DocNumber {doc_number} is already used by QuickBooks {used_by}.")
            values[("record", message)] = _Row(
                None, message, "If it is this invoice, it was posted before: clear it instead "
                               "of posting it again; otherwise set a DocNumber prefix on the "
                               "Company tab.", [record])
            failing.add(record)
    records = len(ids) + _scan_expenses(cw, mapping, values, failing) + \
        _scan_procurement(cw, mapping, values, failing)
    for invoice_id in sorted(set(ids) - seen_ids):  # not exportable: no GL entries
        record = f"invoice {numbers[invoice_id]}"
        message = (f"Invoice {numbers[invoice_id]} has no GL entries in ConnectWise; re-open "
                   "and re-close it.")
        values[("record", message)] = _Row(None, message, "Re-close the invoice in "
                                                          "ConnectWise.", [record])
        failing.add(record)
        progress.advance()
    return _store(session, company, values, records, len(failing), run_id)


def _add(values: dict[tuple[str, str], _Row], failing: set[str], record: str,
         resolutions: list[Resolution]) -> None:
    for resolution in resolutions:
        row = values.setdefault((resolution.kind, resolution.cw_value),
                                _Row(resolution, resolution.message, resolution.hint))
        if record not in row.records:
            row.records.append(record)
    if _collect(record, resolutions):
        failing.add(record)


def _scan_expenses(cw: ConnectWiseClient, mapping: MappingSet,
                   values: dict[tuple[str, str], _Row], failing: set[str]) -> int:
    """Unposted expenses (personal ones are skipped by default): accounts, member vendors."""
    rows = [r for r in cw.iter_all("/finance/accounting/unpostedexpenses",
                                   fields="id,classification")
            if r.get("classification") != "Personal"]
    kinds = {int(r["id"]): r.get("classification") for r in rows}
    ids = sorted(kinds)
    for start in range(0, len(ids), EXPORT_CHUNK):
        chunk = ids[start:start + EXPORT_CHUNK]
        body = cw.request("POST", "/finance/accounting/export", json={
            "batchIdentifier": "portal-preflight", "exportExpensesFlag": True,
            "includedExpenseIds": chunk}).json()
        for expense, row_id in zip(body.get("expenses") or [], chunk):
            reimbursable = kinds.get(row_id) == "Reimbursable"
            member = (expense.get("member") or {}).get("name", "")
            _add(values, failing, f"expense {expense.get('id')} ({member})",
                 expense_values(expense, mapping, reimbursable))
    return len(ids)


def _scan_procurement(cw: ConnectWiseClient, mapping: MappingSet,
                      values: dict[tuple[str, str], _Row], failing: set[str]) -> int:
    """Unposted PO receipts: vendors, AP accounts, items."""
    ids = [str(r["unpostedProductId"]) for r in cw.iter_all(
        "/finance/accounting/unpostedprocurement", fields="id,unpostedProductId,procurementType")
        if r.get("unpostedProductId")]
    for start in range(0, len(ids), EXPORT_CHUNK):
        body = cw.request("POST", "/finance/accounting/export", json={
            "batchIdentifier": "portal-preflight", "exportProductsFlag": True,
            "includedProductIds": ids[start:start + EXPORT_CHUNK]}).json()
        for purchase in body.get("purchaseTransactions") or []:
            record = f"receipt {purchase.get('documentNumber')} " \
                     f"{purchase.get('packingSlip') or ''}".strip()
            _add(values, failing, record, purchase_values(purchase, mapping))
    return len(ids)


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


def counts(session: Session, scan_row: MappingScan, kind: str | None = None) -> dict[str, int]:
    """Rows per status (for the editor's header), optionally for one entity."""
    query = sa.select(MappingValue.status, sa.func.count()).where(
        MappingValue.scan_id == scan_row.id)
    if kind:
        query = query.where(MappingValue.kind == kind)
    return dict(session.execute(query.group_by(MappingValue.status)).all())


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
