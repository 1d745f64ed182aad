"""The run of one batch of any record type (SPEC 6): pre-flight, references, documents,
marking, post-steps; resumable from the items' states, whatever stopped it.

Every state change that precedes an outside write is committed before the write (a chunk
of 30 documents is one commit of `posting` intents, then one of results), so a worker
killed anywhere leaves rows that say what is known: `posting` means "QuickBooks may hold
the document" and is settled by a lookup (DocNumber and our `portal:<token>` marker) before
anything is sent again; `posted` is marked before anything else, with a lookup of its
identifier first. A run that stops for any reason first marks what it posted and looks up
what was in flight, then leaves a message on every record that is not done.

Marking runs on a pool of threads while the next chunk posts (SPEC 6.6), and the calls of
both systems are paced by limits shared through Redis. The engine knows no invoice: the
record type (`types/`) reads, checks, builds and names things.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient, escape
from portal.models import (
    Batch,
    BatchItem,
    BatchItemEvent,
    BatchStatus,
    Company,
    ItemState,
    JobRun,
    RunStatus,
)
from portal.models.types import utcnow
from portal.services import company_settings, qbo_setup, runs
from portal.services.batching import preflight
from portal.services.batching.memory import StoredMemory
from portal.services.batching.marking import Marker, MarkingPool, MarkJob, MarkResult
from portal.services.batching.types.base import (
    Built,
    CompanyFacts,
    Context,
    Record,
    RecordType,
    Unfilled,
    fill_in,
)
from portal.services.company_settings import CompanySettings
from portal.services.mapping import MappingSet, Prefs
from portal.services.runs import RunProgress

log = logging.getLogger(__name__)
MAX_UNKNOWN = 3
WINDOW = 200
ERROR_HINTS = {
    "6140": "Renumber or delete that document in QuickBooks, then retry.",
    "2050": "Shorten the DocNumber prefix on the Company tab.",
    "6240": "Turn on Append account name, or give clients that are also vendors distinct "
            "names in ConnectWise.",
    "6200": "Move the closing date in QuickBooks or change the date in ConnectWise.",
    "6210": "Move the closing date in QuickBooks or change the date in ConnectWise.",
    "6070": "Check the quantities and prices of the record in ConnectWise.",
    "610": "Reactivate the object in QuickBooks or change the mapping, then retry.",
}
FORWARD = (ItemState.VALIDATED, ItemState.POSTING, ItemState.POSTED, ItemState.MARKED,
           ItemState.DONE)


class Paused(Exception):
    """QuickBooks refused the app: the batch waits for a reconnect (SPEC 6.7, 3.6)."""


class Cancelled(Exception):
    """Someone cancelled the batch: stop before the next record (SPEC 6.9)."""


@dataclass
class Config:
    batch_size: int = 30
    lookup_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    mark_workers: int = 4
    max_pending_marks: int = 300  # marking may lag posting by this many records
    throttle_cap: float = 600.0  # seconds of 429 waiting a batch accepts (SPEC 6.7)


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


def prefs_of(settings: CompanySettings) -> Prefs:
    return Prefs(**{name: getattr(settings, name) for name in Prefs.__dataclass_fields__})


def record_of(item: BatchItem, earlier_qbo_id: str | None = None) -> Record:
    """The record a batch item stands for, as the record type reads it."""
    return Record(key=item.record_key, cw_id=item.cw_id, number=item.cw_number,
                  day=item.record_date, kind=item.cw_kind or "", party=item.party or "",
                  total=item.cw_amount if item.cw_amount is not None else Decimal(0),
                  currency=item.currency or "", unposted_id=item.cw_unposted_id,
                  generation=item.generation, earlier_qbo_id=earlier_qbo_id,
                  gl_entry_ids=tuple(item.gl_entry_ids or ()),
                  source_refs=tuple(item.source_refs or ()))


def include_for(item: BatchItem) -> str | None:
    """A new generation whose earlier document was voided or deleted may reuse its
    DocNumber (SPEC 11.3): QuickBooks is asked to allow the duplicate for it alone."""
    if item.rebatch_mode == "new" and item.earlier_state in ("voided", "deleted"):
        return "allowduplicatedocnum"
    return None


def identifier_for(rtype: RecordType, item: BatchItem, day: Any) -> str:
    """SPEC 6.4: the type's identifier, with `-r<g>` from the second generation."""
    text = rtype.identifier(record_of(item), day)
    return f"{text}-r{item.generation}" if item.generation > 1 else text


