"""Batches as people see them: submit a selection, retry, cancel, list and summarise.

The engine (`batching.engine`) does the work inside the job; this module holds what routes
need, so routes stay thin and every rule (one live item per record, one run per company)
is enforced in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload

from portal.models import (
    Batch,
    BatchItem,
    BatchItemEvent,
    BatchStatus,
    BatchType,
    Company,
    ItemState,
    JobRun,
    RunKind,
    User,
)
from portal.models.batch import CLOSED_STATES, RETRY_SKIPS, RETRYABLE
from portal.models.types import utcnow
from portal.services import audit, runs, spreadsheet
from portal.services.batching.engine import colour_of, summary
from portal.services.batching.engine import count_states as _count_states
from portal.services.batching.types.base import Record
from portal.services.sorting import Sort

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


def near_miss_records(session: Session, company: Company | None,
                      noun: str = "invoice") -> set[str]:
    """Record numbers (of records labelled `noun N`) the last backlog check found with a
    near-miss (a warning flag)."""
    from portal.models import MappingScan, MappingValue

    if company is None:
        return set()
    rows = session.scalars(sa.select(MappingValue.record_refs).join(MappingScan).where(
        MappingScan.company_id == company.id, MappingValue.status == "near_miss"))
    return {ref[len(noun) + 1:] for refs in rows for ref in refs or []
            if ref.startswith(f"{noun} ")}


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


def submit(session: Session, company: Company, records: list[Record], *, user: User | None,
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
            batch_id=batch.id, record_key=record.key, position=position,
            cw_unposted_id=record.unposted_id, cw_id=record.cw_id, cw_number=record.number,
            cw_kind=record.kind, party=record.party, record_date=record.day,
            cw_amount=Decimal(record.total), currency=record.currency or None,
            gl_entry_ids=list(record.gl_entry_ids), source_refs=list(record.source_refs),
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


def totals_of(records: Iterable[Record], home: str) -> dict[str, str]:
    return _totals((r.currency or home, r.total) for r in records)


def retryable(session: Session, batch: Batch) -> list[BatchItem]:
    """Items a retry carries (SPEC 6.9): failed, uncertain, posted but not marked, and
    skipped because others blocked the batch or it was cancelled."""
    return list(session.scalars(sa.select(BatchItem).options(defer(BatchItem.payload)).where(
        BatchItem.batch_id == batch.id, _retryable_clause()).order_by(BatchItem.position,
                                                                      BatchItem.id)))


def _retryable_clause() -> sa.ColumnElement[bool]:
    return sa.or_(BatchItem.state.in_([s.value for s in RETRYABLE]),
                  sa.and_(BatchItem.state == ItemState.SKIPPED.value,
                          BatchItem.skip_reason.in_(RETRY_SKIPS)))


CARRIED = {ItemState.FAILED: "failed", ItemState.SKIPPED: "not posted",
           ItemState.UNCERTAIN: "outcome unknown", ItemState.POSTED: "posted, not marked"}


def retry(session: Session, batch: Batch, user: User | None) -> Batch:
    """A new batch `retry-of:<id>` holding copies of the retryable items (SPEC 6.9).

    The old rows become `retried` and the copies keep generation, request token and
    QuickBooks id, in one transaction; a failed or skipped copy starts again from
    `selected` (with a fresh token when it is validated again), an uncertain one begins
    with a lookup, a posted one is marked without posting again. The old batch is coloured
    again without the records that moved. The caller commits, then enqueues.
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
        again = previous in (ItemState.FAILED, ItemState.SKIPPED)
        item.state = ItemState.RETRIED
        note = f"From batch #{batch.id} ({CARRIED[previous]}): {item.message or ''}".strip()
        copies.append(BatchItem(
            batch_id=new.id, record_key=item.record_key, generation=item.generation,
            position=position, cw_unposted_id=item.cw_unposted_id, cw_id=item.cw_id,
            cw_number=item.cw_number, cw_kind=item.cw_kind, party=item.party,
            record_date=item.record_date, gl_entry_ids=list(item.gl_entry_ids or []),
            source_refs=list(item.source_refs or []),
            state=ItemState.SELECTED if again else previous,
            qbo_entity=item.qbo_entity, qbo_id=item.qbo_id, qbo_doc_number=item.qbo_doc_number,
            qbo_sync_token=item.qbo_sync_token,
            request_token=None if again else item.request_token,
            payload_hash=None if again else item.payload_hash,
            payload=None if again else item.payload, mark_attempts=item.mark_attempts,
            cw_batch_identifier=item.cw_batch_identifier, cw_amount=item.cw_amount,
            cw_tax=item.cw_tax, qbo_amount=item.qbo_amount, qbo_tax=item.qbo_tax,
            currency=item.currency, warnings=[], message=note[:2000],
            fix_hint="This batch picks it up where the earlier one left it."))
    session.flush()  # the retried rows leave the live index before the copies join it
    session.add_all(copies)
    session.flush()
    new.totals = _totals((c.currency or company.home_currency or "USD", c.cw_amount)
                         for c in copies)
    new.counts = count_states(session, new)
    recount(session, batch)
    batch.colour = colour_of(session, batch)
    batch.message = summary(batch, session)[:500]
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
    batch.colour = colour_of(session, batch)
    batch.message = summary(batch, session)[:500]
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
        for item in session.scalars(sa.select(BatchItem).options(defer(BatchItem.payload))
                                    .where(BatchItem.batch_id == batch.id)):
            if item.state in (ItemState.SELECTED, ItemState.VALIDATED):
                item.state = ItemState.SKIPPED
                item.skip_reason = "cancelled"
                item.message = f"cancelled by {user.email}"
            elif item.state is ItemState.POSTING:
                item.state = ItemState.UNCERTAIN
                item.message = "QuickBooks may hold this document; Retry looks it up first."
            elif item.state is ItemState.POSTED and not item.message:
                item.message = "Posted to QuickBooks but not marked in ConnectWise: the " \
                               "batch was cancelled while paused."
                item.fix_hint = "Retry the batch: it marks the record without posting again."
        recount(session, batch)
        batch.status = BatchStatus.CANCELLED
        batch.colour = colour_of(session, batch)
        batch.finished_at = utcnow()
    audit.record(session, "batch.cancel", target_type="batch", target_id=batch.id,
                 company_id=batch.company_id)


