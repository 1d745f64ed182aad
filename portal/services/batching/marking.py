"""Marking: one ConnectWise accounting batch per record (SPEC 6.4), several in flight.

Marking keeps its own idempotency key instead of `perform_once`: the identifier
(`YYYY-MM-DD-I10042`, `-r2`, `-2`) is unique in ConnectWise and its entries name the
record, so "a batch with this identifier whose every entry references this record" proves
the record is marked. Before any repeat the identifier is looked up; an identifier held by
other records moves to the next suffix. The engine commits `mark_attempts` (the intent)
before it hands a record to the pool, so after a crash the next run looks first.

The pool's threads only talk to ConnectWise (the shared limit of calls in flight applies
to each call); results go back to the engine, which writes them with its own session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient, cond
from portal.integrations.http import backoff

log = logging.getLogger(__name__)
MARK_TRIES = 5
MAX_SUFFIX = 20
MAX_IDENTIFIER = 50


@dataclass(frozen=True)
class MarkJob:
    """What marking one record needs: plain data, no ORM object crosses threads."""

    item_id: int
    base: str  # the identifier without the -N suffix (with -r<g> from generation 2)
    identifier: str  # where to start: the stored identifier, or the base
    gl_entry_ids: tuple[int, ...]
    entry_id: Any  # what every entry of the batch must reference (or a set: one of them)
    look_first: bool  # an earlier attempt may have created it
    entry_field: str | None = None  # the entry field naming the record (else the marker's)
    match_ids: bool = False  # the batch's entries must be exactly `gl_entry_ids`


@dataclass
class MarkResult:
    item_id: int
    marked: bool
    identifier: str
    batch_id: int | None = None
    message: str | None = None
    hint: str | None = None
    status: int | None = None
    events: list[str] = field(default_factory=list)


def find_batch(cw: ConnectWiseClient, identifier: str) -> dict[str, Any] | None:
    rows = cw.get("/finance/accounting/batches",
                  conditions=cond("batchIdentifier", "=", identifier), pageSize=1)
    return rows[0] if rows else None


def _referenced(entry: dict[str, Any], entry_field: str) -> str:
    """The id an entry's reference holds (a reference object, or a bare id as `transfer`)."""
    value = entry.get(entry_field)
    return str(value.get("id") if isinstance(value, dict) else value)


def batch_holds(cw: ConnectWiseClient, batch_id: int, entry_field: str, entry_id: Any,
                gl_entry_ids: tuple[int, ...] | None = None) -> bool:
    """Whether every entry of the accounting batch references this record: its id, or one
    of its ids (a set, for a record that groups several, e.g. expenses); with
    `gl_entry_ids`, the entries must be exactly those GL entries."""
    ids = {str(i) for i in entry_id} if isinstance(entry_id, (set, frozenset)) \
        else {str(entry_id)}
    entries = list(cw.iter_all(f"/finance/accounting/batches/{batch_id}/entries"))
    if gl_entry_ids is not None and sorted(int(e.get("id") or 0) for e in entries) != \
            sorted(gl_entry_ids):
        return False
    return bool(entries) and all(_referenced(e, entry_field) in ids
                                 for e in entries)


def _suffixed(base: str, number: int) -> str:
    return base if number == 1 else f"{base}-{number}"


