"""Batches as people see them: submit a selection, retry, cancel, list and summarise.

The engine (`batch_engine`) does the work inside the job; this module holds what routes
need, so routes stay thin and every rule (one live item per record, one run per company)
is enforced in one place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (Batch, BatchItem, BatchItemEvent, BatchStatus, BatchType, Company,
                           ItemState, JobRun, RunKind, User)
from portal.models.batch import CLOSED_STATES
from portal.models.types import utcnow
from portal.services import audit, runs
from portal.services.cw_invoices import Unposted

SUMMARY_LEVELS = ("Default", "Condensed", "Detailed")
TRIGGERS = {"user": "Started by a person", "retry": "Retry", "autosync": "AutoSync",
            "webhook": "Webhook"}
QBO_UI = {"production": "https://app.qbo.intuit.com",
          "sandbox": "https://app.sandbox.qbo.intuit.com"}
CW_INVOICE_LINK = "{site}/{codebase}ConnectWise.aspx?routeTo=InvoiceFV&recid={id}"
PAGE = 50


class BatchRefused(Exception):
    """The batch cannot start; the message says why (and `holder` names a busy batch)."""

    def __init__(self, message: str, holder: Batch | None = None,
                 run: JobRun | None = None) -> None:
        super().__init__(message)
        self.holder = holder
        self.run = run


def live_items(session: Session, keys: Iterable[str]) -> dict[str, BatchItem]:
    """Record key -> the live item holding it (a record is live in at most one batch)."""
    keys = list(keys)
    if not keys:
        return {}
    found: dict[str, BatchItem] = {}
    for start in range(0, len(keys), 500):
        for item in session.scalars(sa.select(BatchItem).where(
                BatchItem.record_key.in_(keys[start:start + 500]),
                BatchItem.state.not_in(list(CLOSED_STATES)))):
            found[item.record_key] = item
    return found


def live_label(item: BatchItem) -> str:
    """The selection grid's flag for a record held by a batch (SPEC 6.1)."""
    if item.state is ItemState.POSTED:
        return f"posted, not marked (batch #{item.batch_id})"
    if item.state is ItemState.UNCERTAIN:
        return f"uncertain in batch #{item.batch_id}"
    return f"in batch #{item.batch_id}"


def near_miss_records(session: Session, company: Company | None) -> set[str]:
    """Invoice numbers the last backlog check found with a near-miss (a warning flag)."""
    from portal.models import MappingScan, MappingValue

    if company is None:
        return set()
    rows = session.scalars(sa.select(MappingValue.record_refs).join(MappingScan).where(
        MappingScan.company_id == company.id, MappingValue.status == "near_miss"))
    return {ref.split(" ", 1)[1] for refs in rows for ref in refs or []
            if ref.startswith("invoice ")}


def _busy(session: Session, company: Company, active: JobRun | None) -> BatchRefused:
    holder = session.scalar(sa.select(Batch).where(Batch.run_id == active.id)) if active \
        else None
    if holder is not None:
        who = holder.started_by.email if holder.started_by else holder.trigger
        started = (holder.started_at or holder.created_at).strftime("%Y-%m-%d %H:%M UTC")
        return BatchRefused(f"{company.qbo_name} is busy with batch #{holder.id} "
                            f"({holder.type.value}, started by {who} at {started}).",
                            holder=holder)
    label = active.kind.label if active else "another run"
    run = f"run #{active.id}" if active else "a run"
    return BatchRefused(f"{company.qbo_name} is busy with {label} ({run}).", run=active)