def count_states(session: Session, batch: Batch) -> dict[str, int]:
    return _count_states(session, batch.id)


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
    sort: Sort = Sort.parse(None, (), "-id")
    before_id: int | None = None  # keyset cursor: the last row shown ...
    before_key: Any = None  # ... and its sort value, when the list is sorted by another key
    date_errors: dict[str, str] = field(default_factory=dict)  # "from"/"to" -> message

    def query(self) -> dict[str, str]:
        """The filters and the order as URL parameters (bookmarkable)."""
        out = {"type": self.type, "colour": self.colour, "status": self.status,
               "trigger": self.trigger,
               "company": str(self.company_id) if self.company_id else None,
               "from": self.date_from.isoformat() if self.date_from else None,
               "to": self.date_to.isoformat() if self.date_to else None,
               "record": self.record, "sort": self.sort.param}
        return {k: v for k, v in out.items() if v}

    def without_sort(self) -> dict[str, str]:
        """The filters alone: what a sortable header adds its own order to."""
        return {k: v for k, v in self.query().items() if k != "sort"}


# The review list's sortable columns. Amounts are per currency and counts are JSON, so
# those columns do not sort; every key here pages by keyset on (key, id).
LIST_SORTS: dict[str, Any] = {"id": Batch.id, "type": Batch.type, "colour": Batch.colour,
                              "started": Batch.created_at, "company": Company.qbo_name}


def sort_value(batch: Batch, sort: Sort) -> str | None:
    """The cursor value of a row for the list's order (None when sorted by id)."""
    if sort.key in ("", "id"):
        return None
    if sort.key == "started":
        return batch.created_at.isoformat()
    if sort.key == "company":
        return batch.company.qbo_name if batch.company else ""
    return str(getattr(batch, sort.key).value if sort.key == "type" else batch.colour)


