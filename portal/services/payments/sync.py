"""Payment sync runs (SPEC 10): start one, find the affected invoices, sync each, move the
cursor.

A payment run is a batch of type `payment` whose JobRun is of kind `payment_sync`: the
shared run base gives it the company lock, the claim, the heartbeat and takeover by the
scheduler tick. Its items are `payment_item` rows, created once the changes are found and
committed, so a run taken over resumes with the invoices still pending. The cursor (QuickBooks'
server time at the start of the run) moves when the run finishes, even with failures, and
never backwards; failed and unfinished invoices go into the retry set of the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient, quote
from portal.integrations.quickbooks import QuickBooksClient
from portal.models import (
    Batch,
    BatchItem,
    BatchStatus,
    BatchType,
    Company,
    JobRun,
    PaymentItem,
    PaymentSeen,
    PaymentStatus,
    PaymentSyncState,
    RunKind,
    RunStatus,
    User,
)
from portal.models.batch import CLOSED_STATES
from portal.models.types import utcnow
from portal.services import audit, company_settings, runs
from portal.services.batches import links as deep_links
from portal.services.payments import allocation, apply, qbo_reads
from portal.services.runs import RunProgress

log = logging.getLogger(__name__)
CHUNK = 100
FIRST_RUN_DAYS = 7
BACKDATED_WARNING = ("Every invoice with payment activity in this range is rebuilt in "
                     "ConnectWise; this may take a while.")


class SyncRefused(Exception):
    """The run cannot start (company busy, not connected, ConnectWise not set up)."""

    def __init__(self, message: str, holder: Batch | None = None) -> None:
        super().__init__(message)
        self.holder = holder


# ---- the cursor ---------------------------------------------------------------------------

def state_of(session: Session, company: Company) -> PaymentSyncState:
    state = session.get(PaymentSyncState, company.id)
    if state is None:
        state = PaymentSyncState(company_id=company.id, retry_set=[])
        session.add(state)
        session.flush()
    return state


def default_since(session: Session, company: Company) -> datetime:
    """The cursor minus the overlap; the first run starts at go-live, or 7 days ago."""
    settings = company_settings.get_settings(session, company)
    state = session.get(PaymentSyncState, company.id)
    if state is not None and state.cursor_at is not None:
        return state.cursor_at - timedelta(minutes=settings.payment_sync_overlap_minutes)
    if settings.go_live_date is not None:
        return datetime.combine(settings.go_live_date, datetime.min.time(), timezone.utc)
    start = (utcnow() - timedelta(days=FIRST_RUN_DAYS)).date()  # a day's start: stable
    return datetime.combine(start, datetime.min.time(), timezone.utc)


def is_backdated(session: Session, company: Company, since: datetime) -> bool:
    """Earlier than the preloaded value (the form shows whole minutes)."""
    return since < default_since(session, company) - timedelta(seconds=60)


# ---- starting a run -----------------------------------------------------------------------

def start(session: Session, company: Company, *, trigger: str, user: User | None = None,
          since: datetime | None = None) -> Batch:
    """Add a queued payment batch and its run (the company lock); the caller commits, then
    calls `enqueue`. `trigger` is `user:<id>`, `autosync`, `webhook` or `rerun-of:<id>`."""
    from portal import clients

    if company.needs_reconnect:
        raise SyncRefused(f"Reconnect {company.qbo_name} to QuickBooks first.")
    if clients.connectwise(session) is None:
        raise SyncRefused("Set up ConnectWise first.")
    since = since or default_since(session, company)
    backdated = is_backdated(session, company, since)
    try:
        run = runs.start(session, RunKind.PAYMENT_SYNC, user=user, company_id=company.id)
    except runs.RunAlreadyActive as busy:
        holder = session.scalar(sa.select(Batch).where(Batch.run_id == busy.active_run.id)) \
            if busy.active_run else None
        what = f"batch #{holder.id} ({holder.type.label})" if holder else "another run"
        raise SyncRefused(f"{company.qbo_name} is busy with {what}; the sync can start when "
                          "it ends.", holder) from None
    batch = Batch(type=BatchType.PAYMENT, company_id=company.id, run_id=run.id,
                  status=BatchStatus.QUEUED, trigger=trigger[:40],
                  started_by_id=user.id if user else None,
                  options={"since": since.astimezone(timezone.utc).isoformat(),
                           "backdated": backdated}, counts={}, totals={})
    session.add(batch)
    session.flush()
    if backdated:
        audit.record(session, "payments.backdated_run", target=batch, company_id=company.id,
                     after={"since": batch.options["since"]},
                     actor=None if user else f"system:{trigger.split(':')[0]}")
    return batch


def enqueue(batch: Batch) -> None:
    """After the commit: hand the run to a worker (the tick's sweep takes it otherwise)."""
    from portal.jobs.registry import enqueue_run

    try:
        enqueue_run(RunKind.PAYMENT_SYNC, batch.run_id)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the run stays queued; the reconciler enqueues it
        log.exception("payment batch=%s could not be enqueued", batch.id)


def start_and_enqueue(session: Session, company: Company, *, trigger: str,
                      user: User | None = None, since: datetime | None = None) -> Batch:
    """Start a payment run for `company` and enqueue it (AutoSync, webhooks, re-run links).
    Commits. Raises SyncRefused when the company is busy or not ready."""
    batch = start(session, company, trigger=trigger, user=user, since=since)
    session.commit()
    enqueue(batch)
    return batch


class _AutoSyncSource:
    """What AutoSync needs of payment sync: a starter, since a payment run syncs from its
    cursor rather than from a selection."""

    kind = BatchType.PAYMENT

    @staticmethod
    def autosync_start(session: Session, company: Company, settings: Any,
                       trigger: str) -> Batch:
        from portal.services.autosync import StartRefused

        try:
            return start(session, company, trigger=trigger)
        except SyncRefused as refused:
            raise StartRefused(str(refused)) from None


AUTOSYNC_SOURCE = _AutoSyncSource()


# ---- finding changes (SPEC 10.2) ----------------------------------------------------------

@dataclass
class Mapped:
    """A QuickBooks invoice that maps to a ConnectWise invoice."""

    qbo_id: str
    doc_number: str
    txn_date: str
    cw_id: int
    cw_number: str
    customer: str | None


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _linked(obj: dict[str, Any], kind: str) -> set[str]:
    return {str(link.get("TxnId")) for link in obj.get("LinkedTxn") or []
            if link.get("TxnType") == kind}


def _payment_invoices(payment: dict[str, Any]) -> set[str]:
    return {str(link.get("TxnId")) for line in payment.get("Line") or []
            for link in line.get("LinkedTxn") or [] if link.get("TxnType") == "Invoice"}


def affected_invoices(session: Session, company: Company, qbo: QuickBooksClient,
                      changes: qbo_reads.Changes) -> tuple[set[str], int]:
    """Step 3's candidates (before the ConnectWise filter) and the extra QBO requests."""
    found: set[str] = set()
    payments = changes.objects.get("Payment", [])
    for payment in payments:
        found |= _payment_invoices(payment)
    touched = [str(p["Id"]) for p in payments] + changes.deleted.get("Payment", [])
    for chunk in _chunks(touched, 500):
        found |= set(session.scalars(sa.select(PaymentSeen.qbo_invoice_id).where(
            PaymentSeen.company_id == company.id, PaymentSeen.qbo_payment_id.in_(chunk))))
    found |= {str(i["Id"]) for i in changes.objects.get("Invoice", [])}
    memo_payments: set[str] = set()
    for memo in changes.objects.get("CreditMemo", []):
        memo_payments |= _linked(memo, "Payment")
    memo_payments -= {str(p["Id"]) for p in payments}
    requests = 0
    if memo_payments:
        read, requests = qbo_reads.read_by_id(qbo, {"Payment": memo_payments})
        for payment in read["Payment"].values():
            found |= _payment_invoices(payment)
    state = session.get(PaymentSyncState, company.id)
    if state is not None:
        found |= set(state.retry_set or [])
    return found, requests


def _strip_prefix(doc_number: str, prefix: str) -> str | None:
    if prefix:
        return doc_number[len(prefix):] if doc_number.startswith(prefix) else None
    return doc_number


def portal_posted(session: Session, company_id: int, entity: str, qbo_ids: Iterable[str]
                  ) -> dict[str, tuple[int, str]]:
    """QuickBooks id -> (ConnectWise id, number) of the documents portal posted."""
    found: dict[str, tuple[int, str]] = {}
    ids = list(qbo_ids)
    for chunk in _chunks(ids, 500):
        rows = session.execute(sa.select(BatchItem.qbo_id, BatchItem.cw_id, BatchItem.cw_number)
                               .join(Batch, Batch.id == BatchItem.batch_id)
                               .where(Batch.company_id == company_id,
                                      BatchItem.qbo_entity == entity,
                                      BatchItem.qbo_id.in_(chunk),
                                      BatchItem.state.not_in([s.value for s in CLOSED_STATES])))
        for qbo_id, cw_id, number in rows:
            if cw_id:
                found[str(qbo_id)] = (int(cw_id), number)
    return found


def cw_by_number(cw: ConnectWiseClient, numbers: Iterable[str], kind: str
                 ) -> dict[str, dict[str, Any]]:
    """ConnectWise invoices (kind `Invoice`) or credit memos (`CreditMemo`) by number."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(numbers)), 100):
        conditions = f"invoiceNumber in ({', '.join(quote(n) for n in chunk)})"
        for row in cw.iter_all("/finance/invoices", conditions=conditions,
                               fields="id,invoiceNumber,type,company"):
            is_memo = row.get("type") == "CreditMemo"
            if is_memo == (kind == "CreditMemo"):
                found[str(row["invoiceNumber"])] = row
    return found


def map_invoices(session: Session, company: Company, cw: ConnectWiseClient,
                 invoices: dict[str, dict[str, Any]], by_docnumber: bool,
                 prefix: str) -> list[Mapped]:
    """Keep the QuickBooks invoices that map to a ConnectWise invoice."""
    posted = portal_posted(session, company.id, "Invoice", invoices)
    numbers: dict[str, str] = {}
    if by_docnumber:
        for qid, inv in invoices.items():
            if qid in posted:
                continue
            bare = _strip_prefix(str(inv.get("DocNumber") or ""), prefix)
            if bare:
                numbers[qid] = bare
    cw_rows = cw_by_number(cw, numbers.values(), "Invoice") if numbers else {}
    kept = []
    for qid, inv in invoices.items():
        if qid in posted:
            cw_id, number = posted[qid]
        elif numbers.get(qid) in cw_rows:
            cw_id, number = int(cw_rows[numbers[qid]]["id"]), numbers[qid]
        else:
            continue
        kept.append(Mapped(qid, str(inv.get("DocNumber") or ""), str(inv.get("TxnDate") or ""),
                           cw_id, number, (inv.get("CustomerRef") or {}).get("name")))
    return sorted(kept, key=lambda m: (m.txn_date, m.doc_number, m.qbo_id))


def find_items(session: Session, batch: Batch, company: Company, qbo: QuickBooksClient,
               cw: ConnectWiseClient, settings: company_settings.CompanySettings,
               progress: RunProgress) -> None:
    """Find the affected invoices and store one pending item each (committed once)."""
    since = datetime.fromisoformat(batch.options["since"])
    progress.phase("finding", "Finding payment changes in QuickBooks")
    changes = qbo_reads.changes_since(qbo, since, utcnow(), use_cdc=settings.use_cdc)
    candidates, _extra = affected_invoices(session, company, qbo, changes)
    invoices: dict[str, dict[str, Any]] = {}
    if candidates:
        read, _n = qbo_reads.read_by_id(qbo, {"Invoice": candidates})
        invoices = read["Invoice"]
    mapped = map_invoices(session, company, cw, invoices, settings.match_invoices_by_docnumber,
                          settings.doc_number_prefix)
    for position, found in enumerate(mapped):
        session.add(PaymentItem(batch_id=batch.id, position=position,
                                qbo_invoice_id=found.qbo_id, qbo_doc_number=found.doc_number,
                                cw_invoice_id=found.cw_id, cw_invoice_number=found.cw_number,
                                customer=found.customer))
    server = changes.server_time or utcnow()
    batch.options = {**batch.options, "found": True, "server_time": server.isoformat(),
                     "method": changes.method, "found_by": changes.found_by,
                     "candidates": len(candidates),
                     "not_mapped": len(candidates) - len(mapped)}
    session.commit()


# ---- the run ------------------------------------------------------------------------------

def _paid(figures: dict[str, Any] | None) -> Any:
    figures = figures or {}
    return allocation.money(figures.get("cash")) + allocation.money(figures.get("credits"))


def applied_totals(session: Session, batch_id: int, home: str) -> dict[str, str]:
    """Currency -> what the run applied in ConnectWise: cash and credits after minus before,
    over the invoices it synced (negative when it removed more than it added)."""
    totals: dict[str, Any] = {}
    for currency, before, after in session.execute(sa.select(
            PaymentItem.currency, PaymentItem.before, PaymentItem.after).where(
            PaymentItem.batch_id == batch_id, PaymentItem.after.is_not(None))):
        key = currency or home
        totals[key] = totals.get(key, allocation.ZERO) + _paid(after) - _paid(before)
    return {currency: f"{amount:.2f}" for currency, amount in sorted(totals.items())}


def _voided(invoice: dict[str, Any]) -> bool:
    return str(invoice.get("PrivateNote") or "").startswith("Voided") and \
        allocation.money(invoice.get("TotalAmt")) == 0


@dataclass
class Chunk:
    """What one chunk of invoices needs from both sides, read in a few requests."""

    invoices: dict[str, dict[str, Any]]
    payments: dict[str, allocation.Payment]
    order: dict[str, allocation.InvoiceOrder]
    memo_map: dict[str, int | None]
    memo_numbers: dict[str, str]
    cw_invoices: dict[int, dict[str, Any]]


def read_chunk(session: Session, company_id: int, qbo: QuickBooksClient,
               cw: ConnectWiseClient, items: list[PaymentItem], by_docnumber: bool,
               prefix: str) -> Chunk:
    """Step 1 for a chunk: the invoices and their payments (a /batch of queries), then the
    other invoices and credit memos those payments name; the ConnectWise invoices."""
    read, _n = qbo_reads.read_by_id(qbo, {"Invoice": {i.qbo_invoice_id for i in items}})
    invoices = read["Invoice"]
    payment_ids = set().union(*(_linked(inv, "Payment") for inv in invoices.values())) \
        if invoices else set()
    raw_payments = qbo_reads.read_by_id(qbo, {"Payment": payment_ids})[0]["Payment"] \
        if payment_ids else {}
    payments = {pid: allocation.Payment.of(p) for pid, p in raw_payments.items()}
    others: set[str] = set()
    memos: set[str] = set()
    for payment in payments.values():
        if payment.credits:
            memos |= set(payment.credits)
            if len(payment.invoices) > 1:
                others |= set(payment.invoices) - set(invoices)
    wanted = {k: v for k, v in (("Invoice", others), ("CreditMemo", memos)) if v}
    extra = qbo_reads.read_by_id(qbo, wanted)[0] if wanted else {}
    all_invoices = {**invoices, **extra.get("Invoice", {})}
    order = {qid: allocation.InvoiceOrder(str(inv.get("TxnDate") or ""),
                                          str(inv.get("DocNumber") or ""))
             for qid, inv in all_invoices.items()}
    memo_docs = extra.get("CreditMemo", {})
    memo_numbers = {mid: str(m.get("DocNumber") or mid) for mid, m in memo_docs.items()}
    memo_map: dict[str, int | None] = {mid: None for mid in memos}
    posted = portal_posted(session, company_id, "CreditMemo", memos)
    for mid, (cw_id, _number) in posted.items():
        memo_map[mid] = cw_id
    if by_docnumber:
        bare = {mid: _strip_prefix(memo_numbers.get(mid, ""), prefix) for mid in memos
                if mid not in posted}
        found = cw_by_number(cw, [b for b in bare.values() if b], "CreditMemo")
        for mid, number in bare.items():
            if number and number in found:
                memo_map[mid] = int(found[number]["id"])
    cw_invoices: dict[int, dict[str, Any]] = {}
    ids = sorted({i.cw_invoice_id for i in items if i.cw_invoice_id})
    for chunk in _chunks(ids, 200):
        for row in cw.iter_all("/finance/invoices",
                               conditions=f"id in ({', '.join(str(i) for i in chunk)})",
                               fields="id,invoiceNumber,type,total,payments,credits,balance,"
                                      "currency,company"):
            cw_invoices[int(row["id"])] = row
    return Chunk(invoices, payments, order, memo_map, memo_numbers, cw_invoices)


def _worker_engine(engine: Engine) -> Engine:
    """The engine of the workers' sessions. On SQLite (one writer; a transaction that read
    before another connection committed may not write after it) each transaction begins
    IMMEDIATE, so it holds the write lock from its first statement and the others, the
    heartbeat's included, wait their turn; the workers hold none across a ConnectWise call.
    Other databases share the run's engine."""
    if engine.dialect.name != "sqlite":
        return engine
    from portal.db import _sqlite_pragmas

    own = sa.create_engine(engine.url, connect_args={"timeout": 30})
    event.listen(own, "connect", _sqlite_pragmas)
    event.listen(own, "begin", lambda connection: connection.exec_driver_sql(
        "BEGIN IMMEDIATE"))
    return own