class Engine:
    """Runs one batch to its end (or to a pause), resuming from the items' states."""

    def __init__(self, session: Session, batch: Batch, rtype: RecordType,
                 cw: ConnectWiseClient, qbo: QuickBooksClient, progress: RunProgress,
                 run: JobRun, config: Config | None = None) -> None:
        self.session = session
        self.batch = batch
        # for the logs of failures: a failed flush expires `batch`, and reading an
        # expired attribute before the rollback raised again, leaving the batch running
        self.batch_id = batch.id
        self.rtype = rtype
        self.company: Company = session.get(Company, batch.company_id)
        self.cw = cw
        self.qbo = qbo
        self.progress = progress
        self.run_id = run.id
        self.token = run.claim_token or ""
        self.config = config or Config()
        self._cw_base = cw.requests_sent
        self._qbo_base = qbo.requests_sent
        self._recounted = 0.0
        self.pool = MarkingPool(Marker(cw, export_flag=rtype.export_flag,
                                       entry_field=rtype.entry_field, sleep=self.config.sleep),
                                workers=self.config.mark_workers)
        self.settings: CompanySettings | None = None
        self.ctx: Context | None = None
        self._marking: set[int] = set()  # items handed to the pool, results not applied
        self._needs: list[Any] = []  # references pre-flight found missing, not yet created
        self._throttle_lock = threading.Lock()
        self._events: list[dict[str, Any]] = []  # written with the next commit

    # -- bookkeeping -----------------------------------------------------------------------

    def _event(self, item: BatchItem | None, to: str | None = None, text: str | None = None,
               endpoint: str | None = None, status: int | None = None,
               tid: str | None = None, started: float | None = None,
               from_state: str | None = None) -> None:
        self._events.append({
            "batch_id": self.batch.id, "item_id": item.id if item else None, "at": utcnow(),
            "from_state": from_state, "to_state": to, "endpoint": endpoint,
            "http_status": status, "intuit_tid": tid, "text": (text or "")[:1000] or None,
            "duration_ms": round((time.monotonic() - started) * 1000) if started else None})

    def _move(self, item: BatchItem, state: ItemState, text: str | None = None,
              endpoint: str | None = None, started: float | None = None) -> None:
        before = item.state.value
        item.state = state
        if state in FORWARD:  # moving on: what was said about the record is settled
            item.message = item.fix_hint = None
        self._event(item, state.value, text, from_state=before, endpoint=endpoint,
                    started=started)

    def _fail(self, item: BatchItem, message: str, hint: str | None = None,
              link: str | None = None) -> None:
        self._move(item, ItemState.FAILED, message)
        item.message = message
        item.fix_hint = hint
        item.fix_link = link

    def _commit(self, recount: bool = False) -> None:
        """Commit, after checking the run is still ours and counting requests."""
        batch = self.batch
        batch.qbo_requests += self.qbo.requests_sent - self._qbo_base
        batch.cw_requests += self.cw.requests_sent - self._cw_base
        self._qbo_base, self._cw_base = self.qbo.requests_sent, self.cw.requests_sent
        if recount or time.monotonic() - self._recounted > 1.0:
            self.session.flush()
            batch.counts = count_states(self.session, batch.id)
            self._recounted = time.monotonic()
        if self.ctx is not None:
            self.ctx.memory.save(self.session)
        if self._events:  # one statement for every event since the last commit
            self.session.execute(sa.insert(BatchItemEvent), self._events)
            self._events = []
        if not runs.owns(self.session, self.run_id, self.token):
            self._rollback()
            raise runs.LostClaim(f"batch {batch.id} was taken over")
        self.session.commit()

    def _rollback(self) -> None:
        self._events = []
        self.session.rollback()

    def _quiet(self) -> None:
        """End the session's transaction (committing, as `_commit`) before a wait or a
        call out. On SQLite the run's heartbeat waits until the session is between
        transactions (runs.Heartbeat): a read left open while the engine waited for
        marking, a read-ahead, a throttle or a lookup delay kept the run from beating,
        so it looked dead while its worker lived and a second worker took it over."""
        if self.session.in_transaction():
            self._commit()

    def _wait(self, seconds: float) -> None:
        self._quiet()
        self.config.sleep(seconds)

    def _collect(self, wait_for: int) -> list[MarkResult]:
        """Marking results, once at most `wait_for` records are still being marked."""
        if self.pool.pending > wait_for:
            self._quiet()
        return self.pool.collect(wait_for=wait_for)

    def _query(self, *states: ItemState, after: int = 0, limit: int | None = None,
               payload: bool = False) -> list[BatchItem]:
        query = sa.select(BatchItem).where(
            BatchItem.batch_id == self.batch.id, BatchItem.state.in_(list(states)),
            BatchItem.id > after).order_by(BatchItem.id)
        if not payload:
            query = query.options(defer(BatchItem.payload))
        return list(self.session.scalars(query.limit(limit) if limit else query))

    def _windows(self, *states: ItemState, size: int = WINDOW,
                 payload: bool = False) -> Iterator[list[BatchItem]]:
        """Items in id order, a window at a time, so memory does not grow with the batch."""
        last = 0
        while True:
            window = self._query(*states, after=last, limit=size, payload=payload)
            if not window:
                return
            last = window[-1].id
            yield window

    def _count(self, *states: ItemState) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == self.batch.id, BatchItem.state.in_(list(states)))) or 0

    def _cancelled(self) -> bool:
        return bool(self.session.scalar(sa.select(Batch.cancel_requested_by).where(
            Batch.id == self.batch.id)))

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> tuple[RunStatus, str]:
        batch = self.batch
        batch.status = BatchStatus.RUNNING
        batch.started_at = batch.started_at or utcnow()
        if batch.settings_snapshot is None:
            settings = company_settings.get_settings(self.session, self.company)
            batch.settings_snapshot = company_settings.as_json(settings)
            batch.settings_version_id = company_settings.current_version(
                self.session, self.company).id
        self._commit(recount=True)
        self.settings = company_settings.from_json(batch.settings_snapshot)
        try:
            self._recover()
            if self._count(ItemState.SELECTED, ItemState.VALIDATED):
                if not batch.preflight_passed and not self._preflight():
                    return self._finish()
                self._post_and_mark()
            self._drain_marks()
            self._post_steps()
            return self._finish()
        except runs.LostClaim:
            raise
        except Paused as exc:
            return self._pause(str(exc))
        except Cancelled:
            self._salvage("cancelled", qbo_usable=True)
            return self._finish()
        except errors.IntegrationError as exc:
            reason = f"Stopped: {exc.message}" + (f" {exc.hint}" if exc.hint else "")
            log.warning("batch=%s stopped: %s", batch.id, reason)
            return self._stop(reason)
        except Exception as exc:  # noqa: BLE001 - the records are settled, the trace logged
            log.exception("batch=%s stopped by an unexpected error", self.batch_id)
            return self._stop(f"Stopped by an unexpected error ({exc.__class__.__name__}); "
                              "the details are in the worker's log.")
        finally:
            self.pool.close()

    def _context(self) -> Context:
        if self.ctx is None:
            settings = self.settings
            assert settings is not None
            self.ctx = Context(CompanyFacts.of(self.company), settings,
                               MappingSet.load(self.session, self.company, prefs_of(settings)),
                               dict(self.batch.options or {}),
                               StoredMemory(self.session, self.company.id))
        return self.ctx

    # -- 0. what a crash or a retry left -----------------------------------------------------

    def _recover(self) -> None:
        """Settle documents in flight (lookup before any re-post) and start marking what
        was posted, before anything new is checked or posted."""
        in_flight = self._count(ItemState.POSTING, ItemState.UNCERTAIN)
        if in_flight:
            self.progress.phase("settling", f"Looking up {in_flight} document(s) whose "
                                            "outcome is unknown")
            self.progress.step("settling", in_flight)
            for window in self._windows(ItemState.POSTING, ItemState.UNCERTAIN, payload=True):
                self._settle(window)
                self.progress.tick("settling", len(window))
        self._dispatch_posted()

    def _dispatch_posted(self) -> None:
        for window in self._windows(ItemState.POSTED):
            self._dispatch(window)

    # -- 1. pre-flight and references ------------------------------------------------------

    def _send_read(self, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One /batch of queries, waiting out throttling; a refused token pauses."""
        while True:
            try:
                return self.qbo.batch(operations)
            except errors.RateLimited as exc:
                if not self._throttled(float(exc.retry_after or 60), []):
                    raise errors.Transient("QuickBooks kept throttling the batch's reads.",
                                           hint="Retry the batch later.") from None
            except (errors.AuthError, errors.Forbidden) as exc:
                raise Paused(f"Reconnect needed: {exc.message}") from None

    def _throttled(self, wait: float, items: list[BatchItem]) -> bool:
        """Wait out a 429 unless the batch's budget is spent (then False). Safe from the
        threads that create references while the main thread waits for them."""
        with self._throttle_lock:
            if self.batch.throttled_seconds + wait > self.config.throttle_cap:
                return False
            self.batch.throttled_seconds += wait
        self.progress.message(f"QuickBooks is throttling; waiting {wait:.0f} s",
                              level="warning")
        self._wait(wait)
        return True

    def _preflight(self) -> bool:
        """Pre-flight every selected record; any error fails the batch before any write.

        Records that need no new reference are built as their window is checked; the rest
        are built once the references exist. Windows keep memory flat. A batch whose
        options say `skip_problems` (AutoSync with "Skip records") leaves the records with
        errors out instead, and posts the others.
        """
        skip = bool((self.batch.options or {}).get("skip_problems"))
        settings = self.settings
        assert settings is not None
        total = self._count(ItemState.SELECTED, ItemState.VALIDATED)
        self.progress.start(total, f"Checking {total} record(s)", phase="checking")
        self.progress.step("checking", total)
        preflight.refresh_stale(self.session, self.company, self.qbo, self.cw,
                                settings.reference_cache_max_age_minutes, self.progress)
        self.ctx = None
        ctx = self._context()
        check = preflight.Preflight(self.rtype, ctx)
        self._commit()  # nothing held open across QuickBooks calls that may refresh tokens
        failing = False
        with ThreadPoolExecutor(1, thread_name_prefix="cw-window") as reader:
            windows = self._windows(ItemState.SELECTED, ItemState.VALIDATED)
            window = next(windows, None)
            ahead = self._read_ahead(reader, window)
            company = check.start(self._send_read, self._records(
                ItemState.SELECTED, ItemState.VALIDATED), sleep=self._wait)
            self.session.commit()  # the records were read; nothing is held from here on
            if company is not None:
                qbo_setup.apply_settings(self.company, *company)
                self.company.info_refreshed_at = utcnow()
                ctx.company = CompanyFacts.of(self.company)
            while window:
                if self._cancelled():
                    raise Cancelled
                self._quiet()
                data = ahead.result()  # type: ignore[union-attr]
                following = next(windows, None)
                ahead = self._read_ahead(reader, following)
                for item in window:
                    item.request_token = item.request_token or uuid.uuid4().hex
                checked = check.check(data, [record_of(i) for i in window],
                                      {i.record_key: i.request_token for i in window})
                for item, done in zip(window, checked):
                    if done.gl_entry_ids is not None:
                        item.gl_entry_ids = done.gl_entry_ids
                    failing = failing or any(p.severity == "error" for p in done.problems)
                    if done.built is not None and (skip or not failing):
                        self._keep(item, done.built, ready=not done.needs)
                self.progress.advance(len(window))
                self.progress.tick("checking", len(window))
                self._commit()
                window = following
        report = check.finish(self._send_read, sleep=self._wait)
        if report.blocking and not skip:
            self._block(report)
            return False
        if report.blocking:
            self._leave_out(report)
        for key, problems in report.problems.items():  # checks that could not finish
            self._fail_key(key, problems)
        self._needs = list(report.needs.values())  # created after the ready records post
        self.batch.preflight_passed = True
        self._commit(recount=True)
        return True

    def _read_ahead(self, reader: ThreadPoolExecutor, window: list[BatchItem] | None
                    ) -> Future[Any] | None:
        """Read a window from ConnectWise on a thread while the previous one is checked."""
        if not window:
            return None
        return reader.submit(self.rtype.read, self.cw, [record_of(i) for i in window],
                             self._context())

    def _records(self, *states: ItemState) -> Iterator[Record]:
        for window in self._windows(*states):
            records = [record_of(i, i.earlier_qbo_id or i.qbo_id) for i in window]
            self._quiet()  # the caller asks QuickBooks between windows
            yield from records

    def _fail_key(self, key: str, problems: list[Any]) -> None:
        item = self.session.scalar(sa.select(BatchItem).where(
            BatchItem.batch_id == self.batch.id, BatchItem.record_key == key,
            BatchItem.state.in_([ItemState.SELECTED, ItemState.VALIDATED])))
        if item is not None and problems:
            item.request_token = None
            self._fail(item, problems[0].message, problems[0].hint)
            self._commit()

    def _keep(self, item: BatchItem, built: Built, *, ready: bool) -> None:
        """Store a record's document; `ready` (it needs no new reference) makes it
        `validated`, otherwise it waits, with stand-ins, for `_fill_all`."""
        flipped = built.cw_signed is not None and built.cw_signed == -built.cw_total != 0
        item.cw_amount = built.cw_signed if built.cw_signed is not None else built.cw_total
        item.cw_tax = -built.cw_tax if flipped and built.cw_tax is not None else built.cw_tax
        item.warnings = list(built.warnings)
        item.qbo_doc_number = built.doc_number
        item.qbo_entity = built.entity
        item.payload = built.payload
        item.payload_hash = None
        if built.skip:  # the type leaves this record unposted on purpose
            self._skip(item, "deliberate", built.skip)
            return
        if item.rebatch_mode == "adopt" and built.entity:  # Adopt unchanged: mark only
            item.payload = None
            item.qbo_id = item.earlier_qbo_id
        if item.cw_batch_identifier is None:
            today = datetime.now(ZoneInfo(self._context().settings.time_zone or "UTC")).date()
            item.cw_batch_identifier = identifier_for(self.rtype, item, today)
        if ready:
            self._validated(item, built.note)

    def _validated(self, item: BatchItem, note: str | None = None) -> None:
        item.payload_hash = payload_hash(item.payload) if item.payload else None
        self._move(item, ItemState.VALIDATED, note)

    def _fill_all(self) -> None:
        """Records that waited for new references: their stand-ins become the new ids (no
        second read of ConnectWise); one whose document was not kept is built again."""
        waiting = self._count(ItemState.SELECTED)
        if not waiting:
            return
        self.progress.start(waiting, f"Completing {waiting} document(s)", phase="building")
        self.progress.step("building", waiting)
        mapping = self._context().mapping
        for window in self._windows(ItemState.SELECTED, payload=True):
            again = []
            for item in window:
                if item.payload is None and item.qbo_entity is None:
                    again.append(item)
                    continue
                try:
                    item.payload = fill_in(item.payload, mapping)
                except Unfilled:
                    again.append(item)
                    continue
                self._validated(item)
            if again:
                self._build_window(again)
            self.progress.tick("building", len(window))
            self._commit()

    def _build_window(self, window: list[BatchItem]) -> None:
        """Check and build records from ConnectWise again (a resumed run whose documents
        were not kept), creating what they need; problems fail them alone."""
        ctx = self._context()
        self._quiet()
        data = self.rtype.read(self.cw, [record_of(i) for i in window], ctx)
        check = preflight.Preflight(self.rtype, ctx)
        for item in window:
            item.request_token = item.request_token or uuid.uuid4().hex
        checked = check.check(data, [record_of(i) for i in window],
                              {i.record_key: i.request_token for i in window})
        if check.report.needs:
            self._create_references(list(check.report.needs.values()))
        for item, done in zip(window, checked):
            if done.built is None:
                first = done.problems[0] if done.problems else None
                item.request_token = None
                self._fail(item, first.message if first else "The record cannot be built.",
                           first.hint if first else None)
                continue
            self._keep(item, done.built, ready=False)
            try:
                item.payload = fill_in(item.payload, ctx.mapping)
            except Unfilled as exc:
                item.request_token = None
                self._fail(item, exc.message, exc.hint)
                continue
            self._validated(item, done.built.note)
        self._commit()

    def _block(self, report: preflight.Report) -> None:
        """Nothing is written: failing records get their problems, the others wait (grey,
        carried by Retry)."""
        for window in self._windows(ItemState.SELECTED, ItemState.VALIDATED):
            for item in window:
                found = report.problems.get(item.record_key) or []
                if found:
                    holder = report.conflicts.get(item.record_key)
                    item.conflict_entity = holder.entity if holder else None
                    item.conflict_qbo_id = holder.qbo_id if holder else None
                    first = found[0]
                    extra = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
                    item.request_token = None
                    self._fail(item, first.message + extra, first.hint,
                               preflight.fix_link(first))
                    item.warnings = [p.message for p in found[1:]]
                else:
                    self._skip(item, "blocked", "Not posted: pre-flight found problems in "
                                                "other records of this batch; Retry carries "
                                                "it once they are fixed.")
            self._commit()
        self.batch.preflight = report.groups()
        self._commit(recount=True)

    def _leave_out(self, report: preflight.Report) -> None:
        """`skip_problems`: each record with an error is skipped with its problem and fix
        (reason "problem"); the rest go on. Nothing of a skipped record was written."""
        for key, found in report.problems.items():
            errors_ = [p for p in found if p.severity == "error"]
            if not errors_:
                continue
            item = self.session.scalar(sa.select(BatchItem).where(
                BatchItem.batch_id == self.batch.id, BatchItem.record_key == key,
                BatchItem.state.in_([ItemState.SELECTED, ItemState.VALIDATED])))
            if item is None:
                continue
            first = errors_[0]
            extra = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
            item.request_token = None
            item.payload = None
            item.payload_hash = None
            self._skip(item, "problem", first.message + extra)
            item.fix_hint = first.hint
            item.warnings = [p.message for p in found if p is not first]
        self._commit(recount=True)

    def _skip(self, item: BatchItem, reason: str, message: str) -> None:
        self._move(item, ItemState.SKIPPED, message)
        item.skip_reason = reason
        item.message = message

    def _create_references(self, wanted: list[Any]) -> None:
        """Customers, items, categories, terms, classes and locations the documents need,
        first, in rounds of /batch requests (parents first)."""
        from portal.services import creation

        self.progress.phase("creating", f"Creating {len(wanted)} reference(s) in QuickBooks")
        self.progress.step("creating", len(wanted))
        ctx = self._context()

        def send(operations: list[dict[str, Any]], rid: str) -> list[dict[str, Any]]:
            """A round of creates; its requestid is derived from the names, so a round
            whose answer was lost is sent again and QuickBooks replays its answer."""
            for attempt in range(preflight.QUERY_TRIES):
                try:
                    return self.qbo.batch(operations, request_id=rid)
                except errors.RateLimited as exc:
                    if not self._throttled(float(exc.retry_after or 60), []):
                        raise
                except (errors.AuthError, errors.Forbidden) as exc:
                    raise Paused(f"Reconnect needed: {exc.message}") from None
                except errors.Transient:
                    if attempt + 1 == preflight.QUERY_TRIES:
                        raise
                    self._wait(min(8.0, 0.5 * 2 ** attempt))
            raise errors.Transient("QuickBooks kept throttling the creation of references.")

        try:
            creation.ensure_all(
                self.session, self.company, self.qbo,
                lambda: MappingSet.load(self.session, self.company, ctx.mapping.prefs),
                wanted, send)
        except creation.CreateError as exc:
            raise errors.Invalid(str(exc), hint="Fix the name or the mapping, then retry "
                                                "the batch.") from None
        ctx.mapping = MappingSet.load(self.session, self.company, ctx.mapping.prefs)
        self.progress.tick("creating", len(wanted))
        self._commit()

    # -- 2. QuickBooks documents, marked as they post --------------------------------------

    def _post_and_mark(self) -> None:
        """Post what is ready while marking follows on the pool; then create the references
        the other records need, complete their documents and post them. A record with no
        new reference has nothing to wait for (its own references come first all the same,
        SPEC 6.5), so marking, the slowest part, starts seconds earlier."""
        total = self._count(ItemState.SELECTED, ItemState.VALIDATED)
        self.progress.phase("posting", f"Posting {total} document(s) to QuickBooks")
        self.progress.step("posting", total)
        self._post_ready()
        if self._needs:
            self._create_references(self._needs)
            self._needs = []
        if self._count(ItemState.SELECTED):
            self._fill_all()  # also what a stopped worker had checked, not completed
            self.progress.phase("posting", "Posting the documents that needed references")
            self._post_ready()

    def _post_ready(self) -> None:
        size = max(1, min(self.config.batch_size, 30))
        for ready in self._windows(ItemState.VALIDATED, size=size * -(-WINDOW // size),
                                   payload=True):  # whole chunks: no short /batch per window
            for start in range(0, len(ready), size):
                if self._cancelled():
                    raise Cancelled
                chunk = ready[start:start + size]
                self._post_chunk(chunk)
                self.progress.tick("posting", len(chunk))
                self._dispatch([i for i in chunk if i.state is ItemState.POSTED])
                self._apply_marks(self._collect(
                    wait_for=self.config.max_pending_marks))

    def _post_chunk(self, chunk: list[BatchItem]) -> None:
        """One /batch of up to 30 documents; a record with nothing to post (mark only) is
        `posted` at once."""
        documents = []
        for item in chunk:
            if item.payload is None:
                self._move(item, ItemState.POSTED, f"adopted {item.qbo_entity} {item.qbo_id}"
                           if item.qbo_id else "nothing to post: marked without a document")
                continue
            documents.append(item)
        documents = self._prepare_updates(documents)
        if not documents:
            self._commit()
            return
        groups: dict[str | None, list[BatchItem]] = {}
        for item in documents:
            groups.setdefault(include_for(item), []).append(item)
        for include, group in groups.items():
            self._post_documents(group, include)

    def _prepare_updates(self, documents: list[BatchItem]) -> list[BatchItem]:
        """Update existing (SPEC 11.3): the earlier document, read now, gets this payload
        with its Id and SyncToken (a full update), unless payments are linked to it."""
        ready = []
        for item in documents:
            if item.rebatch_mode != "update" or "Id" in (item.payload or {}):
                ready.append(item)
                continue
            self._quiet()
            try:
                doc = self.qbo.read(item.qbo_entity or "", item.earlier_qbo_id or "")
            except errors.NotFound:  # deleted meanwhile: post a new one
                item.rebatch_mode, item.earlier_state = "new", "deleted"
                ready.append(item)
                continue
            paid = any(t.get("TxnType") == "Payment" for t in doc.get("LinkedTxn") or []) or (
                "Balance" in doc and Decimal(str(doc.get("Balance") or 0)) !=
                Decimal(str(doc.get("TotalAmt") or 0)))
            if paid:
                item.request_token = None
                self._fail(item, f"QuickBooks {item.qbo_entity} {item.earlier_qbo_id} has "
                                 "payments linked, so it cannot be updated.",
                           "Unlink the payments in QuickBooks and retry, or select the "
                           "record again with Adopt unchanged.")
                continue
            item.payload = {**(item.payload or {}), "Id": str(doc.get("Id")),
                            "SyncToken": str(doc.get("SyncToken") or "0"), "sparse": False}
            item.payload_hash = payload_hash(item.payload)
            ready.append(item)
        return ready

    def _post_documents(self, documents: list[BatchItem], include: str | None) -> None:
        """One /batch of documents (creates, or full updates of an earlier generation's)."""
        request_id = str(uuid.uuid4())
        for item in documents:
            item.bid = f"i{base36(item.id)}"[:10]
            item.qbo_batch_request_id = request_id
            item.attempts += 1
            self._move(item, ItemState.POSTING)
        self._commit()  # the intent is durable before QuickBooks hears of it
        operations = [{"bId": i.bid, "operation": "update" if "Id" in (i.payload or {})
                       else "create", i.qbo_entity: i.payload} for i in documents]
        started = time.monotonic()
        try:
            answers = self._send(lambda: self.qbo.batch(operations, request_id=request_id,
                                                        include=include), documents)
        except errors.Invalid as exc:  # the whole request was refused: nothing was written
            for item in documents:
                self._rejected(item, {"Error": [{"code": exc.code, "Detail": exc.message}]})
            self._commit()
            return
        if answers is None:
            self._commit()
            self._settle(documents)
            return
        if answers == []:
            return  # throttled past the cap: the records failed as transient
        by_bid = {a.get("bId"): a for a in answers}
        unknown = []
        for item in documents:
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
        """Call QuickBooks; None means the outcome is unknown (settle by lookup), [] that
        throttling outlasted the batch's budget (the records failed as transient)."""
        while True:
            try:
                return call()
            except errors.RateLimited as exc:
                if not self._throttled(float(exc.retry_after or 60), items):
                    for item in items:
                        if item.state is ItemState.POSTING:
                            item.request_token = None
                            self._fail(item, "QuickBooks kept throttling; retry the failed "
                                             "items later.",
                                       "Usually resolves on its own; check that no other tool "
                                       "uses the same QuickBooks company heavily.")
                    self._commit()
                    return []
            except (errors.AuthError, errors.Forbidden) as exc:
                for item in items:  # refused before it was processed: nothing was written
                    if item.state is ItemState.POSTING:
                        self._move(item, ItemState.VALIDATED, "QuickBooks refused the "
                                                              "connection; not sent")
                self._commit()
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
        self._move(item, ItemState.POSTED, f"{item.qbo_entity} {item.qbo_id}",
                   endpoint="POST /batch" if started else None, started=started)

    def _rejected(self, item: BatchItem, fault: dict[str, Any]) -> None:
        error = (fault.get("Error") or [{}])[0]
        code = str(error.get("code") or "").lstrip("0")
        detail = str(error.get("Detail") or error.get("Message") or "")
        hint = ERROR_HINTS.get(code, "Fix the record or the mapping named in the message, "
                                     "then retry.")
        item.request_token = None  # a failed record gets a fresh token when validated again
        self._fail(item, f"QuickBooks refused {item.qbo_entity} {item.qbo_doc_number}: "
                         f"{detail} (code {code})", hint)

    def _settle(self, items: list[BatchItem], *, repost: bool = True) -> None:
        """Outcome unknown: look the documents up, re-post the missing ones (same payload,
        same requestid), at most three unknown outcomes before `uncertain` (SPEC 6.5)."""
        pending = list(items)
        while pending:
            self._wait(self.config.lookup_delay)
            found = self._lookup(pending)
            retry: list[BatchItem] = []
            for item in pending:
                hits = found.get(item.id, [])
                ours = [o for o in hits if f"portal:{item.request_token}" in str(
                    o.get("PrivateNote") or "")]
                if ours:
                    self._posted(item, ours[0])
                    continue
                others = [o for o in hits if item.qbo_doc_number  # a date's others are not
                          and str(o.get("Id")) not in (item.qbo_id or "",  # in its way, nor
                                                       item.earlier_qbo_id or "")]  # g-1's
                if others:
                    item.conflict_entity = item.qbo_entity
                    item.conflict_qbo_id = str(others[0].get("Id"))
                    item.request_token = None
                    self._fail(item, f"DocNumber {item.qbo_doc_number} already belongs to "
                                     f"QuickBooks {item.qbo_entity} Id {others[0].get('Id')}, "
                                     "which portal did not create.",
                               "Renumber that document in QuickBooks and retry, or Adopt it "
                               "when it is this record.")
                    continue
                item.unknown_outcomes += 1
                if item.unknown_outcomes >= MAX_UNKNOWN or not repost:
                    self._uncertain(item, "QuickBooks did not confirm the document after "
                                          f"{item.unknown_outcomes} tries; Retry looks it up "
                                          "first." if repost else
                                    "QuickBooks may hold this document: its answer was lost "
                                    "and the batch stopped before it could be posted again; "
                                    "Retry looks it up first.")
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
                        i.qbo_entity, i.payload, request_id=i.request_token,
                        include=include_for(i)), [item])
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
        self._dispatch([i for i in items if i.state is ItemState.POSTED])

    def _uncertain(self, item: BatchItem, message: str) -> None:
        if item.state is not ItemState.UNCERTAIN:
            self._move(item, ItemState.UNCERTAIN, message)
        item.message = message
        item.fix_hint = "Retry this batch's failed items later; the retry looks the " \
                        "document up before it posts anything."

    def _lookup(self, items: list[BatchItem]) -> dict[int, list[dict[str, Any]]]:
        """The documents that may be these items' (SPEC 6.5), by item id, in /batch queries:
        with a DocNumber, the documents of its entity holding it (for a Bill or VendorCredit,
        only the same vendor's); without one, the entity's documents of its TxnDate, which
        the caller matches by our marker (PrivateNote is not queryable)."""
        self._commit()  # no snapshot held across calls that may refresh the token
        numbered = [i for i in items if i.qbo_doc_number]
        plans = preflight.doc_number_queries(
            preflight.Planned(i.qbo_entity or "", i.qbo_doc_number or "") for i in numbered)
        dated = sorted({(i.qbo_entity or "", str((i.payload or {}).get("TxnDate") or ""))
                        for i in items if not i.qbo_doc_number})
        queries = [preflight.doc_number_query(e, n) for e, n in plans] + [
            f"SELECT * FROM {entity} WHERE TxnDate = {escape(day)} MAXRESULTS 1000"
            for entity, day in dated]
        answers = preflight.run_queries(self._send_read, queries, sleep=self._wait)
        if any(answer is None for answer in answers):
            raise errors.Transient("QuickBooks did not answer the lookup of documents whose "
                                   "outcome is unknown.")
        holders: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (entity, _numbers), answer in zip(plans, answers):
            for obj in answer.get(entity) or []:  # type: ignore[union-attr]
                holders.setdefault((entity, str(obj.get("DocNumber"))), []).append(obj)
        on_day: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (entity, day), answer in zip(dated, answers[len(plans):]):
            on_day[(entity, day)] = list(answer.get(entity) or [])  # type: ignore[union-attr]
        found: dict[int, list[dict[str, Any]]] = {}
        for item in items:
            entity = item.qbo_entity or ""
            if item.qbo_doc_number:
                hits = holders.get((entity, item.qbo_doc_number), [])
                vendor = ((item.payload or {}).get("VendorRef") or {}).get("value")
                if vendor and entity in ("Bill", "VendorCredit"):
                    hits = [o for o in hits if (o.get("VendorRef") or {}).get("value") == vendor]
            else:
                hits = on_day.get((entity, str((item.payload or {}).get("TxnDate") or "")), [])
            found[item.id] = hits
        return found

    # -- 3. ConnectWise marking -------------------------------------------------------------

    def _dispatch(self, items: list[BatchItem]) -> None:
        """Hand posted records to the marking pool, their intent committed first."""
        if not items:
            return
        day = datetime.now(ZoneInfo((self.settings.time_zone if self.settings else None)
                                    or "UTC")).date()
        jobs = []
        for item in items:
            if item.id in self._marking:
                continue
            self._marking.add(item.id)
            if item.cw_batch_identifier is None:
                item.cw_batch_identifier = identifier_for(self.rtype, item, day)
            base = identifier_for(self.rtype, item, _day_of(item.cw_batch_identifier, day))
            field_of = getattr(self.rtype, "entry_field_of", None)
            jobs.append(MarkJob(item.id, base, item.cw_batch_identifier,
                                tuple(item.gl_entry_ids or ()),
                                self.rtype.entry_id(record_of(item)),
                                look_first=item.mark_attempts > 0,
                                entry_field=field_of(record_of(item)) if field_of else None,
                                match_ids=getattr(self.rtype, "marks_by_entry_ids", False)))
            item.mark_attempts += 1
        self._commit()  # after a crash the next run looks the identifier up first
        self.progress.step("marking", len(jobs))
        self.pool.submit(jobs)

    def _apply_marks(self, results: list[MarkResult]) -> None:
        if not results:
            return
        by_id = {r.item_id: r for r in results}
        self._marking -= set(by_id)
        items = self.session.scalars(sa.select(BatchItem).options(defer(BatchItem.payload))
                                     .where(BatchItem.id.in_(list(by_id))))
        for item in items:
            result = by_id[item.id]
            for text in result.events:
                self._event(item, text=text)
            if item.state is not ItemState.POSTED:
                continue
            if result.marked:
                item.cw_batch_identifier = result.identifier
                item.cw_batch_id = result.batch_id
                self._move(item, ItemState.MARKED, result.identifier)
            else:
                item.message = result.message
                item.fix_hint = result.hint
                self._event(item, text=result.message, status=result.status)
        self.progress.tick("marking", len(by_id))
        self._commit()

    def _drain_marks(self) -> None:
        if self.pool.pending:
            self.progress.phase("marking", "Marking the last records in ConnectWise")
        self._apply_marks(self._collect(wait_for=0))

    # -- 4. post-steps ----------------------------------------------------------------------

    def _post_steps(self) -> None:
        for window in self._windows(ItemState.MARKED):
            for item in window:
                self._compare(item)
                self._move(item, ItemState.DONE)
            self._commit()

    def _compare(self, item: BatchItem) -> None:
        """SPEC 7.2 step 8: totals and tax QuickBooks kept against ConnectWise's."""
        settings = self.settings
        assert settings is not None
        warnings = list(item.warnings or [])
        if item.qbo_amount is not None and item.cw_amount is not None and \
                item.qbo_id is not None and \
                abs(item.qbo_amount - abs(item.cw_amount)) > settings.total_tolerance:
            warnings.append(f"QuickBooks total {item.qbo_amount} differs from the ConnectWise "
                            f"total {abs(item.cw_amount)}.")
        if item.qbo_tax is not None and item.cw_tax is not None and \
                abs(item.qbo_tax - abs(item.cw_tax)) > settings.tax_difference_tolerance:
            warnings.append(f"QuickBooks tax {item.qbo_tax} differs from the ConnectWise tax "
                            f"{abs(item.cw_tax)}.")
        item.warnings = warnings

    # -- the end ------------------------------------------------------------------------------

    def _salvage(self, reason: str, *, qbo_usable: bool) -> None:
        """Whatever stopped the run: look up what was in flight, mark what was posted, and
        finish what was marked, each step on its own so one failure does not stop the next."""
        self._rollback()
        self.progress.phase("stopping", f"Settling the records before stopping ({reason})")
        if qbo_usable:
            try:
                for window in self._windows(ItemState.POSTING, payload=True):
                    self._settle(window, repost=False)
            except runs.LostClaim:
                raise
            except Exception:  # noqa: BLE001 - the records keep their state and get a message
                log.warning("batch=%s lookup while stopping failed", self.batch_id,
                            exc_info=True)
                self._rollback()
        try:
            self._dispatch_posted()
            self._drain_marks()
        except runs.LostClaim:
            raise
        except Exception:  # noqa: BLE001
            log.warning("batch=%s marking while stopping failed", self.batch_id,
                        exc_info=True)
            self._rollback()
        try:
            self._post_steps()
        except runs.LostClaim:
            raise
        except Exception:  # noqa: BLE001
            log.warning("batch=%s post-steps while stopping failed", self.batch_id,
                        exc_info=True)
            self._rollback()

    def _explain(self, reason: str, *, keep: bool) -> None:
        """A message on every record that is not done. `keep` (a pause) leaves unsent
        records where they are for Resume; otherwise they fail, for Retry."""
        mine = BatchItem.batch_id == self.batch.id
        if keep:
            self.session.execute(sa.update(BatchItem).where(
                mine, BatchItem.state.in_([ItemState.SELECTED, ItemState.VALIDATED]))
                .values(message=f"Waiting: {reason} Resume continues after the reconnect."))
        else:
            self.session.execute(sa.update(BatchItem).where(
                mine, BatchItem.state.in_([ItemState.SELECTED, ItemState.VALIDATED])).values(
                state=ItemState.FAILED, message=f"Not posted: {reason}", request_token=None,
                fix_hint="Retry the batch's failed items once the cause is fixed."))
        self.session.execute(sa.update(BatchItem).where(
            mine, BatchItem.state == ItemState.POSTING).values(
            state=ItemState.POSTING if keep else ItemState.UNCERTAIN,
            message=f"Outcome unknown: {reason} The next run looks it up before posting.",
            fix_hint="Retry (or Resume) looks the document up before it posts anything."))
        self.session.execute(sa.update(BatchItem).where(
            mine, BatchItem.state == ItemState.POSTED, BatchItem.message.is_(None)).values(
            message=f"Posted to QuickBooks but not marked in ConnectWise: {reason}",
            fix_hint="Retry the batch: it marks the record without posting again."))
        self.session.execute(sa.update(BatchItem).where(
            mine, BatchItem.state == ItemState.UNCERTAIN, BatchItem.message.is_(None)).values(
            message=f"Outcome unknown: {reason}",
            fix_hint="Retry looks the document up before it posts anything."))

    def _stop(self, reason: str) -> tuple[RunStatus, str]:
        self._salvage(reason, qbo_usable=True)
        self._explain(reason, keep=False)
        self._commit(recount=True)
        return self._finish(stopped=reason)

    def _pause(self, reason: str) -> tuple[RunStatus, str]:
        self._salvage(reason, qbo_usable=False)
        self._explain(reason, keep=True)
        batch = self.batch
        batch.status = BatchStatus.PAUSED
        batch.message = reason[:500]
        self._commit(recount=True)
        return RunStatus.FAILED, reason

    def _finish(self, stopped: str | None = None) -> tuple[RunStatus, str]:
        batch = self.batch
        if self._cancelled():
            who = self.session.scalar(sa.select(Batch.cancel_requested_by).where(
                Batch.id == batch.id))
            for window in self._windows(ItemState.SELECTED, ItemState.VALIDATED):
                for item in window:
                    self._skip(item, "cancelled", f"cancelled by {who}")
                self._commit()
            batch.cancel_requested_by = who
        self.session.flush()
        batch.counts = count_states(self.session, batch.id)
        batch.status = BatchStatus.CANCELLED if batch.cancel_requested_by else \
            BatchStatus.FINISHED
        batch.finished_at = utcnow()
        batch.colour = colour_of(self.session, batch)
        batch.message = summary(batch, self.session, stopped)[:500]
        self.progress.phase("done")
        self._commit()
        return (RunStatus.FAILED if batch.colour == "red" else RunStatus.SUCCEEDED), \
            batch.message


