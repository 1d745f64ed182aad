"""Clearing old transactions (SPEC 12): mark records already in QuickBooks as exported in
ConnectWise, without any QuickBooks traffic, so they are never posted.

A clearing is a batch of type `clear` per record type, whose items are the records. Each
item gets its chunk's identifier `CLEAR-<cut-off>-<letter>-<nnn>` when the clearing is
started (numbers continue after earlier clearings of that cut-off, because ConnectWise
refuses an identifier used before), so a resumed job makes the same chunks. A chunk's
accounting batch is looked up by identifier before it is created, and its records become
`cleared` only once it exists. Undo deletes the chunks' accounting batches; the records
return to unposted and become `uncleared`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
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
    RunStatus,
    User,
)
from portal.models.types import utcnow
from portal.services import audit, company_settings, runs, writes
from portal.services.batches import BatchRefused, _busy, _totals, live_items, recount
from portal.services.batching.engine import prefs_of
from portal.services.batching.marking import find_batch
from portal.services.batching.types import record_type
from portal.services.batching.types.base import CompanyFacts, Context, Filters, Record
from portal.services.mapping import MappingSet
from portal.services.runs import RunProgress

log = logging.getLogger(__name__)
PREVIEW_ROWS = 100
DEFAULT_CHUNK = 200
KINDS = (BatchType.INVOICE, BatchType.EXPENSE, BatchType.INVENTORY)


def chunk_size() -> int:
    """`clear_chunk_size` (global): records per CLEAR accounting batch."""
    if has_app_context():
        return int(current_app.config.get("CLEAR_CHUNK_SIZE") or DEFAULT_CHUNK)
    return DEFAULT_CHUNK


def built_kinds() -> list[BatchType]:
    """The record types this release can clear (those with a record type)."""
    found = []
    for kind in KINDS:
        try:
            record_type(kind)
        except KeyError:
            continue
        found.append(kind)
    return found


# ---- what would be cleared ------------------------------------------------------------------

@dataclass
class Candidate:
    kind: BatchType
    record: Record


@dataclass
class ClearPreview:
    candidates: list[Candidate]
    totals: list[tuple[str, str, int, Decimal]] = field(default_factory=list)  # kind, cur
    oldest: date | None = None
    newest: date | None = None

    @property
    def count(self) -> int:
        return len(self.candidates)

    @property
    def first(self) -> list[Candidate]:
        return self.candidates[:PREVIEW_ROWS]


def candidates(session: Session, company: Company, cw: ConnectWiseClient,
               kinds: Sequence[BatchType], cut_off: date,
               location_ids: Sequence[int] = ()) -> ClearPreview:
    """The unposted records dated on or before the cut-off, not live in any batch."""
    found: list[Candidate] = []
    settings = company_settings.get_settings(session, company)
    for kind in kinds:
        rtype = record_type(kind)
        rows = rtype.list_unposted(cw, Filters(location_ids=tuple(location_ids),
                                               date_to=cut_off, settings=settings))
        rows = [r for r in rows if (r.day is None or r.day <= cut_off) and not r.held]
        live = live_items(session, [r.key for r in rows])
        found += [Candidate(kind, r) for r in rows if r.key not in live]
    found.sort(key=lambda c: (c.kind.value, c.record.day or date.min, c.record.number))
    home = company.home_currency or "USD"
    sums: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for c in found:
        key = (c.kind.label, c.record.currency or home)
        count, total = sums.get(key, (0, Decimal(0)))
        sums[key] = (count + 1, total + Decimal(c.record.total))
    days = [c.record.day for c in found if c.record.day]
    return ClearPreview(found, [(k, cur, n, t) for (k, cur), (n, t) in sorted(sums.items())],
                        min(days, default=None), max(days, default=None))


def csv_rows(view: ClearPreview) -> Iterator[list[Any]]:
    yield ["type", "date", "number", "party", "kind", "total", "currency", "location"]
    for c in view.candidates:
        r = c.record
        yield [c.kind.label, r.day.isoformat() if r.day else "", r.number, r.party, r.kind,
               f"{Decimal(r.total):.2f}", r.currency, r.location]


# ---- starting, undoing ----------------------------------------------------------------------

def _next_chunk(session: Session, prefix: str) -> int:
    """The next free chunk number after earlier clearings of this cut-off and letter."""
    used = session.scalars(sa.select(BatchItem.cw_batch_identifier).join(Batch).where(
        Batch.type == BatchType.CLEAR, BatchItem.cw_batch_identifier.like(f"{prefix}%")))
    numbers = [int(text[len(prefix):]) for text in used
               if text and text[len(prefix):].isdigit()]
    return max(numbers, default=0) + 1


def _new_batches(session: Session, company: Company, run: JobRun, user: User | None,
                 chosen: list[Candidate], options: dict[str, Any],
                 identifier: Any) -> list[Batch]:
    batches = []
    for kind, group in groupby(sorted(chosen, key=lambda c: c.kind.value),
                               key=lambda c: c.kind):
        records = [c.record for c in group]
        batch = Batch(type=BatchType.CLEAR, company_id=company.id, run_id=run.id,
                      status=BatchStatus.QUEUED, colour="grey",
                      trigger=f"user:{user.id}" if user else "system",
                      started_by_id=user.id if user else None,
                      options={**options, "record_type": kind.value}, counts={},
                      totals=_totals((r.currency or company.home_currency or "USD", r.total)
                                     for r in records), preflight=[])
        session.add(batch)
        session.flush()
        letter = record_type(kind).letter
        names = identifier(letter, records)
        session.add_all(BatchItem(
            batch_id=batch.id, record_key=r.key, position=n, cw_unposted_id=r.unposted_id,
            cw_id=r.cw_id, cw_number=r.number, cw_kind=r.kind, party=r.party,
            record_date=r.day, cw_amount=Decimal(r.total), currency=r.currency or None,
            gl_entry_ids=list(r.gl_entry_ids), source_refs=list(r.source_refs),
            state=ItemState.SELECTED, warnings=[], cw_batch_identifier=names[n])
            for n, r in enumerate(records))
        batch.counts = {ItemState.SELECTED.value: len(records)}
        batches.append(batch)
    session.flush()
    return batches


def start(session: Session, company: Company, cw: ConnectWiseClient, *,
          kinds: Sequence[BatchType], cut_off: date, location_ids: Sequence[int],
          confirm: str, user: User | None) -> JobRun:
    """Start a clearing: the records are read again, and their count must be what the
    person typed. The caller commits, then enqueues."""
    view = candidates(session, company, cw, kinds, cut_off, location_ids)
    if not view.count:
        raise BatchRefused(f"Nothing to clear: no unposted record is dated on or before "
                           f"{cut_off}.")
    if str(confirm).strip() != str(view.count):
        raise BatchRefused(f"Type the number of records, {view.count}, to confirm the "
                           "clearing.")
    try:
        run = runs.start(session, RunKind.CLEAR, user=user, company_id=company.id,
                         total=view.count)
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    size = chunk_size()
    stamp = cut_off.strftime("%Y%m%d")

    def names(letter: str, records: list[Record]) -> list[str]:
        prefix = f"CLEAR-{stamp}-{letter}-"
        first = _next_chunk(session, prefix)
        return [f"{prefix}{first + n // size:03d}" for n in range(len(records))]

    batches = _new_batches(session, company, run, user, view.candidates,
                           {"cut_off": cut_off.isoformat(), "locations": list(location_ids),
                            "go_live": (cut_off + timedelta(days=1)).isoformat()}, names)
    audit.record(session, "clear.start", target_type="job_run", target_id=run.id,
                 company_id=company.id,
                 after={"cut_off": cut_off.isoformat(), "records": view.count,
                        "types": [k.value for k in kinds], "batches": [b.id for b in batches],
                        "locations": list(location_ids)})
    return run


def mark_handled(session: Session, company: Company, cw: ConnectWiseClient, *,
                 kind: BatchType, cw_id: int, reason: str, user: User | None) -> JobRun:
    """One record cleared from the selection screen ("Mark as handled without posting"),
    with the reason, as `CLEAR-<today>-<letter><number>`. The caller commits, enqueues."""
    reason = (reason or "").strip()
    if not reason:
        raise BatchRefused("Give a reason for marking the record as handled.")
    rtype = record_type(kind)
    settings = company_settings.get_settings(session, company)
    record = next((r for r in rtype.list_unposted(cw, Filters(settings=settings))
                   if r.cw_id == cw_id), None)
    if record is None:
        raise BatchRefused("That record is no longer unposted in ConnectWise; refresh the "
                           "list.")
    if live_items(session, [record.key]):
        raise BatchRefused(f"{rtype.label(record).capitalize()} is in another batch.")
    try:
        run = runs.start(session, RunKind.CLEAR, user=user, company_id=company.id, total=1)
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    today = datetime.now(ZoneInfo(settings.time_zone or "UTC")).date().strftime("%Y%m%d")
    _new_batches(session, company, run, user, [Candidate(kind, record)],
                 {"reason": reason[:500], "single": True},
                 lambda letter, records: [f"CLEAR-{today}-{letter}{records[0].number}"[:50]])
    audit.record(session, "clear.record", target_type="job_run", target_id=run.id,
                 company_id=company.id, after={"record": record.number, "reason": reason})
    return run


def undo(session: Session, batch: Batch, identifier: str | None, user: User | None) -> JobRun:
    """Undo a clearing batch (every chunk) or one chunk: a run that deletes the chunks'
    ConnectWise accounting batches. The caller commits, then enqueues."""
    if batch.type is not BatchType.CLEAR:
        raise BatchRefused(f"Batch #{batch.id} is not a clearing.")
    if batch.active:
        raise BatchRefused(f"Batch #{batch.id} is still running.")
    cleared = set(session.scalars(sa.select(BatchItem.cw_batch_identifier).where(
        BatchItem.batch_id == batch.id, BatchItem.state == ItemState.CLEARED)))
    chunks = sorted(c for c in cleared if c and (identifier is None or c == identifier))
    if not chunks:
        raise BatchRefused("Nothing of this clearing is left to undo.")
    company = session.get(Company, batch.company_id)
    try:
        run = runs.start(session, RunKind.CLEAR, user=user, company_id=company.id,
                         total=len(chunks))
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    batch.run_id = run.id
    batch.status = BatchStatus.QUEUED
    batch.options = {**(batch.options or {}), "undo": chunks}
    audit.record(session, "clear.undo", target_type="batch", target_id=batch.id,
                 company_id=company.id, after={"chunks": chunks})
    return run


def chunks_of(session: Session, batch: Batch) -> list[tuple[str, int, str]]:
    """(identifier, records, state) per chunk of a clearing batch."""
    rows = session.execute(sa.select(BatchItem.cw_batch_identifier, BatchItem.state,
                                     sa.func.count()).where(BatchItem.batch_id == batch.id)
                           .group_by(BatchItem.cw_batch_identifier, BatchItem.state)
                           .order_by(BatchItem.cw_batch_identifier))
    return [(name or "", count, state.value) for name, state, count in rows]


def set_go_live(session: Session, company: Company, day: date, by: User | None) -> None:
    company_settings.set_value(session, company, "go_live_date", day, by)


# ---- the job ---------------------------------------------------------------------------------

class Clearer:
    def __init__(self, session: Session, run: JobRun, progress: RunProgress,
                 cw: ConnectWiseClient) -> None:
        self.session = session
        self.run = run
        self.token = run.claim_token or ""
        self.progress = progress
        self.cw = cw

    def _commit(self) -> None:
        if not runs.owns(self.session, self.run.id, self.token):
            self.session.rollback()
            raise runs.LostClaim(f"clearing run {self.run.id} was taken over")
        self.session.commit()

    def work(self) -> tuple[RunStatus, str]:
        batches = list(self.session.scalars(sa.select(Batch).where(
            Batch.run_id == self.run.id).order_by(Batch.id)))
        total = self.run.total or 0
        self.progress.start(total, "Clearing old transactions", phase="clearing")
        failed = 0
        for batch in batches:
            batch.status = BatchStatus.RUNNING
            batch.started_at = batch.started_at or utcnow()
            self._commit()
            if (batch.options or {}).get("undo"):
                failed += self._undo(batch)
            else:
                failed += self._clear(batch)
            recount(self.session, batch)
            batch.status = BatchStatus.FINISHED
            batch.finished_at = utcnow()
            counts = batch.counts or {}
            batch.colour = "red" if counts.get("failed") or counts.get("selected") else (
                "grey" if not counts.get("cleared") else "green")
            batch.message = (f"{counts.get('cleared', 0)} cleared, "
                             f"{counts.get('uncleared', 0)} uncleared"
                             + (f", {counts.get('failed', 0)} failed" if counts.get("failed")
                                else ""))
            self._commit()
        message = "; ".join(b.message or "" for b in batches)[:500]
        return (RunStatus.FAILED if failed else RunStatus.SUCCEEDED), message

    def _clear(self, batch: Batch) -> int:
        rtype = record_type(batch.options["record_type"])
        company = self.session.get(Company, batch.company_id)
        settings = company_settings.get_settings(self.session, company)
        ctx = Context(CompanyFacts.of(company), settings,
                      MappingSet.load(self.session, company, prefs_of(settings)),
                      {"summary": "Default"})
        items = list(self.session.scalars(sa.select(BatchItem).where(
            BatchItem.batch_id == batch.id, BatchItem.state == ItemState.SELECTED)
            .order_by(BatchItem.cw_batch_identifier, BatchItem.position)))
        failed = 0
        for identifier, group in groupby(items, key=lambda i: i.cw_batch_identifier or ""):
            chunk = list(group)
            try:
                self._chunk(rtype, ctx, identifier, chunk)
            except errors.IntegrationError as exc:
                for item in chunk:
                    item.message = f"Not cleared: {exc.message}"
                    item.fix_hint = "Undo or retry the clearing once ConnectWise answers."
                    item.state = ItemState.FAILED
                failed += len(chunk)
            self.progress.advance(len(chunk))
            self._commit()
        go_live = (batch.options or {}).get("go_live")
        if go_live and not failed:
            set_go_live(self.session, company, date.fromisoformat(go_live), batch.started_by)
            audit.record(self.session, "clear.done", target_type="batch", target_id=batch.id,
                         company_id=company.id, actor=batch.started_by.email
                         if batch.started_by else None,
                         after={"go_live_date": go_live, "records": len(items)})
        return failed

    def _chunk(self, rtype: Any, ctx: Context, identifier: str, chunk: list[BatchItem]
               ) -> None:
        """One CLEAR accounting batch: looked up first (a crash after the create), else
        created from the records' GL entry ids, read from the export now."""
        from portal.services.batching.engine import record_of

        existing = find_batch(self.cw, identifier)
        if existing is None:
            window = rtype.read(self.cw, [record_of(i) for i in chunk], ctx)
            gl_ids: list[int] = []
            for item in chunk:
                ids = rtype.gl_entry_ids(window, record_of(item))
                item.gl_entry_ids = ids or []
                gl_ids += ids or []
            missing = [i for i in chunk if not i.gl_entry_ids]
            for item in missing:
                item.state = ItemState.FAILED
                item.message = "Not cleared: ConnectWise's export does not hold it (posted " \
                               "meanwhile, or no GL entries)."
            chunk = [i for i in chunk if i.gl_entry_ids]
            if not chunk:
                return
            self._commit()  # the GL entry ids are kept before the batch is created
            self.cw.request("POST", "/finance/accounting/batches", json={
                "batchIdentifier": identifier, rtype.export_flag: True,
                "processedRecordIds": gl_ids})
            existing = find_batch(self.cw, identifier) or {"id": None}
        for item in chunk:
            item.state = ItemState.CLEARED
            item.cw_batch_id = existing.get("id")
            item.message = (item.batch.options or {}).get("reason")
            self.session.add(BatchItemEvent(batch_id=item.batch_id, item_id=item.id,
                                            from_state="selected", to_state="cleared",
                                            endpoint="POST /finance/accounting/batches",
                                            text=identifier))

    def _undo(self, batch: Batch) -> int:
        failed = 0
        for identifier in batch.options.get("undo") or []:
            try:
                found = find_batch(self.cw, identifier)
                if found is not None:
                    batch_id = int(found["id"])
                    def call(_rid: str, b: int = batch_id) -> dict[str, Any]:
                        self.cw.request("DELETE", f"/finance/accounting/batches/{b}")
                        return {"id": b}

                    writes.perform_once(
                        self.session, target="cw", operation="cw.accounting_batch.delete",
                        key=identifier, call=call,
                        lookup=lambda i=identifier, b=batch_id: None if find_batch(
                            self.cw, i) else {"id": b},
                        params={"identifier": identifier, "batch_id": batch_id},
                        company_id=batch.company_id, run_id=self.run.id)
            except errors.IntegrationError as exc:
                failed += 1
                batch.message = f"Undo of {identifier} failed: {exc.message}"[:500]
                self._commit()
                continue
            self.session.execute(sa.update(BatchItem).where(
                BatchItem.batch_id == batch.id, BatchItem.cw_batch_identifier == identifier,
                BatchItem.state == ItemState.CLEARED).values(
                state=ItemState.UNCLEARED, message=f"Clearing undone ({identifier})"))
            self.progress.advance(1)
            self._commit()
        batch.options = {k: v for k, v in batch.options.items() if k != "undo"}
        return failed


