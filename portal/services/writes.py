"""perform_once(): a write to ConnectWise or QuickBooks that happens at most once, even when
the worker dies between the call and its bookkeeping.

For writes with a natural key on the remote side (a QuickBooks document's DocNumber and our
`portal:<token>` marker, a ConnectWise accounting batch's identifier) the batch engine looks
the key up before it writes again. Writes without one (a payment row, an email, a delete)
come here: the intent is committed as an `external_write` row (`sending`) before the call,
settled (`done` or `failed`) after it, and a row found `sending` later (a crash, a lost
answer) is first looked up on the remote side by the operation's settler; only a write that
is not there is sent again, with the same request id. The reconciler of the scheduler tick
settles rows whose run is gone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.models import ExternalWrite, JobRun, RunStatus, WriteStatus
from portal.models.types import utcnow

log = logging.getLogger(__name__)

# (session, row) -> the remote object when the write is found there, else None
Settler = Callable[[Session, ExternalWrite], "dict[str, Any] | None"]
_SETTLERS: dict[str, Settler] = {}
SETTLE_AFTER = timedelta(seconds=60)


def settler(operation: str) -> Callable[[Settler], Settler]:
    """Register how the reconciler finds a write of `operation` on the remote side (it
    builds its own clients from the session; the row's `params` say what to look for)."""

    def register(function: Settler) -> Settler:
        _SETTLERS[operation] = function
        return function

    return register


@dataclass(frozen=True)
class Outcome:
    """What perform_once did: `sent` is False when an earlier attempt already wrote it."""

    write: ExternalWrite
    result: dict[str, Any]
    sent: bool


def _remote_id(result: dict[str, Any] | None) -> str | None:
    if not result:
        return None
    value = result.get("id", result.get("Id"))
    return str(value) if value is not None else None


def _settle(session: Session, row: ExternalWrite, status: WriteStatus,
            result: dict[str, Any] | None = None, error: str | None = None) -> None:
    row.status = status
    row.result = result
    row.remote_id = _remote_id(result)
    row.error = error
    row.settled_at = utcnow()
    session.commit()


def perform_once(session: Session, *, target: str, operation: str, key: str,
                 call: Callable[[str], dict[str, Any]],
                 lookup: Callable[[], dict[str, Any] | None],
                 params: dict[str, Any] | None = None, company_id: int | None = None,
                 run_id: int | None = None) -> Outcome:
    """Write once for `key`: commit the intent, `call(request_id)`, commit the result.

    `lookup()` finds the write on the remote side (used before any repeat); `params` are
    stored on the row for the reconciler's settler and must hold no secret. Commits; the
    caller's pending work is committed with the intent. A refused write (IntegrationError
    `Invalid`, `NotFound`, `Forbidden`) settles `failed` and re-raises; an unknown outcome
    (`Transient`, or any other error) leaves the row `sending` and re-raises, so the next
    attempt or the reconciler looks it up first.
    """
    row = session.scalar(sa.select(ExternalWrite).where(
        ExternalWrite.target == target, ExternalWrite.operation == operation,
        ExternalWrite.key == key))
    if row is not None and row.status is WriteStatus.DONE:
        return Outcome(row, row.result or {}, sent=False)
    if row is not None and row.status in (WriteStatus.SENDING, WriteStatus.UNKNOWN):
        session.commit()  # nothing held open across the lookup
        found = lookup()
        if found is not None:
            _settle(session, row, WriteStatus.DONE, found)
            return Outcome(row, found, sent=False)
    if row is None:
        row = ExternalWrite(target=target, operation=operation, key=key,
                            company_id=company_id, run_id=run_id,
                            request_id=uuid.uuid4().hex, params=params or {})
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # another process wrote the intent first: its write
            raise errors.Transient(f"{operation} for {key} is being written by another "
                                   "process.") from None
    row.status = WriteStatus.SENDING
    row.attempts += 1
    row.run_id = run_id if run_id is not None else row.run_id
    session.commit()  # the intent is durable before the remote side hears of it
    try:
        result = call(row.request_id)
    except (errors.Invalid, errors.NotFound, errors.Forbidden) as exc:
        _settle(session, row, WriteStatus.FAILED, error=str(exc))
        raise
    except BaseException:
        session.rollback()  # the row stays `sending`: looked up before any repeat
        raise
    _settle(session, row, WriteStatus.DONE, result)
    return Outcome(row, result, sent=True)


def open_writes(session: Session, older_than: timedelta = SETTLE_AFTER) -> list[ExternalWrite]:
    """Rows still `sending` or `unknown` whose run (if any) is no longer working on them."""
    before = utcnow() - older_than
    active = sa.select(JobRun.id).where(JobRun.status.in_([RunStatus.QUEUED,
                                                           RunStatus.RUNNING]))
    return list(session.scalars(sa.select(ExternalWrite).where(
        ExternalWrite.status.in_([WriteStatus.SENDING, WriteStatus.UNKNOWN]),
        ExternalWrite.updated_at < before,
        sa.or_(ExternalWrite.run_id.is_(None), ExternalWrite.run_id.not_in(active)))
        .order_by(ExternalWrite.id).limit(200)))


SETTLER_MODULES = ("portal.services.cw_payments",)  # each registers its operations


def reconcile(session: Session) -> int:
    """Settle writes left open by a crash: `sending` becomes `unknown` (the outcome is not
    known), then the operation's settler looks it up; found means `done`. Returns how many
    were settled. Never writes to the remote side: a write that is not found is repeated
    only by its owner's next attempt, which knows why it was made."""
    from importlib import import_module

    for name in SETTLER_MODULES:
        import_module(name)
    settled = 0
    for row in open_writes(session):
        if row.status is WriteStatus.SENDING:
            row.status = WriteStatus.UNKNOWN
            session.commit()
        function = _SETTLERS.get(row.operation)
        if function is None:
            continue
        try:
            found = function(session, row)
        except errors.IntegrationError as exc:
            log.warning("write=%s %s could not be looked up: %s", row.id, row.operation, exc)
            session.rollback()
            continue
        if found is not None:
            _settle(session, row, WriteStatus.DONE, found)
            settled += 1
        else:
            row.updated_at = utcnow()  # asked again after SETTLE_AFTER
            session.commit()
    return settled