def parse_cursor(sort: Sort, text: str | None) -> Any:
    """`at` from the URL as the sort column's type; ValueError names what is wrong."""
    if sort.key in ("", "id") or text is None:
        return None
    if sort.key == "started":
        try:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
        except ValueError:
            raise ValueError(f"The list position {text!r} is not a time; reload the list."
                             ) from None
    if sort.key == "type":
        try:
            return BatchType(text)
        except ValueError:
            raise ValueError(f"The list position {text!r} is not a batch type; reload the "
                             "list.") from None
    return text[:200]


def _list_query(filters: Filters) -> sa.Select[tuple[Batch]]:
    query = sa.select(Batch)
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
    return query


def matching_ids(filters: Filters) -> sa.Select[tuple[int]]:
    """The ids of the batches the filters match (for the review charts)."""
    return _list_query(filters).with_only_columns(Batch.id)


def _with_people(query: sa.Select[tuple[Batch]]) -> sa.Select[tuple[Batch]]:
    return query.options(selectinload(Batch.company), selectinload(Batch.started_by))


def _ordered(query: sa.Select[tuple[Batch]], sort: Sort) -> sa.Select[tuple[Batch]]:
    column = LIST_SORTS[sort.key or "id"]
    if sort.key == "company":
        query = query.join(Company, Company.id == Batch.company_id)
    if column is Batch.id:
        return query.order_by(Batch.id.desc() if sort.descending else Batch.id.asc())
    return query.order_by(column.desc() if sort.descending else column.asc(), Batch.id.desc())


def listing(session: Session, filters: Filters, limit: int = PAGE) -> list[Batch]:
    """One page in the list's order (newest first by default), keyset-paged: rows after
    the cursor (`before_id`, and `before_key` for other orders; ties go newest first),
    so scrolling never skips or repeats a row while batches are added. Nothing while a
    date filter has a mistake: dropping it would list batches the person did not ask for."""
    if filters.date_errors:
        return []
    sort = filters.sort
    query = _with_people(_ordered(_list_query(filters), sort)).limit(limit)
    if filters.before_id:
        last = filters.before_id
        if sort.key in ("", "id"):
            query = query.where(Batch.id < last if sort.descending else Batch.id > last)
        elif filters.before_key is not None:
            column = LIST_SORTS[sort.key]
            beyond = column < filters.before_key if sort.descending \
                else column > filters.before_key
            query = query.where(sa.or_(beyond, sa.and_(column == filters.before_key,
                                                       Batch.id < last)))
    return list(session.scalars(query))


def every_listed(session: Session, filters: Filters) -> Iterator[Batch]:
    """Every batch the filters match, in the list's order, streamed (CSV); nothing while a
    date filter has a mistake."""
    if filters.date_errors:
        return
    query = _with_people(_ordered(_list_query(filters), filters.sort))
    yield from session.scalars(query.execution_options(yield_per=500, stream_results=True))


ITEM_PAGE = 50  # like the review list: more rows load as the last one is revealed
POSTED_STATES = (ItemState.POSTED, ItemState.MARKED, ItemState.DONE)