def clear_run(session: Session, run: JobRun, progress: RunProgress, cw: ConnectWiseClient
              ) -> tuple[RunStatus, str]:
    return Clearer(session, run, progress, cw).work()


# ---- the checklist ---------------------------------------------------------------------------

def checklist_columns() -> list[Any]:
    """What step 7 reads, as columns the dashboard's one statement selects."""
    from portal.models import AuditEvent

    ran = sa.select(Batch.id, Batch.message).where(
        Batch.type == BatchType.CLEAR, Batch.status == BatchStatus.FINISHED
    ).order_by(Batch.id.desc()).limit(1)
    return [ran.with_only_columns(Batch.id).scalar_subquery().label("clear_id"),
            ran.with_only_columns(Batch.message).scalar_subquery().label("clear_message"),
            sa.select(AuditEvent.id).where(AuditEvent.action == "clear.none_needed")
            .limit(1).scalar_subquery().label("clear_none_needed")]


def checklist_state(row: Any) -> tuple[str, str]:
    """Step 7: done when a clearing ran, or an admin confirmed none is needed."""
    if row.clear_id is not None:
        return "done", f"Clearing #{row.clear_id}: {row.clear_message or 'finished'}."
    if row.clear_none_needed is not None:
        return "done", "An admin confirmed that no clearing is needed."
    return "todo", "Clear the transactions already in QuickBooks, or confirm none need it."