def submit(session: Session, company: Company, records: list[Unposted], *, user: User | None,
           options: dict[str, Any], trigger: str | None = None,
           batch_type: BatchType = BatchType.INVOICE) -> Batch:
    """Create the batch, its run (the company lock) and one `selected` item per record.

    The caller commits and then enqueues. Records live in another batch are refused by
    the partial unique index, named in the message.
    """
    if not records:
        raise BatchRefused("Select at least one record.")
    taken = live_items(session, [r.record_key for r in records])
    if taken:
        numbers = ", ".join(sorted(f"{r.number} (batch #{taken[r.record_key].batch_id})"
                                   for r in records if r.record_key in taken)[:10])
        raise BatchRefused(f"Already in another batch: {numbers}. Deselect them, or open "
                           "that batch.")
    try:
        run = runs.start(session, RunKind.BATCH, user=user, company_id=company.id,
                         total=len(records))
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    batch = Batch(type=batch_type, company_id=company.id, run_id=run.id,
                  status=BatchStatus.QUEUED, colour="grey",
                  trigger=trigger or (f"user:{user.id}" if user else "system"),
                  started_by_id=user.id if user else None, options=options, counts={},
                  totals=_totals((r.currency or company.home_currency or "USD", r.total)
                                 for r in records), preflight=[])
    session.add(batch)
    session.flush()
    for position, record in enumerate(records):
        session.add(BatchItem(
            batch_id=batch.id, record_key=record.record_key, position=position,
            cw_unposted_id=record.unposted_id, cw_id=record.invoice_id, cw_number=record.number,
            cw_kind=record.kind, party=record.company, record_date=record.day,
            cw_amount=Decimal(record.total), currency=record.currency or None,
            state=ItemState.SELECTED, warnings=[]))
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise BatchRefused("Some of these records were just put in another batch; refresh "
                           "the list and submit again.") from None
    batch.counts = {ItemState.SELECTED.value: len(records)}
    audit.record(session, "batch.submit", target_type="batch", target_id=batch.id,
                 company_id=company.id, after={"type": batch_type.value,
                                               "records": len(records), **options})
    return batch