def posted_totals(session: Session, rows: Iterable[Batch]) -> dict[int, dict[str, str]]:
    """Batch id -> the ConnectWise amount per currency of the records it holds that have a
    QuickBooks document (posted, marked or done), so a list shows what a batch posted
    beside what was selected; a batch that posted nothing gets no entry."""
    by_id = {b.id: b for b in rows}
    ids = sorted(by_id)
    amounts: dict[int, list[tuple[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        for batch_id, currency, amount in session.execute(
                sa.select(BatchItem.batch_id, BatchItem.currency,
                          sa.func.sum(BatchItem.cw_amount))
                .where(BatchItem.batch_id.in_(ids[start:start + 500]),
                       BatchItem.state.in_([s.value for s in POSTED_STATES]))
                .group_by(BatchItem.batch_id, BatchItem.currency)):
            company = by_id[batch_id].company
            home = (company.home_currency if company else None) or "USD"
            amounts.setdefault(batch_id, []).append((currency or home, amount))
    return {batch_id: _totals(pairs) for batch_id, pairs in amounts.items()}


@dataclass(frozen=True)
class ItemFilters:
    state: str | None = None
    colour: str | None = None

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("state", self.state), ("colour", self.colour)) if v}


def _item_query(batch: Batch, filters: ItemFilters) -> sa.Select[tuple[BatchItem]]:
    from portal.models.batch import colour_sql

    query = sa.select(BatchItem).options(defer(BatchItem.payload)).where(
        BatchItem.batch_id == batch.id)
    if filters.state:
        query = query.where(BatchItem.state == filters.state)
    if filters.colour:
        query = query.where(colour_sql() == filters.colour)
    return query


def item_page(session: Session, batch: Batch, filters: ItemFilters,
              after: tuple[int, int] | None = None, limit: int = ITEM_PAGE) -> list[BatchItem]:
    """One page of a batch's items in position order, keyset-paged on (position, id), the
    payload column never loaded: a 10,000-item batch costs what its first page costs."""
    query = _item_query(batch, filters)
    if after is not None:
        position, item_id = after
        query = query.where(sa.or_(BatchItem.position > position,
                                   sa.and_(BatchItem.position == position,
                                           BatchItem.id > item_id)))
    return list(session.scalars(query.order_by(BatchItem.position, BatchItem.id).limit(limit)))


@dataclass(frozen=True)
class ItemCounts:
    """A batch's items per state and per colour, and how many a retry would carry."""

    states: dict[str, int]
    colours: dict[str, int]
    retryable: int


def item_counts(session: Session, batch: Batch) -> ItemCounts:
    """Items per state, per colour and retryable, from one query (the batch page's filters
    and its Retry button cost one statement whatever the batch's size)."""
    from portal.models.batch import colour_sql

    colour = colour_sql().label("colour")
    retry = sa.func.sum(sa.case((_retryable_clause(), 1), else_=0))
    states: dict[str, int] = {}
    colours: dict[str, int] = {}
    retryable = 0
    for state, shade, count, carried in session.execute(
            sa.select(BatchItem.state, colour, sa.func.count(), retry).where(
                BatchItem.batch_id == batch.id).group_by(BatchItem.state, colour)):
        states[state.value] = states.get(state.value, 0) + count
        colours[shade] = colours.get(shade, 0) + count
        retryable += int(carried or 0)
    return ItemCounts(states, colours, retryable)


def items_of(session: Session, batch: Batch) -> Iterator[BatchItem]:
    """Every item, streamed in position order (CSV): bounded memory whatever the size."""
    query = sa.select(BatchItem).options(defer(BatchItem.payload)).where(
        BatchItem.batch_id == batch.id).order_by(BatchItem.position, BatchItem.id)
    yield from session.scalars(query.execution_options(yield_per=500, stream_results=True))


STEP_LABELS = {"settling": "Looking up documents whose answer was lost",
               "checking": "Checking records (pre-flight)",
               "creating": "Creating references in QuickBooks",
               "building": "Building documents", "posting": "Posting to QuickBooks",
               "marking": "Marking in ConnectWise"}


@dataclass(frozen=True)
class StepView:
    """One step of a run, with its own bar; an ETA only where its rate is known."""

    name: str
    label: str
    done: int
    total: int
    eta_seconds: float | None

    @property
    def complete(self) -> bool:
        return self.done >= self.total


def steps_of(batch: Batch) -> list[StepView]:
    """The run's steps in order. A step's ETA is its own remaining work at its own rate,
    shown while it runs; marking's total grows while posting goes on, so it gets one only
    after posting has finished."""
    run = batch.run
    steps = (run.steps or {}) if run is not None else {}
    out: list[StepView] = []
    now = utcnow()
    for name, label in STEP_LABELS.items():
        found = steps.get(name)
        if not found:
            continue
        done, total = int(found.get("done") or 0), int(found.get("total") or 0)
        eta = None
        growing = name == "marking" and "posting" in steps and \
            steps["posting"].get("done", 0) < steps["posting"].get("total", 0)
        if batch.active and 0 < done < total and not growing:
            try:
                started = datetime.fromisoformat(found["started"])
            except (KeyError, ValueError):
                started = None
            if started is not None:
                elapsed = (now - started).total_seconds()
                eta = elapsed / done * (total - done)
        out.append(StepView(name, label, min(done, total), total, eta))
    return out


def events_of(session: Session, item: BatchItem, limit: int = 200) -> list[BatchItemEvent]:
    return list(session.scalars(sa.select(BatchItemEvent).where(
        BatchItemEvent.item_id == item.id).order_by(BatchItemEvent.id).limit(limit)))


def recent_events(session: Session, batch: Batch, limit: int = 10) -> list[BatchItemEvent]:
    return list(session.scalars(sa.select(BatchItemEvent).where(
        BatchItemEvent.batch_id == batch.id).order_by(BatchItemEvent.id.desc()).limit(limit)))


def csv_rows(header: list[str], rows: Iterable[list[Any]], *, bom: bool = False
             ) -> Iterator[str]:
    """Stream CSV text, one line at a time: numbers as numbers, text formula-safe."""
    return spreadsheet.stream(header, rows, bom=bom)


LIST_HEADER = ["batch", "type", "company", "colour", "status", "started", "duration_s",
               "trigger", "done", "failed", "skipped", "currency", "selected_amount",
               "posted_amount",
               "settings_version"]
ITEM_HEADER = ["record", "date", "party", "state", "cw_amount", "qbo_entity", "qbo_id",
               "qbo_doc_number", "qbo_amount", "cw_tax", "qbo_tax", "currency",
               "cw_batch_identifier", "message", "fix_hint", "warnings"]


def _windows(batches: Iterable[Batch], size: int = 500) -> Iterator[list[Batch]]:
    window: list[Batch] = []
    for batch in batches:
        window.append(batch)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def _list_rows(session: Session, batches: Iterable[Batch]) -> Iterator[list[Any]]:
    """One row per batch and currency, so amount and currency are columns of their own and
    a sum over one currency's rows is right; what the batch selected and what it posted
    sit side by side (0 where nothing was posted). A batch without totals still gets its
    row. Posted amounts are read a window of 500 batches at a time."""
    for window in _windows(batches):
        posted = posted_totals(session, window)
        for b in window:
            counts = b.counts or {}
            head = [b.id, b.type.value, b.company.qbo_name if b.company else b.company_id,
                    b.colour, b.status.value, b.started_at or b.created_at,
                    round(b.duration_seconds or 0), b.trigger_label, counts.get("done", 0),
                    counts.get("failed", 0), counts.get("skipped", 0)]
            selected, done = b.totals or {}, posted.get(b.id, {})
            currencies = sorted({*selected, *done})
            if not currencies:
                yield [*head, None, None, None, b.settings_version_id]
            for currency in currencies:
                yield [*head, currency, Decimal(selected.get(currency, "0.00")),
                       Decimal(done.get(currency, "0.00")), b.settings_version_id]


def list_csv(session: Session, batches: Iterable[Batch], *, bom: bool = False
             ) -> Iterator[str]:
    return csv_rows(LIST_HEADER, _list_rows(session, batches), bom=bom)


def items_csv(items: Iterable[BatchItem], *, bom: bool = False) -> Iterator[str]:
    return csv_rows(ITEM_HEADER, ([
        i.cw_number, i.record_date, i.party, i.state.value, i.cw_amount, i.qbo_entity,
        i.qbo_id, i.qbo_doc_number, i.qbo_amount, i.cw_tax, i.qbo_tax, i.currency,
        i.cw_batch_identifier, i.message, i.fix_hint, " | ".join(i.warnings or [])]
        for i in items), bom=bom)


# ---- review helpers (routes.batches) ----------------------------------------------------

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

    Empty when the batch has no snapshot yet. Reads only (GET never writes).
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