def _suffix_of(base: str, identifier: str) -> int:
    if identifier == base:
        return 1
    try:
        return int(identifier.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 1


class Marker:
    """Marks one record per call of `mark`, following the rules above."""

    def __init__(self, cw: ConnectWiseClient, *, export_flag: str, entry_field: str,
                 tries: int = MARK_TRIES, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cw = cw
        self.export_flag = export_flag
        self.entry_field = entry_field
        self.tries = tries
        self.sleep = sleep

    def _ours(self, identifier: str, job: MarkJob) -> tuple[bool, int | None]:
        """(taken, batch id): whether the identifier exists, and its id when it is ours."""
        existing = find_batch(self.cw, identifier)
        if existing is None:
            return False, None
        if batch_holds(self.cw, int(existing["id"]), job.entry_field or self.entry_field,
                       job.entry_id, job.gl_entry_ids if job.match_ids else None):
            return True, int(existing["id"])
        return True, None

    def mark(self, job: MarkJob) -> MarkResult:
        if len(job.base) > MAX_IDENTIFIER:
            return MarkResult(job.item_id, False, job.base,
                              message=f"Accounting batch identifier '{job.base}' is longer "
                                      f"than ConnectWise's {MAX_IDENTIFIER} characters.",
                              hint="Shorten the record number in ConnectWise, then retry.")
        suffix = _suffix_of(job.base, job.identifier)
        look = job.look_first
        events: list[str] = []
        failures = 0
        entries_taken = False
        while True:
            identifier = _suffixed(job.base, suffix)
            try:
                if look:
                    taken, batch_id = self._ours(identifier, job)
                    if batch_id is not None:
                        return MarkResult(job.item_id, True, identifier, batch_id,
                                          events=events)
                    if taken or entries_taken:
                        suffix += 1  # another record's batch, or ours under a later suffix
                        if suffix > MAX_SUFFIX:
                            return self._taken(job, events, entries_taken)
                        continue
                self.cw.request("POST", "/finance/accounting/batches", json={
                    "batchIdentifier": identifier, self.export_flag: True,
                    "processedRecordIds": list(job.gl_entry_ids)})
                return MarkResult(job.item_id, True, identifier, events=events)
            except errors.Invalid as exc:
                text = str(exc).lower()
                if "already" not in text and "objectexists" not in text.replace(" ", ""):
                    return MarkResult(job.item_id, False, identifier,
                                      message=f"ConnectWise refused the accounting batch: "
                                              f"{exc.message}",
                                      hint="Fix the record in ConnectWise, then retry.",
                                      status=exc.status, events=events)
                entries_taken = entries_taken or "in a batch" in text
                look = True  # whose is it? the lookup decides
            except errors.Forbidden:
                return MarkResult(job.item_id, False, identifier,
                                  message="ConnectWise refused to create the accounting batch.",
                                  hint="Grant Finance › Accounting Interface › Add to the API "
                                       "member's security role, then retry.", status=403,
                                  events=events)
            except errors.IntegrationError as exc:
                failures += 1
                events.append(f"marking: {exc.message}")
                look = True  # the batch may have been created before the answer was lost
                if failures >= self.tries:
                    return MarkResult(job.item_id, False, identifier,
                                      message=f"Posted to QuickBooks but not marked in "
                                              f"ConnectWise: {exc.message}",
                                      hint="Retry the batch: it marks the record without "
                                           "posting again.", status=exc.status, events=events)
                self.sleep(backoff(failures - 1, base=1.0, cap=16.0))

    @staticmethod
    def _taken(job: MarkJob, events: list[str], entries_taken: bool) -> MarkResult:
        if entries_taken:
            message = ("ConnectWise says the GL entries of this record are already in an "
                       "accounting batch that portal did not create.")
            hint = ("Find that accounting batch in ConnectWise (Finance › Accounting "
                    "Interface); delete it if it is wrong, then retry.")
        else:
            message = (f"Accounting batch identifier '{job.base}' is taken in ConnectWise by "
                       "other records.")
            hint = "Delete or rename that accounting batch, then retry."
        return MarkResult(job.item_id, False, job.base, message=message, hint=hint,
                          events=events)


class MarkingPool:
    """Marks records on `workers` threads while the engine goes on posting (SPEC 6.6: the
    chunk posted first is marked while the next chunk posts)."""

    def __init__(self, marker: Marker, workers: int = 4) -> None:
        self.marker = marker
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cw-mark")
        self._futures: set[Future[MarkResult]] = set()

    def submit(self, jobs: list[MarkJob]) -> None:
        for job in jobs:
            self._futures.add(self._pool.submit(self._safe, job))

    def _safe(self, job: MarkJob) -> MarkResult:
        try:
            return self.marker.mark(job)
        except Exception as exc:  # noqa: BLE001 - reported on the record, never lost
            log.exception("item=%s marking failed unexpectedly", job.item_id)
            return MarkResult(job.item_id, False, job.identifier,
                              message=f"Posted to QuickBooks but not marked in ConnectWise: "
                                      f"{exc.__class__.__name__}",
                              hint="Retry the batch: it marks the record without posting "
                                   "again.")

    @property
    def pending(self) -> int:
        return len(self._futures)

    def collect(self, *, wait_for: int = 0, timeout: float | None = None) -> list[MarkResult]:
        """Finished results; waits until at most `wait_for` remain in flight."""
        results: list[MarkResult] = []
        while True:
            done = {f for f in self._futures if f.done()}
            self._futures -= done
            results.extend(f.result() for f in done)
            if len(self._futures) <= wait_for:
                return results
            wait(self._futures, timeout=timeout, return_when=FIRST_COMPLETED)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
