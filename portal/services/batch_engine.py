"""The batch engine: pre-flight, references, QuickBooks documents, ConnectWise marking.

Each item moves through the states of SPEC 6.3 and every transition is committed before
the next external call, so a worker killed anywhere leaves rows that say what is known:
`posting` means "QuickBooks may hold the document" and is settled by a lookup (DocNumber
and our `portal:<token>` marker) before anything is sent again. Nothing is posted twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient, escape
from portal.jobs.progress import DbProgress
from portal.models import (Batch, BatchItem, BatchItemEvent, BatchStatus, Company, ItemState,
                           RefFetch, RunStatus)
from portal.models.types import utcnow
from portal.services import (company_settings, cw_invoices, doc_numbers, invoice_builder,
                             reference)
from portal.services.batches import recount
from portal.services.company_settings import CompanySettings
from portal.services.mapping import MappingSet, Prefs, Problem, validate_invoice

log = logging.getLogger(__name__)
MAX_UNKNOWN = 3
CW_CREATE_LISTS = ("company", "billing_term")
WINDOW = 200
MARK_TRIES = 5
THROTTLE_CAP_SECONDS = 600
ERROR_HINTS = {
    "6140": ("doc.in_use", "Renumber or delete that document in QuickBooks, then retry."),
    "2050": ("doc.too_long", "Shorten the DocNumber prefix on the Company tab."),
    "6240": ("customer.duplicate_name", "Turn on Append account name, or give clients that "
                                        "are also vendors distinct names in ConnectWise."),
    "6200": ("period.closed", "Move the closing date in QuickBooks or change the date in "
                              "ConnectWise."),
    "6210": ("period.closed", "Move the closing date in QuickBooks or change the date in "
                              "ConnectWise."),
    "6070": ("line.amount", "Check the quantities and prices of the invoice in ConnectWise."),
    "610": ("reference.inactive", "Reactivate the object in QuickBooks or change the mapping, "
                                  "then retry."),
}


class LostClaim(Exception):
    """Another worker took the batch over; stop before the next external call."""


class Paused(Exception):
    """QuickBooks refused the app: the batch waits for a reconnect."""


@dataclass
class Config:
    batch_size: int = 30
    lookup_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Context:
    """The run's settings, company facts and mapping, and the current window's
    ConnectWise data."""

    settings: CompanySettings
    facts: invoice_builder.Facts
    mapping: MappingSet
    transactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    time_entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def identifier_for(item: BatchItem, today: date) -> str:
    """`YYYY-MM-DD-I<number>`, with `-r<g>` from the second generation (SPEC 6.4)."""
    text = f"{today.isoformat()}-I{item.cw_number}"
    return f"{text}-r{item.generation}" if item.generation > 1 else text


def _prefs(settings: CompanySettings) -> Prefs:
    return Prefs(**{name: getattr(settings, name) for name in Prefs.__dataclass_fields__})


class Engine:
    """Runs one invoice batch to its end (or to a pause), resuming from the items' states."""

    def __init__(self, session: Session, batch: Batch, cw: ConnectWiseClient,
                 qbo: QuickBooksClient, progress: DbProgress, config: Config | None = None
                 ) -> None:
        self.session = session
        self.batch = batch
        self.company: Company = session.get(Company, batch.company_id)
        self.cw = cw
        self.qbo = qbo
        self.progress = progress
        self.config = config or Config()
        self.token = uuid.uuid4().hex
        self._conflicts: dict[int, tuple[str, str]] = {}
        self._cw_base = cw.requests_sent
        self._qbo_base = qbo.requests_sent

    # -- bookkeeping -----------------------------------------------------------------------

    def _event(self, item: BatchItem | None, to: str | None = None, text: str | None = None,
               endpoint: str | None = None, status: int | None = None,
               tid: str | None = None, started: float | None = None,
               from_state: str | None = None) -> None:
        self.session.add(BatchItemEvent(
            batch_id=self.batch.id, item_id=item.id if item else None, from_state=from_state,
            to_state=to, endpoint=endpoint, http_status=status, intuit_tid=tid,
            text=(text or "")[:1000] or None,
            duration_ms=round((time.monotonic() - started) * 1000) if started else None))

    def _move(self, item: BatchItem, state: ItemState, text: str | None = None) -> None:
        before = item.state.value
        item.state = state
        self._event(item, state.value, text, from_state=before)

    def _fail(self, item: BatchItem, message: str, hint: str | None = None,
              link: str | None = None) -> None:
        item.message = message
        item.fix_hint = hint
        item.fix_link = link
        self._move(item, ItemState.FAILED, message)

    def _commit(self) -> None:
        """Commit, after checking the batch is still ours and counting requests."""
        self.batch.qbo_requests += self.qbo.requests_sent - self._qbo_base
        self.batch.cw_requests += self.cw.requests_sent - self._cw_base
        self._qbo_base, self._cw_base = self.qbo.requests_sent, self.cw.requests_sent
        self.session.flush()
        owner = self.session.execute(sa.select(Batch.claim_token).where(
            Batch.id == self.batch.id)).scalar_one()
        if owner != self.token:
            self.session.rollback()
            raise LostClaim(f"batch {self.batch.id} was taken over")
        if self.batch.run is not None:
            self.batch.run.heartbeat_at = utcnow()
        self.session.commit()

    def _items(self, *states: ItemState, after: int = 0, limit: int | None = None
               ) -> list[BatchItem]:
        query = sa.select(BatchItem).where(
            BatchItem.batch_id == self.batch.id, BatchItem.state.in_(list(states)),
            BatchItem.id > after).order_by(BatchItem.id)
        return list(self.session.scalars(query.limit(limit) if limit else query))

    def _windows(self, *states: ItemState, size: int = WINDOW) -> Iterator[list[BatchItem]]:
        """Items in id order, a window at a time, so memory does not grow with the batch."""
        last = 0
        while True:
            window = self._items(*states, after=last, limit=size)
            if not window:
                return
            last = window[-1].id
            yield window

    def _has(self, *states: ItemState) -> bool:
        return self.session.scalar(sa.select(BatchItem.id).where(
            BatchItem.batch_id == self.batch.id, BatchItem.state.in_(list(states))).limit(1)
        ) is not None

    def _cancelled(self) -> bool:
        self.session.refresh(self.batch, ["cancel_requested_by"])
        return bool(self.batch.cancel_requested_by)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> tuple[RunStatus, str]:
        batch = self.batch
        batch.claim_token = self.token
        batch.status = BatchStatus.RUNNING
        batch.started_at = batch.started_at or utcnow()
        if batch.settings_snapshot is None:
            settings = company_settings.get_settings(self.session, self.company)
            batch.settings_snapshot = company_settings.as_json(settings)
            batch.settings_version_id = company_settings.current_version(
                self.session, self.company).id
        self.session.commit()
        settings = company_settings.from_json(batch.settings_snapshot)
        try:
            if self._has(ItemState.SELECTED, ItemState.VALIDATED):
                if not self._validate(settings):
                    return self._finish()
            self._post_all()
            self._mark_all()
            self._post_steps(settings)
        except Paused as exc:
            self.session.rollback()
            batch.status = BatchStatus.PAUSED
            batch.message = str(exc)
            recount(self.session, batch)
            self.session.commit()
            return RunStatus.FAILED, str(exc)
        return self._finish()

    def _finish(self) -> tuple[RunStatus, str]:
        batch = self.batch
        if self._cancelled():
            for window in self._windows(ItemState.SELECTED, ItemState.VALIDATED):
                for item in window:
                    item.message = f"cancelled by {batch.cancel_requested_by}"
                    self._move(item, ItemState.SKIPPED, item.message)
                self._commit()
        recount(self.session, batch)
        counts = batch.counts
        warned = sum(1 for warnings in self.session.scalars(sa.select(BatchItem.warnings).where(
            BatchItem.batch_id == batch.id, BatchItem.state == ItemState.DONE)
            .execution_options(yield_per=1000)) if warnings)
        batch.status = BatchStatus.CANCELLED if batch.cancel_requested_by else \
            BatchStatus.FINISHED
        batch.finished_at = utcnow()
        red = bool(batch.preflight) or any(counts.get(s, 0) for s in (
            "failed", "uncertain", "posted", "posting", "validated", "selected", "marked"))
        batch.colour = "grey" if batch.status is BatchStatus.CANCELLED else \
            "red" if red else "yellow" if warned else "green"
        done = counts.get("done", 0)
        failed = counts.get("failed", 0) + counts.get("uncertain", 0)
        unmarked = counts.get("posted", 0)
        if batch.preflight:
            message = (f"Pre-flight found {len(batch.preflight)} problem(s); nothing was "
                       "written. Fix them and retry.")
        else:
            message = f"{done} posted and marked"
            if failed:
                message += f", {failed} failed"
            if unmarked:
                message += f", {unmarked} posted but not marked in ConnectWise"
            if counts.get("skipped"):
                message += f", {counts['skipped']} skipped"
            if warned:
                message += f", {warned} with warnings"
        batch.message = message[:500]
        self._commit()
        return (RunStatus.FAILED if red else RunStatus.SUCCEEDED), message

    # -- 1. pre-flight and references ------------------------------------------------------

    def _read_window(self, ctx: Context, items: list[BatchItem]) -> None:
        """This window's ConnectWise data into the context (the previous window's is dropped)."""
        settings = ctx.settings
        level = self._level(settings)
        ids = [item.cw_id for item in items if item.cw_id]
        thru = max((i.record_date for i in items if i.record_date), default=None)
        transactions = cw_invoices.export(self.cw, ids, level, thru)
        invoices = cw_invoices.by_ids(self.cw, "/finance/invoices", ids)
        entries: dict[int, dict[str, Any]] = {}
        tickets: dict[int, dict[str, Any]] = {}
        if level != "Default" or settings.service_item_source in (
                "WorkRoleWorkType", "WorkRole", "WorkType"):
            entries = cw_invoices.by_ids(self.cw, "/time/entries",
                                         cw_invoices.time_entries_of(transactions.values()))
            tickets = cw_invoices.tickets(self.cw, entries.values())
        ctx.transactions, ctx.invoices = transactions, invoices
        ctx.time_entries, ctx.tickets = entries, tickets

    def _level(self, settings: CompanySettings) -> str:
        level = (self.batch.options or {}).get("summary") or settings.invoice_export_detail
        if settings.service_item_source in ("WorkRoleWorkType", "WorkRole", "WorkType"):
            return "Detailed"
        return level

    def _refresh_references(self, settings: CompanySettings) -> None:
        """QuickBooks lists older than `reference_cache_max_age_minutes` are read again."""
        limit = utcnow() - timedelta(minutes=settings.reference_cache_max_age_minutes)
        fetched = {(f.side, f.entity): f.fetched_at for f in self.session.scalars(
            sa.select(RefFetch).where(sa.or_(
                sa.and_(RefFetch.side == "qbo", RefFetch.company_key == self.company.id),
                RefFetch.side == "cw")))}

        def stale(side: str, entity: str) -> bool:
            at = fetched.get((side, entity))
            return at is None or at < limit

        for entity in reference.QBO_LISTS:
            if stale("qbo", entity):
                self.progress.message(f"Refreshing QuickBooks {entity} list")  # commits
                reference.refresh_qbo_list(self.session, self.company, self.qbo, entity)
                self.session.commit()
        for entity in CW_CREATE_LISTS:  # what creating customers and terms reads
            if stale("cw", entity):
                self.progress.message(f"Refreshing ConnectWise {entity} list")
                reference.refresh_cw_list(self.session, self.cw, entity)
                self.session.commit()

    def _source(self, ctx: Context, item: BatchItem) -> invoice_builder.Source:
        return invoice_builder.Source(
            transaction=ctx.transactions[item.cw_id], invoice=ctx.invoices.get(item.cw_id),
            time_entries=ctx.time_entries, tickets=ctx.tickets)

    def _validate(self, settings: CompanySettings) -> bool:
        """Pre-flight every selected record; any error fails the batch before any write.

        Two passes over windows of records: check everything (collecting the references
        to create), then create them and build the payloads. ConnectWise is read twice so
        that memory stays flat whatever the batch size.
        """
        total = self.session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == self.batch.id,
            BatchItem.state.in_([ItemState.SELECTED, ItemState.VALIDATED]))) or 0
        self.progress.start(total, f"Checking {total} record(s)")
        self._refresh_references(settings)
        ctx = Context(settings, invoice_builder.Facts.of(self.company),
                      MappingSet.load(self.session, self.company, _prefs(settings)))
        problems: dict[int, list[Problem]] = {}
        wanted: dict[tuple[str, str], invoice_builder.Need] = {}
        numbers: dict[str, tuple[int, str | None]] = {}  # DocNumber -> item id, earlier doc
        for window in self._windows(ItemState.SELECTED, ItemState.VALIDATED):
            self._read_window(ctx, window)
            for item in window:
                numbers[f"{settings.doc_number_prefix}{item.cw_number}"] = (item.id,
                                                                            item.qbo_id)
                found = self._check(ctx, item)
                if found:
                    problems[item.id] = found
                elif not problems:  # once blocked, nothing will be created
                    for need in invoice_builder.needs(self._source(ctx, item), settings,
                                                      ctx.facts, ctx.mapping):
                        wanted.setdefault((need.kind, need.name), need)
                self.progress.advance()
            self._commit()
        for item_id, found in self._doc_numbers(numbers).items():
            problems.setdefault(item_id, []).extend(found)
        if problems:
            self._block(problems)
            return False
        self._create_references(ctx, list(wanted.values()))
        ctx.mapping = MappingSet.load(self.session, self.company, _prefs(settings))
        self.progress.start(total, f"Building {total} document(s)")
        for window in self._windows(ItemState.SELECTED, ItemState.VALIDATED):
            self._read_window(ctx, window)
            self._build_all(ctx, window)
        return True

    def _check(self, ctx: Context, item: BatchItem) -> list[Problem]:
        record = f"invoice {item.cw_number}"
        tx = ctx.transactions.get(item.cw_id or 0)
        if tx is None:
            return [Problem(record, "error", f"Invoice {item.cw_number} has no GL entries in "
                                             "ConnectWise, or is no longer unposted.",
                            "Re-open and re-close the invoice in ConnectWise, then refresh "
                            "the list.")]
        item.gl_entry_ids = [int(x) for x in str(tx.get("glEntryIds") or "").split(",")
                             if x.strip().isdigit()]
        found = validate_invoice(tx, ctx.mapping, self.company) + self._period(item, tx, record)
        if not found:
            refused = invoice_builder.check(self._source(ctx, item), ctx.settings, ctx.facts,
                                            ctx.mapping, summary_level=self._level(ctx.settings))
            if refused is not None:
                found.append(Problem(record, "error", refused.message, refused.hint))
        return found

    def _period(self, item: BatchItem, tx: dict[str, Any], record: str) -> list[Problem]:
        closed = self.company.book_close_date
        day = item.record_date or (date.fromisoformat(str(tx.get("documentDate"))[:10])
                                   if tx.get("documentDate") else None)
        if closed and day and day <= closed:
            return [Problem(record, "error",
                            f"QuickBooks books are closed through {closed}; {record} is dated "
                            f"{day}. Move the closing date in QuickBooks or change the date in "
                            "ConnectWise.", "Move the closing date or the ConnectWise date.")]
        return []

    def _doc_numbers(self, numbers: dict[str, tuple[int, str | None]]
                     ) -> dict[int, list[Problem]]:
        """DocNumbers already used in QuickBooks: one pass of `IN (…)` queries inside /batch
        for the whole selection (30 queries of 100 numbers per request)."""
        problems: dict[int, list[Problem]] = {}
        for doc, (entity, qbo_id, txn_date) in self._taken(list(numbers)).items():
            item_id, earlier = numbers[doc]
            if earlier and earlier == qbo_id:
                continue  # this record's own earlier document (SPEC 11.3)
            self._conflicts[item_id] = (entity, qbo_id)  # offered for Adopt
            problems.setdefault(item_id, []).append(Problem(
                f"invoice {doc}", "error",
                f"DocNumber {doc} is already used by QuickBooks {entity} Id {qbo_id} (dated "
                f"{txn_date}). Numbers must come only from ConnectWise: renumber or delete that "
                "document in QuickBooks, and never let QuickBooks number invoices.",
                "Renumber or delete that document in QuickBooks."))
        return problems

    def _taken(self, numbers: list[str]) -> dict[str, tuple[str, str, str]]:
        self._commit()  # no snapshot held across calls that may refresh the token
        return doc_numbers.taken(lambda queries: self._read(lambda: self.qbo.batch(queries)),
                                 numbers)

    def _block(self, problems: dict[int, list[Problem]]) -> None:
        """Nothing is written: failing records get their problems, the others are freed."""
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        for window in self._windows(ItemState.SELECTED, ItemState.VALIDATED):
            for item in window:
                found = problems.get(item.id) or []
                if found:
                    item.conflict_entity, item.conflict_qbo_id = self._conflicts.get(
                        item.id, (None, None))
                    first = found[0]
                    extra = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
                    self._fail(item, first.message + extra, first.hint, _fix_link(first))
                    item.warnings = [p.message for p in found[1:]]
                else:
                    item.message = "Not posted: pre-flight found problems in other records " \
                                   "of this batch."
                    self._move(item, ItemState.SKIPPED, item.message)
                for problem in found:
                    group = groups.setdefault(problem.key, {
                        "message": problem.message, "hint": problem.hint,
                        "kind": problem.kind, "value": problem.cw_value,
                        "link": _fix_link(problem), "records": []})
                    group["records"].append(item.cw_number)
            self._commit()
        self.batch.preflight = sorted(groups.values(), key=lambda g: -len(g["records"]))
        self._commit()

    def _create_references(self, ctx: Context, wanted: list[invoice_builder.Need]) -> None:
        """Customers, items, categories, terms, classes and locations the documents need,
        first, in rounds of /batch requests."""
        if not wanted:
            return
        from portal.services import creation

        self.progress.message(f"Creating {len(wanted)} reference(s) in QuickBooks")
        try:
            creation.ensure_all(
                self.session, self.company, self.qbo,
                lambda: MappingSet.load(self.session, self.company, ctx.mapping.prefs),
                wanted, lambda operations, rid: self._read(
                    lambda: self.qbo.batch(operations, request_id=rid)))
        except creation.CreateError as exc:
            raise errors.Invalid(str(exc), hint="Fix the name or the mapping, then retry "
                                                "the batch.") from None
        self._commit()

    def _build_all(self, ctx: Context, items: list[BatchItem]) -> None:
        tz = ZoneInfo(ctx.settings.time_zone or "UTC")
        today = datetime.now(tz).date()
        for item in items:
            if item.request_token is None:
                item.request_token = uuid.uuid4().hex
            try:
                built = invoice_builder.build(
                    self._source(ctx, item), ctx.settings, ctx.facts, ctx.mapping,
                    request_token=item.request_token, summary_level=self._level(ctx.settings))
            except invoice_builder.BuildError as exc:
                self._fail(item, exc.message, exc.hint)
                continue
            item.cw_amount = built.cw_total
            item.cw_tax = built.cw_tax
            item.warnings = list(built.warnings)
            item.qbo_doc_number = built.doc_number
            if built.zero and ctx.settings.skip_zero_invoices:
                item.qbo_entity = None
                item.payload = None
            else:
                item.qbo_entity = built.entity
                item.payload = built.payload
                item.payload_hash = payload_hash(built.payload)
            item.cw_batch_identifier = item.cw_batch_identifier or identifier_for(item, today)
            self._move(item, ItemState.VALIDATED)
            self.progress.advance()
        self._commit()

    # -- 2. QuickBooks documents -----------------------------------------------------------

    def _post_all(self) -> None:
        uncertain = self._items(ItemState.POSTING, ItemState.UNCERTAIN)
        if uncertain:
            self._settle(uncertain)
        total = self.session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == self.batch.id, BatchItem.state == ItemState.VALIDATED)) or 0
        self.progress.start(total, f"Posting {total} document(s) to QuickBooks")
        size = max(1, min(self.config.batch_size, 30))
        while True:
            if self._cancelled():
                return
            chunk = self._items(ItemState.VALIDATED, limit=size)
            if not chunk:
                return
            zero = [i for i in chunk if i.payload is None]
            for item in zero:
                item.warnings = [*(item.warnings or []), "zero invoice, not posted"]
                self._move(item, ItemState.POSTED, "zero invoice: marked without a document")
            self._post_chunk([i for i in chunk if i.payload is not None])
            self.progress.advance(len(chunk))

    def _post_chunk(self, chunk: list[BatchItem]) -> None:
        if not chunk:
            return
        request_id = str(uuid.uuid4())
        for item in chunk:
            item.bid = f"i{base36(item.id)}"[:10]
            item.qbo_batch_request_id = request_id
            item.attempts += 1
            self._move(item, ItemState.POSTING)
        self._commit()  # the intent is durable before QuickBooks hears of it
        operations = [{"bId": i.bid, "operation": "create", i.qbo_entity: i.payload}
                      for i in chunk]
        started = time.monotonic()
        try:
            answers = self._send(lambda: self.qbo.batch(operations, request_id=request_id),
                                 chunk)
        except errors.Invalid as exc:  # the whole request was refused: nothing was written
            for item in chunk:
                self._rejected(item, {"Error": [{"code": exc.code, "Detail": exc.message}]})
            self._commit()
            return
        if answers is None:
            self._settle(chunk)
            return
        if answers == []:
            return  # throttled past the cap: the items were failed as transient
        by_bid = {a.get("bId"): a for a in answers}
        unknown = []
        for item in chunk:
            answer = by_bid.get(item.bid)
            if answer is None:
                unknown.append(item)
            elif item.qbo_entity in answer:
                self._posted(item, answer[item.qbo_entity], started)
            else:
                fault = answer.get("Fault") or {}
                if str(fault.get("type", "")).lower() == "systemfault":
                    unknown.append(item)
                else:
                    self._rejected(item, fault)
        self._commit()
        if unknown:
            self._settle(unknown)

    def _send(self, call: Callable[[], Any], items: list[BatchItem]) -> Any | None:
        """Call QuickBooks; None means the outcome is unknown (settle by lookup)."""
        while True:
            try:
                return call()
            except errors.RateLimited as exc:
                wait = float(exc.retry_after or 60)
                if self.batch.throttled_seconds + wait > THROTTLE_CAP_SECONDS:
                    for item in items:
                        if item.state is ItemState.POSTING:
                            self._fail(item, "QuickBooks kept throttling; retry the failed "
                                             "items later.",
                                       "Usually resolves on its own; check that no other tool "
                                       "uses the same QuickBooks company heavily.")
                    self._commit()
                    return []
                self.batch.throttled_seconds += wait
                self.progress.message(f"QuickBooks is throttling; waiting {wait:.0f} s",
                                      level="warning")
                self.config.sleep(wait)
            except (errors.AuthError, errors.Forbidden) as exc:
                raise Paused(f"Reconnect needed: {exc.message} {exc.hint or ''}".strip()) \
                    from None
            except errors.Transient as exc:
                for item in items:
                    self._event(item, text=f"outcome unknown: {exc.message}",
                                status=exc.status, tid=exc.tid)
                return None

    def _posted(self, item: BatchItem, obj: dict[str, Any], started: float | None = None
                ) -> None:
        item.qbo_id = str(obj.get("Id"))
        item.qbo_doc_number = obj.get("DocNumber") or item.qbo_doc_number
        item.qbo_sync_token = str(obj.get("SyncToken") or "0")
        item.qbo_amount = Decimal(str(obj.get("TotalAmt") or 0)).quantize(Decimal("0.01"))
        tax = (obj.get("TxnTaxDetail") or {}).get("TotalTax")
        item.qbo_tax = Decimal(str(tax)).quantize(Decimal("0.01")) if tax is not None else None
        item.message = item.fix_hint = None
        self._move(item, ItemState.POSTED, f"{item.qbo_entity} {item.qbo_id}")
        if started:
            self.session.add(BatchItemEvent(batch_id=self.batch.id, item_id=item.id,
                                            endpoint="POST /batch",
                                            duration_ms=round((time.monotonic() - started)
                                                              * 1000)))

    def _rejected(self, item: BatchItem, fault: dict[str, Any]) -> None:
        error = (fault.get("Error") or [{}])[0]
        code = str(error.get("code") or "").lstrip("0")
        detail = str(error.get("Detail") or error.get("Message") or "")
        _key, hint = ERROR_HINTS.get(code, (None, "Fix the record or the mapping named in the "
                                                   "message, then retry."))
        item.request_token = None  # a failed item gets a fresh token when validated again
        self._fail(item, f"QuickBooks refused {item.qbo_entity} {item.qbo_doc_number}: "
                         f"{detail} (code {code})", hint)

    def _settle(self, items: list[BatchItem]) -> None:
        """Outcome unknown: look the documents up, re-post the missing ones, at most 3 times."""
        pending = list(items)
        while pending:
            self.config.sleep(self.config.lookup_delay)
            found = self._lookup(pending)
            retry: list[BatchItem] = []
            for item in pending:
                hits = found.get(item.qbo_doc_number or "", [])
                ours = [o for o in hits if f"portal:{item.request_token}" in str(
                    o.get("PrivateNote") or "")]
                if ours:
                    self._posted(item, ours[0])
                    continue
                others = [o for o in hits if str(o.get("Id")) != (item.qbo_id or "")]
                if others:
                    item.conflict_entity = item.qbo_entity
                    item.conflict_qbo_id = str(others[0].get("Id"))
                    self._fail(item, f"DocNumber {item.qbo_doc_number} already belongs to "
                                     f"QuickBooks {item.qbo_entity} Id {others[0].get('Id')}, "
                                     "which portal did not create.",
                               "Renumber that document in QuickBooks, then retry.")
                    continue
                item.unknown_outcomes += 1
                if item.unknown_outcomes >= MAX_UNKNOWN:
                    item.message = ("QuickBooks did not confirm the document after "
                                    f"{MAX_UNKNOWN} tries; Retry looks it up first.")
                    item.fix_hint = "Retry this batch's failed items later."
                    if item.state is not ItemState.UNCERTAIN:
                        self._move(item, ItemState.UNCERTAIN, item.message)
                    continue
                retry.append(item)
            self._commit()
            pending = []
            for item in retry:
                if item.state is ItemState.UNCERTAIN:
                    self._move(item, ItemState.POSTING, "retry: looked up, not found")
                item.attempts += 1
                self._commit()
                try:
                    answer = self._send(lambda i=item: self.qbo.create(
                        i.qbo_entity, i.payload, request_id=i.request_token), [item])
                except errors.Invalid as exc:
                    if exc.code == "6140":  # the number exists now: whose is it?
                        pending.append(item)
                    else:
                        self._rejected(item, {"Error": [{"code": exc.code,
                                                         "Detail": exc.detail or exc.message}]})
                    self._commit()
                    continue
                if answer is None:
                    pending.append(item)
                elif answer == []:
                    continue
                else:
                    self._posted(item, answer)
                self._commit()

    def _lookup(self, items: list[BatchItem]) -> dict[str, list[dict[str, Any]]]:
        self._commit()  # no snapshot held across calls that may refresh the token
        by_entity: dict[str, list[str]] = defaultdict(list)
        for item in items:
            by_entity[item.qbo_entity or "Invoice"].append(item.qbo_doc_number or "")
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entity, numbers in by_entity.items():
            for start in range(0, len(numbers), 100):
                chunk = ", ".join(escape(n) for n in numbers[start:start + 100])
                page = self._read(lambda c=chunk, e=entity: self.qbo.query(
                    f"SELECT * FROM {e} WHERE DocNumber IN ({c}) MAXRESULTS 1000"))
                for obj in page.get(entity, []):
                    found[str(obj.get("DocNumber"))].append(obj)
        return found

    def _read(self, call: Callable[[], Any]) -> Any:
        """A read must answer: retried on throttling (waiting as asked) and on server
        faults, with backoff; a refused token pauses the batch."""
        for attempt in range(5):
            try:
                return call()
            except errors.RateLimited as exc:
                wait = float(exc.retry_after or 60)
                self.progress.message(f"QuickBooks is throttling; waiting {wait:.0f} s",
                                      level="warning")
                self.batch.throttled_seconds += wait
                self.config.sleep(wait)
            except (errors.AuthError, errors.Forbidden) as exc:
                raise Paused(f"Reconnect needed: {exc.message}") from None
            except errors.Transient:
                self.config.sleep(min(16.0, 2.0 ** attempt))
        return call()

    # -- 3. ConnectWise marking ------------------------------------------------------------

    def _mark_all(self) -> None:
        total = self.session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == self.batch.id, BatchItem.state == ItemState.POSTED)) or 0
        if not total:
            return
        self.progress.start(total, f"Marking {total} record(s) in ConnectWise")
        for window in self._windows(ItemState.POSTED, size=100):
            if self._cancelled():
                return
            for item in window:
                self._mark(item)
                self.progress.advance()

    def _mark(self, item: BatchItem) -> None:
        base = item.cw_batch_identifier or identifier_for(item, utcnow().date())
        identifier = item.cw_batch_identifier or base
        for attempt in range(MARK_TRIES):
            item.mark_attempts += 1
            self._commit()
            try:
                found = cw_invoices.mark(self.cw, identifier, list(item.gl_entry_ids or []),
                                         item.cw_id or 0, look_first=item.mark_attempts > 1)
            except cw_invoices.IdentifierTaken:
                suffix = 2 if identifier == base else int(identifier.rsplit("-", 1)[1]) + 1
                if suffix > 20:
                    item.message = f"Accounting batch identifier '{base}' is taken in " \
                                   "ConnectWise by other records."
                    item.fix_hint = "Delete or rename that accounting batch, then retry."
                    self._event(item, text=item.message)
                    self._commit()
                    return
                identifier = f"{base}-{suffix}"
                item.cw_batch_identifier = identifier
                continue
            except errors.Forbidden:
                item.message = "ConnectWise refused to create the accounting batch."
                item.fix_hint = ("Grant Finance › Accounting Interface › Add to the API "
                                 "member's security role, then retry.")
                self._event(item, text=item.message, status=403)
                self._commit()
                return
            except errors.IntegrationError as exc:
                self._event(item, text=f"marking: {exc.message}", status=exc.status)
                if attempt + 1 < MARK_TRIES:
                    self.config.sleep(min(16.0, 2.0 ** attempt))
                    continue
                item.message = (f"Posted to QuickBooks but not marked in ConnectWise: "
                                f"{exc.message}")
                item.fix_hint = "Retry the batch: it marks the record without posting again."
                self._commit()
                return
            item.cw_batch_identifier = identifier
            item.cw_batch_id = found
            item.message = item.fix_hint = None
            self._move(item, ItemState.MARKED, identifier)
            self._commit()
            return

    # -- 4. post-steps ---------------------------------------------------------------------

    def _post_steps(self, settings: CompanySettings) -> None:
        for window in self._windows(ItemState.MARKED):
            for item in window:
                self._compare(item, settings)
                self._move(item, ItemState.DONE)
            self._commit()

    @staticmethod
    def _compare(item: BatchItem, settings: CompanySettings) -> None:
        """SPEC 7.2 step 8: totals and tax QuickBooks kept against ConnectWise's."""
        warnings = list(item.warnings or [])
        if item.qbo_amount is not None and item.cw_amount is not None and \
                abs(item.qbo_amount - abs(item.cw_amount)) > settings.total_tolerance:
            warnings.append(f"QuickBooks total {item.qbo_amount} differs from the ConnectWise "
                            f"total {abs(item.cw_amount)}.")
        if item.qbo_tax is not None and item.cw_tax is not None and \
                abs(item.qbo_tax - abs(item.cw_tax)) > settings.tax_difference_tolerance:
            warnings.append(f"QuickBooks tax {item.qbo_tax} differs from the ConnectWise tax "
                            f"{abs(item.cw_tax)}.")
        item.warnings = warnings