def _totals(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    totals: dict[str, Decimal] = {}
    for currency, amount in pairs:
        totals[currency] = totals.get(currency, Decimal("0")) + Decimal(str(amount or 0))
    return {k: f"{v:.2f}" for k, v in sorted(totals.items())}


def totals_of(records: Iterable[Unposted], home: str) -> dict[str, str]:
    return _totals((r.currency or home, r.total) for r in records)


RETRYABLE = (ItemState.FAILED, ItemState.UNCERTAIN, ItemState.POSTED)


def retryable(session: Session, batch: Batch) -> list[BatchItem]:
    """Items a retry would carry: failed, uncertain, or posted but not marked."""
    return list(session.scalars(sa.select(BatchItem).where(
        BatchItem.batch_id == batch.id, BatchItem.state.in_(list(RETRYABLE)))
        .order_by(BatchItem.position)))


def retry(session: Session, batch: Batch, user: User | None) -> Batch:
    """A new batch `retry-of:<id>` holding copies of the retryable items (SPEC 6.9).

    The old rows become `retried` and the copies keep generation, request token and QuickBooks
    id, in one transaction; a failed copy gets a fresh token when it is validated again.
    """
    if batch.active:
        raise BatchRefused(f"Batch #{batch.id} is still running; retry it when it has ended.")
    items = retryable(session, batch)
    if not items:
        raise BatchRefused(f"Batch #{batch.id} has nothing to retry.")
    company = session.get(Company, batch.company_id)
    try:
        run = runs.start(session, RunKind.BATCH, user=user, company_id=company.id,
                         total=len(items))
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    new = Batch(type=batch.type, company_id=company.id, run_id=run.id, colour="grey",
                status=BatchStatus.QUEUED, trigger=f"retry-of:{batch.id}",
                started_by_id=user.id if user else None, options=dict(batch.options or {}),
                counts={}, totals={}, preflight=[])
    session.add(new)
    session.flush()
    copies = []
    for position, item in enumerate(items):
        previous = item.state
        item.state = ItemState.RETRIED
        copies.append(BatchItem(
            batch_id=new.id, record_key=item.record_key, generation=item.generation,
            position=position, cw_unposted_id=item.cw_unposted_id, cw_id=item.cw_id,
            cw_number=item.cw_number, cw_kind=item.cw_kind, party=item.party,
            record_date=item.record_date, gl_entry_ids=list(item.gl_entry_ids or []),
            state=ItemState.SELECTED if previous is ItemState.FAILED else previous,
            qbo_entity=item.qbo_entity, qbo_id=item.qbo_id, qbo_doc_number=item.qbo_doc_number,
            qbo_sync_token=item.qbo_sync_token,
            request_token=None if previous is ItemState.FAILED else item.request_token,
            payload_hash=None if previous is ItemState.FAILED else item.payload_hash,
            payload=None if previous is ItemState.FAILED else item.payload,
            cw_batch_identifier=item.cw_batch_identifier, cw_amount=item.cw_amount,
            cw_tax=item.cw_tax, qbo_amount=item.qbo_amount, qbo_tax=item.qbo_tax,
            currency=item.currency, warnings=[]))  # an uncertain copy starts with a lookup
    session.flush()  # the retried rows leave the live index before the copies join it
    session.add_all(copies)
    session.flush()
    new.totals = _totals((c.currency or company.home_currency or "USD", c.cw_amount)
                         for c in copies)
    new.counts = count_states(session, new)
    recount(session, batch)
    audit.record(session, "batch.retry", target_type="batch", target_id=new.id,
                 company_id=company.id, after={"retry_of": batch.id, "records": len(copies)})
    return new


def adopt(session: Session, batch: Batch, item: BatchItem, user: User) -> Batch:
    """Link a record to the QuickBooks document that already holds its DocNumber, and mark
    it in ConnectWise without posting (SPEC 6.5 Adopt): a new batch `adopt-of:<id>` carries
    it as `posted`. The caller commits and enqueues; audited."""
    if batch.active:
        raise BatchRefused(f"Batch #{batch.id} is still running; adopt when it has ended.")
    if item.state is not ItemState.FAILED or not item.conflict_qbo_id:
        raise BatchRefused(f"Record {item.cw_number} has no QuickBooks document to adopt.")
    company = session.get(Company, batch.company_id)
    try:
        run = runs.start(session, RunKind.BATCH, user=user, company_id=company.id, total=1)
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    new = Batch(type=batch.type, company_id=company.id, run_id=run.id, colour="grey",
                status=BatchStatus.QUEUED, trigger=f"adopt-of:{batch.id}",
                started_by_id=user.id, options=dict(batch.options or {}), counts={},
                totals=_totals([(item.currency or company.home_currency or "USD",
                                 item.cw_amount)]), preflight=[])
    session.add(new)
    session.flush()
    item.state = ItemState.RETRIED
    session.flush()  # the old row leaves the live index before the copy joins it
    session.add(BatchItem(
        batch_id=new.id, record_key=item.record_key, generation=item.generation, position=0,
        cw_unposted_id=item.cw_unposted_id, cw_id=item.cw_id, cw_number=item.cw_number,
        cw_kind=item.cw_kind, party=item.party, record_date=item.record_date,
        gl_entry_ids=list(item.gl_entry_ids or []), state=ItemState.POSTED,
        qbo_entity=item.conflict_entity or "Invoice", qbo_id=item.conflict_qbo_id,
        qbo_doc_number=item.qbo_doc_number or (batch.settings_snapshot or {}).get(
            "doc_number_prefix", "") + item.cw_number, cw_amount=item.cw_amount, cw_tax=item.cw_tax,
        currency=item.currency, warnings=[f"adopted QuickBooks {item.conflict_entity} "
                                          f"{item.conflict_qbo_id} (posted outside portal)"]))
    session.flush()
    new.counts = count_states(session, new)
    recount(session, batch)
    audit.record(session, "batch.adopt", target_type="batch_item", target_id=item.id,
                 company_id=company.id, after={"record": item.cw_number, "batch": new.id,
                                               "qbo_entity": item.conflict_entity,
                                               "qbo_id": item.conflict_qbo_id})
    return new


def resume(session: Session, batch: Batch, user: User | None) -> Batch:
    """Continue a paused batch (after a reconnect) with a new run; the items say where.

    The caller commits and enqueues the batch's new run.
    """
    if batch.status is not BatchStatus.PAUSED:
        raise BatchRefused(f"Batch #{batch.id} is not paused.")
    company = session.get(Company, batch.company_id)
    try:
        run = runs.start(session, RunKind.BATCH, user=user, company_id=company.id)
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    batch.run_id = run.id
    batch.status = BatchStatus.QUEUED
    batch.message = "Resuming"
    audit.record(session, "batch.resume", target_type="batch", target_id=batch.id,
                 company_id=company.id)
    return batch


def cancel(session: Session, batch: Batch, user: User) -> None:
    """Ask the running job to stop before its next record (SPEC 6.9)."""
    if not batch.active:
        raise BatchRefused(f"Batch #{batch.id} has already ended.")
    batch.cancel_requested_by = user.email
    if batch.status is BatchStatus.PAUSED:  # no job runs it: settle it here
        for item in session.scalars(sa.select(BatchItem).where(BatchItem.batch_id == batch.id)):
            if item.state in (ItemState.SELECTED, ItemState.VALIDATED):
                item.state = ItemState.SKIPPED
                item.message = f"cancelled by {user.email}"
            elif item.state is ItemState.POSTING:
                item.state = ItemState.UNCERTAIN
                item.message = "QuickBooks may hold this document; Retry looks it up first."
        recount(session, batch)
        batch.status = BatchStatus.CANCELLED
        batch.colour = "red" if any(batch.counts.get(s) for s in ("uncertain", "posted")) \
            else "grey"
        batch.finished_at = utcnow()
    audit.record(session, "batch.cancel", target_type="batch", target_id=batch.id,
                 company_id=batch.company_id)


def count_states(session: Session, batch: Batch) -> dict[str, int]:
    rows = session.execute(sa.select(BatchItem.state, sa.func.count()).where(
        BatchItem.batch_id == batch.id).group_by(BatchItem.state))
    return {state.value: count for state, count in rows}


def recount(session: Session, batch: Batch) -> None:
    batch.counts = count_states(session, batch)


# ---- review ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    type: str | None = None
    colour: str | None = None
    status: str | None = None
    trigger: str | None = None  # user, autosync, webhook or retry
    company_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    record: str | None = None
    before_id: int | None = None

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (bookmarkable)."""
        out = {"type": self.type, "colour": self.colour, "status": self.status,
               "trigger": self.trigger,
               "company": str(self.company_id) if self.company_id else None,
               "from": self.date_from.isoformat() if self.date_from else None,
               "to": self.date_to.isoformat() if self.date_to else None,
               "record": self.record}
        return {k: v for k, v in out.items() if v}


def listing(session: Session, filters: Filters, limit: int = PAGE) -> list[Batch]:
    """Newest first, keyset-paged on id (`before_id`)."""
    query = sa.select(Batch).order_by(Batch.id.desc()).limit(limit)
    if filters.type:
        query = query.where(Batch.type == BatchType(filters.type))
    if filters.colour:
        query = query.where(Batch.colour == filters.colour)
    if filters.status:
        query = query.where(Batch.status == BatchStatus(filters.status))
    if filters.trigger:
        prefix = {"user": "user:", "retry": "retry-of:"}.get(filters.trigger)
        query = query.where(Batch.trigger.startswith(prefix) if prefix
                            else Batch.trigger == filters.trigger)
    if filters.company_id:
        query = query.where(Batch.company_id == filters.company_id)
    if filters.date_from:
        query = query.where(Batch.created_at >= datetime.combine(
            filters.date_from, datetime.min.time(), tzinfo=utcnow().tzinfo))
    if filters.date_to:
        query = query.where(Batch.created_at < datetime.combine(
            date.fromordinal(filters.date_to.toordinal() + 1), datetime.min.time(),
            tzinfo=utcnow().tzinfo))
    if filters.record:
        query = query.where(Batch.id.in_(sa.select(BatchItem.batch_id).where(
            BatchItem.cw_number == filters.record)))
    if filters.before_id:
        query = query.where(Batch.id < filters.before_id)
    from sqlalchemy.orm import selectinload
    return list(session.scalars(query.options(selectinload(Batch.company),
                                              selectinload(Batch.started_by))))


def items_of(session: Session, batch: Batch) -> list[BatchItem]:
    return list(session.scalars(sa.select(BatchItem).where(BatchItem.batch_id == batch.id)
                                .order_by(BatchItem.position, BatchItem.id)))


def events_of(session: Session, item: BatchItem, limit: int = 200) -> list[BatchItemEvent]:
    return list(session.scalars(sa.select(BatchItemEvent).where(
        BatchItemEvent.item_id == item.id).order_by(BatchItemEvent.id).limit(limit)))


def recent_events(session: Session, batch: Batch, limit: int = 10) -> list[BatchItemEvent]:
    return list(session.scalars(sa.select(BatchItemEvent).where(
        BatchItemEvent.batch_id == batch.id).order_by(BatchItemEvent.id.desc()).limit(limit)))


def _safe(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def csv_rows(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    """Stream CSV text, one line at a time, formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_safe(v) for v in row])
        yield buffer.getvalue()