class PaymentRun:
    """One claimed payment run."""

    def __init__(self, session: Session, batch: Batch, run: JobRun, qbo: QuickBooksClient,
                 cw: ConnectWiseClient, progress: RunProgress, workers: int = 4) -> None:
        self.session = session
        self.batch = batch
        self.run = run
        self.qbo = qbo
        self.cw = cw
        self.progress = progress
        self.company: Company = batch.company
        self.company_id = batch.company_id
        self.home_currency = batch.company.home_currency
        self.workers = max(1, workers)
        self.qbo_base = deep_links(session).qbo_base
        self.claimed_at = utcnow()  # the claim is taken before the run is built
        self._qbo_start = qbo.requests_sent
        self._cw_start = cw.requests_sent

    def _check_claim(self, session: Session | None = None) -> None:
        if self.run.claim_token and not runs.owns(session or self.session, self.run.id,
                                                  self.run.claim_token):
            raise runs.LostClaim()

    def _cancelled(self, session: Session | None = None) -> str | None:
        return (session or self.session).scalar(sa.select(Batch.cancel_requested_by).where(
            Batch.id == self.batch.id))

    def execute(self) -> tuple[RunStatus, str]:
        batch = self.batch
        batch.status = BatchStatus.RUNNING
        batch.started_at = batch.started_at or utcnow()
        if batch.settings_snapshot is None:
            settings = company_settings.get_settings(self.session, self.company)
            batch.settings_snapshot = company_settings.as_json(settings)
            batch.settings_version_id = company_settings.current_version(
                self.session, self.company).id
        self.session.commit()
        self.settings = company_settings.from_json(batch.settings_snapshot)
        if not (batch.options or {}).get("found"):
            self._check_claim()
            try:
                find_items(self.session, batch, self.company, self.qbo, self.cw,
                           self.settings, self.progress)
            except errors.IntegrationError as exc:
                self.session.rollback()
                return self._stopped(f"Finding changes failed: {exc}. Nothing was written and "
                                     "the cursor did not move; run the sync again.")
        pending = self._pending_count()
        self.progress.start(pending, f"Syncing {pending} invoice(s)", phase="syncing")
        base = self.session.get_bind()
        engine = _worker_engine(base)
        stopped = None
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="payment-read") as reader:
                items = self._pending_after((-1, 0))
                ahead = reader.submit(self._read_ahead, items, engine) if items else None
                while items and ahead is not None:
                    stopped = self._cancelled()
                    if stopped:
                        break
                    self._check_claim()
                    found = ahead.result()
                    chunk = found if isinstance(found, Chunk) else self._read(items)
                    following = self._pending_after((items[-1].position, items[-1].id))
                    # the next chunk is read while this one is written
                    ahead = reader.submit(self._read_ahead, following, engine) \
                        if following else None
                    self.session.commit()  # the workers' sessions write these items
                    if chunk is not None:
                        stopped = self._work([i.id for i in items], chunk, engine)
                        if stopped:
                            break
                    items = following
        finally:
            if engine is not base:
                engine.dispose()
        return self._finish(stopped)

    def _pending_after(self, after: tuple[int, int]) -> list[PaymentItem]:
        """The next chunk of pending items after (position, id)."""
        position, item_id = after
        return list(self.session.scalars(sa.select(PaymentItem).where(
            PaymentItem.batch_id == self.batch.id, PaymentItem.status == PaymentStatus.PENDING,
            sa.or_(PaymentItem.position > position,
                   sa.and_(PaymentItem.position == position, PaymentItem.id > item_id)))
            .order_by(PaymentItem.position, PaymentItem.id).limit(CHUNK)))

    def _read_ahead(self, items: list[PaymentItem], engine: Engine
                    ) -> Chunk | errors.IntegrationError:
        """A chunk's reads on the reader thread (its own session); an error is handed back
        for `_read` to retry on the run's thread."""
        session = Session(bind=engine, expire_on_commit=False)
        try:
            return read_chunk(session, self.company_id, self.qbo, self.cw, items,
                              self.settings.match_invoices_by_docnumber,
                              self.settings.doc_number_prefix)
        except errors.IntegrationError as exc:
            return exc
        finally:
            session.close()

    def _read(self, items: list[PaymentItem]) -> Chunk | None:
        """The chunk's reads, tried twice; when both fail its invoices fail alone (they
        join the retry set) and the run goes on."""
        for attempt in range(2):
            try:
                return read_chunk(self.session, self.company_id, self.qbo, self.cw, items,
                                  self.settings.match_invoices_by_docnumber,
                                  self.settings.doc_number_prefix)
            except errors.IntegrationError as exc:
                self.session.rollback()
                if attempt == 0 and apply.transient(exc):
                    continue
                for item in items:
                    item.status = PaymentStatus.FAILED
                    item.message = (f"Reading invoice {item.qbo_doc_number} failed: {exc}. "
                                    "The next sync tries it again.")[:2000]
                    self.progress.advance(1)
                self.session.commit()
        return None

    def _pending_count(self) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(PaymentItem).where(
            PaymentItem.batch_id == self.batch.id,
            PaymentItem.status == PaymentStatus.PENDING)) or 0

    def _payment_link(self, payment_id: str) -> str:
        return f"{self.qbo_base}/app/recvpayment?txnId={payment_id}"

    def _work(self, item_ids: list[int], chunk: Chunk, engine: Engine) -> str | None:
        """Sync the chunk's invoices on `workers` threads, each with its own session (the
        ConnectWise calls of different invoices overlap, under the shared limit of calls
        in flight). Returns who cancelled, if someone did."""
        stopped: list[str] = []

        def one(item_id: int) -> None:
            session = Session(bind=engine, expire_on_commit=False)
            try:
                if stopped:
                    return
                who = self._cancelled(session)
                if who:
                    stopped.append(who)
                    return
                self._check_claim(session)
                item = session.get(PaymentItem, item_id)
                if item is None or item.status is not PaymentStatus.PENDING:
                    return
                self._one(session, item, chunk)
                self.progress.advance(1, f"Invoice {item.qbo_doc_number or item.qbo_invoice_id}")
            finally:
                session.close()

        with ThreadPoolExecutor(max_workers=self.workers,
                                thread_name_prefix="payment-sync") as pool:
            for future in [pool.submit(one, item_id) for item_id in item_ids]:
                future.result()  # LostClaim and unexpected errors end the run
        return stopped[0] if stopped else None

    def _one(self, session: Session, item: PaymentItem, chunk: Chunk) -> None:
        """Sync one invoice; a transient error is tried once more, then fails the invoice
        alone (it joins the retry set)."""
        for attempt in range(2):
            item.attempts += 1
            session.commit()
            try:
                self._sync(session, item, chunk)
                return
            except runs.LostClaim:
                raise
            except errors.IntegrationError as exc:
                session.rollback()
                if apply.transient(exc) and attempt == 0:
                    continue
                item.status = PaymentStatus.FAILED
                item.message = (f"Syncing invoice {item.cw_invoice_number} stopped: {exc}"
                                + (f" {exc.hint}" if getattr(exc, "hint", None) else "")
                                + " The next sync tries it again.")[:2000]
                session.commit()
                return

    def _sync(self, session: Session, item: PaymentItem, chunk: Chunk) -> None:
        settings = self.settings
        invoice = chunk.invoices.get(item.qbo_invoice_id)
        cw_invoice = chunk.cw_invoices.get(item.cw_invoice_id or 0)
        item.warnings, item.actions, item.message, item.fix_link = [], [], None, None
        if invoice is None:
            item.status = PaymentStatus.WARNING
            item.warnings = ["The QuickBooks invoice was deleted; ConnectWise was left "
                             "unchanged."]
            session.commit()
            return
        item.currency = (invoice.get("CurrencyRef") or {}).get("value")
        total = allocation.money(invoice.get("TotalAmt"))
        applied = total - allocation.money(invoice.get("Balance"))
        item.qbo_total, item.qbo_applied = total, applied
        if cw_invoice is None:
            item.status = PaymentStatus.WARNING
            item.warnings = [f"The ConnectWise invoice {item.cw_invoice_number} was not found; "
                             "nothing was written."]
            session.commit()
            return
        linked = [chunk.payments[p] for p in sorted(_linked(invoice, "Payment"))
                  if p in chunk.payments]
        voided = _voided(invoice)
        try:
            target = allocation.Target() if voided else allocation.target_for(
                item.qbo_invoice_id, linked, mode=settings.credit_memo_multi_invoice,
                order=chunk.order, memo_map=chunk.memo_map, memo_numbers=chunk.memo_numbers,
                unmapped_as_cash=settings.unmapped_credit_as_payment,
                payment_link=self._payment_link, home_currency=self.home_currency)
        except allocation.RuleError as rule:
            item.status = PaymentStatus.FAILED
            item.message = str(rule)
            item.fix_link = rule.link
            item.before = item.after = apply.figures(cw_invoice)
            item.qbo_payment_ids = [p.id for p in linked]
            session.commit()
            return
        item.qbo_payment_ids = [p.id for p in linked]
        job = apply.InvoiceJob(
            session=session, cw=self.cw, item=item, company_id=self.company_id,
            run_id=self.run.id, cw_invoice=cw_invoice, target=target,
            # a voided invoice loses every payment but WisePay's, whatever the authority
            authority="QuickBooks" if voided else settings.cw_payment_authority,
            voided=voided,
            credit_date=max((p.txn_date for p in linked), default=None),
            guard=lambda: self._check_claim(session), claimed_at=self.claimed_at)
        if voided:
            job.warnings.append("The invoice is voided in QuickBooks: its ConnectWise payments "
                                "were removed (WisePay rows kept). Unbatch it in ConnectWise.")
        apply.run_invoice(job, applied)
        apply.remember_payments(session, self.company_id, item.qbo_invoice_id,
                                item.qbo_payment_ids)
        item.warnings = target.warnings + job.warnings
        item.actions = job.actions
        item.status = PaymentStatus.WARNING if item.warnings else PaymentStatus.DONE
        session.commit()

    def _stopped(self, message: str) -> tuple[RunStatus, str]:
        batch = self.batch
        batch.status = BatchStatus.FINISHED
        batch.colour = "red"
        batch.message = message[:500]
        batch.finished_at = utcnow()
        self.session.commit()
        return RunStatus.FAILED, batch.message

    def _finish(self, stopped: str | None) -> tuple[RunStatus, str]:
        batch = self.batch
        session = self.session
        counts = dict(session.execute(sa.select(PaymentItem.status, sa.func.count())
                                      .where(PaymentItem.batch_id == batch.id)
                                      .group_by(PaymentItem.status)).all())
        counts = {(k.value if hasattr(k, "value") else str(k)): v for k, v in counts.items()}
        failed_ids = list(session.scalars(sa.select(PaymentItem.qbo_invoice_id).where(
            PaymentItem.batch_id == batch.id,
            PaymentItem.status.in_([PaymentStatus.FAILED, PaymentStatus.PENDING]))))
        state = state_of(session, self.company)
        server = datetime.fromisoformat(batch.options.get("server_time")) \
            if batch.options.get("server_time") else None
        if server is not None and (state.cursor_at is None or server > state.cursor_at):
            state.cursor_at = server
        state.retry_set = sorted(set(failed_ids))
        state.last_batch_id = batch.id
        batch.counts = counts
        batch.totals = applied_totals(session, batch.id, self.home_currency or "USD")
        # the list's "posted" column reads these: what the run changed in ConnectWise
        batch.options = {**batch.options, "totals_applied": True}
        batch.qbo_requests = (batch.qbo_requests or 0) + self.qbo.requests_sent - self._qbo_start
        batch.cw_requests = (batch.cw_requests or 0) + self.cw.requests_sent - self._cw_start
        batch.finished_at = utcnow()
        batch.status = BatchStatus.CANCELLED if stopped else BatchStatus.FINISHED
        failed = counts.get("failed", 0)
        warned = counts.get("warning", 0)
        batch.colour = "red" if failed else "yellow" if warned else \
            "grey" if stopped else "green"
        total = sum(counts.values())
        parts = [f"{total} invoice(s)", f"{counts.get('done', 0)} in step"]
        if warned:
            parts.append(f"{warned} with warnings")
        if failed:
            parts.append(f"{failed} failed (retried by the next sync)")
        if stopped:
            parts.insert(0, f"cancelled by {stopped}")
        batch.message = " · ".join(parts)[:500]
        session.commit()
        return (RunStatus.CANCELLED if stopped else RunStatus.SUCCEEDED), batch.message