def _fix_link(problem: Problem) -> str | None:
    if problem.kind:
        from urllib.parse import quote

        return f"/mappings/{problem.kind}?q={quote(problem.cw_value or '')}"
    return None


def post_batch(session: Session, batch: Batch, cw: ConnectWiseClient, qbo: QuickBooksClient,
               progress: DbProgress, config: Config | None = None) -> tuple[RunStatus, str]:
    """Run (or resume) the batch; the job's entry point calls this."""
    return Engine(session, batch, cw, qbo, progress, config).run()


def stopped(session: Session, batch: Batch, message: str) -> None:
    """The run ended early: unsent items fail (Retry carries them), in-flight ones are
    uncertain (Retry looks them up first), and the batch shows red with the reason."""
    mine = BatchItem.batch_id == batch.id
    session.execute(sa.update(BatchItem).where(
        mine, BatchItem.state.in_([ItemState.SELECTED, ItemState.VALIDATED])).values(
        state=ItemState.FAILED, message=f"Not posted: {message}", request_token=None))
    session.execute(sa.update(BatchItem).where(mine, BatchItem.state == ItemState.POSTING)
                    .values(state=ItemState.UNCERTAIN, message=f"Outcome unknown: {message}"))
    recount(session, batch)
    batch.status = BatchStatus.FINISHED
    batch.colour = "red"
    batch.message = message[:500]
    batch.finished_at = utcnow()
    session.commit()