LIST_HEADER = ["batch", "type", "company", "colour", "status", "started", "duration_s",
               "trigger", "done", "failed", "skipped", "amount", "settings_version"]
ITEM_HEADER = ["record", "date", "party", "state", "cw_amount", "qbo_entity", "qbo_id",
               "qbo_doc_number", "qbo_amount", "cw_tax", "qbo_tax", "currency",
               "cw_batch_identifier", "message", "fix_hint", "warnings"]


def list_csv(batches: Iterable[Batch]) -> Iterator[str]:
    return csv_rows(LIST_HEADER, ([
        b.id, b.type.value, b.company.qbo_name if b.company else b.company_id, b.colour,
        b.status.value, (b.started_at or b.created_at).isoformat(timespec="seconds"),
        round(b.duration_seconds or 0), b.trigger_label, (b.counts or {}).get("done", 0),
        (b.counts or {}).get("failed", 0), (b.counts or {}).get("skipped", 0),
        "; ".join(f"{v} {k}" for k, v in (b.totals or {}).items()), b.settings_version_id]
        for b in batches))


def items_csv(items: Iterable[BatchItem]) -> Iterator[str]:
    return csv_rows(ITEM_HEADER, ([
        i.cw_number, i.record_date, i.party, i.state.value, i.cw_amount, i.qbo_entity,
        i.qbo_id, i.qbo_doc_number, i.qbo_amount, i.cw_tax, i.qbo_tax, i.currency,
        i.cw_batch_identifier, i.message, i.fix_hint, " | ".join(i.warnings or [])]
        for i in items))