def _day_of(identifier: str, fallback: Any) -> Any:
    """The date an identifier was made on (it is fixed from validation on, SPEC 6.4)."""
    from datetime import date

    try:
        return date.fromisoformat(identifier[:10])
    except ValueError:
        return fallback


def count_states(session: Session, batch_id: int) -> dict[str, int]:
    rows = session.execute(sa.select(BatchItem.state, sa.func.count()).where(
        BatchItem.batch_id == batch_id).group_by(BatchItem.state))
    return {state.value: count for state, count in rows}


def warned_count(session: Session, batch_id: int) -> int:
    from portal.models.batch import colour_sql

    return session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
        BatchItem.batch_id == batch_id, colour_sql() == "yellow")) or 0


RED_STATES = ("failed", "uncertain", "posting", "validated", "selected", "marked",
              "unbatching")  # an unbatch stopped part way needs its retry


def colour_of(session: Session, batch: Batch) -> str:
    """SPEC 6.8 for a finished batch, from its items (retried ones moved elsewhere)."""
    counts = batch.counts or {}
    if batch.status is BatchStatus.CANCELLED and not any(
            counts.get(s) for s in ("failed", "uncertain", "posted")):
        return "grey"
    unmarked = session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
        BatchItem.batch_id == batch.id, BatchItem.state == ItemState.POSTED)) or 0
    blocked = bool(batch.preflight) and bool(counts.get("failed") or counts.get("skipped"))
    if blocked or unmarked or any(counts.get(s) for s in RED_STATES):
        return "red"
    live = sum(v for k, v in counts.items() if k not in ("retried", "unbatched"))  # moved on
    if not live:
        return "grey"  # every record moved to a retry
    if counts.get("skipped") and session.scalar(sa.select(sa.func.count()).select_from(
            BatchItem).where(BatchItem.batch_id == batch.id,
                             BatchItem.skip_reason == "problem")):
        return "yellow" if counts.get("done") else "red"  # records left out with problems
    return "yellow" if warned_count(session, batch.id) else "green"