# ---- selection screen and review helpers (routes.batches) ----------------------------------

def validate_selection(session: Session, company: Company, cw: Any, records: list[Unposted],
                       level: str) -> list[dict[str, Any]]:
    """Pre-flight a selection before Submit, writing nothing to either system.

    Runs the batch engine's validator over the GL export of the selected invoices with the
    cached reference data, and groups the problems by fix in the shape of
    `Batch.preflight` ({message, hint, kind, value, link, records}), biggest group first.
    ConnectWise failures raise `IntegrationError` for the caller to show. The caller commits
    (the company's settings row may have been created).
    """
    from portal.services import cw_invoices, mapping

    if not records:
        return []
    thru = max((r.day for r in records if r.day), default=None)
    transactions = cw_invoices.export(cw, [r.invoice_id for r in records], level, thru)
    mappings = mapping.MappingSet.load(session, company, mapping.prefs_for(session, company))
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        tx = transactions.get(record.invoice_id)
        if tx is None:
            problems = [mapping.Problem(
                f"invoice {record.number}", "error",
                f"Invoice {record.number} has no GL entries in ConnectWise, or is no longer "
                "unposted.", "Re-open and re-close the invoice in ConnectWise, then refresh "
                             "the list.")]
        else:
            problems = mapping.validate_invoice(tx, mappings, company)
        for problem in problems:
            group = groups.setdefault(problem.key, {
                "message": problem.message or problem.status, "hint": problem.hint,
                "kind": problem.kind, "value": problem.cw_value, "link": None, "records": []})
            if record.number not in group["records"]:
                group["records"].append(record.number)
    return sorted(groups.values(), key=lambda g: -len(g["records"]))


def version_numbers(session: Session, version_ids: Iterable[int | None]) -> dict[int, int]:
    """Settings version id -> its per-company number (for "settings v3")."""
    from portal.models import SettingsVersion

    ids = {i for i in version_ids if i}
    if not ids:
        return {}
    return dict(session.execute(sa.select(SettingsVersion.id, SettingsVersion.number).where(
        SettingsVersion.id.in_(ids))).all())


def settings_changes(session: Session, batch: Batch) -> list[tuple[str, Any, Any]]:
    """(setting, value the batch used, current value) for every setting changed since.

    Empty when the batch has no snapshot yet. The caller commits (reading the current
    settings may create the company's settings row).
    """
    from portal.services import company_settings

    if not batch.settings_snapshot:
        return []
    company = session.get(Company, batch.company_id)
    current = company_settings.as_json(company_settings.get_settings(session, company))
    return [(name, used, current.get(name)) for name, used in sorted(
        batch.settings_snapshot.items()) if name in current and current[name] != used]


@dataclass(frozen=True)
class Links:
    """Deep links into both products (SPEC 3.1 `cw_ui_link_template`, 3.4 `qbo_ui_base_url`)."""

    qbo_base: str
    cw_invoice: str | None  # a template with {id}

    def cw(self, invoice_id: int | None) -> str | None:
        if not self.cw_invoice or not invoice_id:
            return None
        return self.cw_invoice.replace("{id}", str(int(invoice_id)))


def links(session: Session) -> Links:
    """QuickBooks' web app for the app's environment (the simulator's own pages when custom),
    and the ConnectWise invoice screen on the connected site."""
    from portal.integrations.connectwise import site_url
    from portal.services import cw_setup, qbo_setup

    app = qbo_setup.app_row(session)
    environment = app.environment if app else "production"
    qbo_base = QBO_UI.get(environment) or (app.api_base_url if app and app.api_base_url
                                           else QBO_UI["production"])
    cw = cw_setup.current(session)
    template = None
    if cw is not None:
        template = CW_INVOICE_LINK.replace("{site}", site_url(cw.site)).replace(
            "{codebase}", (cw.codebase or "v4_6_release/").strip("/") + "/")
    return Links(qbo_base.rstrip("/"), template)