def summary(batch: Batch, session: Session, stopped: str | None = None) -> str:
    counts = batch.counts or {}
    if batch.preflight and counts.get("failed"):
        return (f"Pre-flight found {len(batch.preflight)} problem(s); nothing was written. "
                "Fix them and retry.")
    done = counts.get("done", 0)
    failed = counts.get("failed", 0) + counts.get("uncertain", 0)
    unmarked = counts.get("posted", 0)
    message = f"{stopped} · " if stopped else ""
    message += f"{done} posted and marked"
    if failed:
        message += f", {failed} failed"
    if unmarked:
        message += f", {unmarked} posted but not marked in ConnectWise"
    if counts.get("skipped"):
        message += f", {counts['skipped']} skipped"
    if counts.get("retried"):
        message += f", {counts['retried']} moved to a retry"
    if counts.get("unbatched"):
        message += f", {counts['unbatched']} unbatched"
    warned = warned_count(session, batch.id)
    if warned:
        message += f", {warned} with warnings"
    return message


def post_batch(session: Session, batch: Batch, rtype: RecordType, cw: ConnectWiseClient,
               qbo: QuickBooksClient, progress: RunProgress, run: JobRun,
               config: Config | None = None) -> tuple[RunStatus, str]:
    """Run (or resume) the batch; the job's entry point calls this."""
    return Engine(session, batch, rtype, cw, qbo, progress, run, config).run()


def records_of(items: Sequence[BatchItem]) -> list[Record]:
    return [record_of(i) for i in items]
