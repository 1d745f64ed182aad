"""The run base every long job shares: start, claim, heartbeat, progress, takeover, finish.

A run is claimed with one conditional UPDATE that writes a fresh `claim_token`; every later
write of the run is conditional on that token, so a worker that was taken over stops before
its next external call. While a run works, a heartbeat thread (its own connection) writes
`heartbeat_at` and the progress every second. The main thread never touches the `job_run`
row between claim and finish, so a long call to ConnectWise or QuickBooks cannot hold the
row locked and starve the beat; a run is judged dead only when its process is.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from portal.models import JobRun, RunKind, RunStatus, User
from portal.models.types import utcnow

log = logging.getLogger(__name__)
MAX_LOG_LINES = 200
BEAT_SECONDS = 1.0


class RunAlreadyActive(Exception):
    """Another run holds the company's lock."""

    def __init__(self, active_run: JobRun | None) -> None:
        super().__init__("another run is active")
        self.active_run = active_run


class LostClaim(Exception):
    """Another worker took the run over; stop before the next external call."""


def start(session: Session, kind: RunKind, *, user: User | None = None,
          company_id: int | None = None, total: int | None = None) -> JobRun:
    """Add a queued run and flush; the caller commits, then enqueues.

    The partial unique index makes this fail for a second active run of one company.
    """
    run = JobRun(kind=kind, status=RunStatus.QUEUED, company_id=company_id,
                 started_by_id=user.id if user else None, total=total,
                 message="Waiting for a worker", log=[])
    try:
        with session.begin_nested():  # a refused insert is undone alone, not the caller's work
            session.add(run)
            session.flush()
    except IntegrityError:
        active = session.scalar(sa.select(JobRun).where(
            JobRun.company_id == company_id,
            JobRun.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])))
        raise RunAlreadyActive(active) from None
    return run


def claim(session: Session, run_id: int, *, job_id: str | None, stale_seconds: int
          ) -> JobRun | None:
    """Take the run for this worker: one conditional UPDATE, so two workers never share it.

    Succeeds for a queued run, or a running one whose heartbeat is older than
    `stale_seconds` (its worker died). The new `claim_token` is on the returned row.
    Commits.
    """
    now = utcnow()
    stale_before = now - timedelta(seconds=stale_seconds)
    token = uuid.uuid4().hex
    result = session.execute(
        sa.update(JobRun)
        .where(JobRun.id == run_id,
               sa.or_(JobRun.status == RunStatus.QUEUED,
                      sa.and_(JobRun.status == RunStatus.RUNNING,
                              sa.or_(JobRun.heartbeat_at.is_(None),
                                     JobRun.heartbeat_at < stale_before))))
        .values(status=RunStatus.RUNNING, rq_job_id=job_id, heartbeat_at=now,
                claim_token=token, started_at=sa.func.coalesce(JobRun.started_at, now))
        .execution_options(synchronize_session=False))
    session.commit()
    if result.rowcount != 1:
        return None
    return session.get(JobRun, run_id, populate_existing=True)


def owns(session: Session, run_id: int, token: str) -> bool:
    """Whether `token` still holds the run (read without locking)."""
    return session.scalar(sa.select(JobRun.claim_token).where(JobRun.id == run_id)) == token


def finish(session: Session, run: JobRun, status: RunStatus, message: str,
           error: str | None = None, progress: RunProgress | None = None) -> bool:
    """Record the outcome (and the last progress figures) and commit; False (and nothing
    written) when another worker took the run over meanwhile."""
    if run.claim_token and not owns(session, run.id, run.claim_token):
        session.rollback()
        return False
    now = utcnow()
    if progress is not None:
        for name, value in progress.snapshot().items():
            setattr(run, name, value)
    run.status = status
    run.message = message[:500]
    run.error = error
    run.finished_at = now
    run.heartbeat_at = now
    if run.total is not None and status is RunStatus.SUCCEEDED:
        run.done = run.total
    session.commit()
    return True


def stale(session: Session, stale_seconds: int) -> list[JobRun]:
    """Queued runs and running ones whose worker stopped beating: to be enqueued again."""
    before = utcnow() - timedelta(seconds=stale_seconds)
    return list(session.scalars(sa.select(JobRun).where(sa.or_(
        JobRun.status == RunStatus.QUEUED,
        sa.and_(JobRun.status == RunStatus.RUNNING,
                sa.or_(JobRun.heartbeat_at.is_(None), JobRun.heartbeat_at < before))))))


def recent(session: Session, limit: int = 10) -> list[JobRun]:
    return list(session.scalars(sa.select(JobRun).order_by(JobRun.id.desc()).limit(limit)))


@dataclass(frozen=True)
class RunLabel:
    """What screens call a run. Runs of every kind share one numbering, so a run's number
    is never shown as if it were its batch's: a batch run names its batch."""

    text: str
    batch_id: int | None = None


def labels(session: Session, rows: Iterable[JobRun]) -> dict[int, RunLabel]:
    """Run id -> its label, with one query for the batches of the batch runs. A batch run
    whose batch went on in a later run (resumed) or is gone keeps only its run number."""
    from portal.models import Batch

    rows = list(rows)
    batch_runs = [r.id for r in rows if r.kind is RunKind.BATCH]
    owners: dict[int, int] = dict(session.execute(sa.select(Batch.run_id, Batch.id).where(
        Batch.run_id.in_(batch_runs))).all()) if batch_runs else {}
    found: dict[int, RunLabel] = {}
    for run in rows:
        if run.kind is not RunKind.BATCH:
            found[run.id] = RunLabel(f"{run.kind.label} (run #{run.id})")
        elif run.id in owners:
            found[run.id] = RunLabel(f"Batch #{owners[run.id]} (run #{run.id})",
                                     owners[run.id])
        else:
            found[run.id] = RunLabel(f"Batch run #{run.id}")
    return found


# ---- progress and heartbeat --------------------------------------------------------------

class RunProgress:
    """What a run is doing: phase, done of total, a status line and a log, held in memory
    (thread-safe) and written to the run's row by its `Heartbeat`, so reporting progress
    never commits, or locks, the job's own session."""

    def __init__(self, run: JobRun) -> None:
        self._lock = threading.Lock()
        self.run_id = run.id
        self._values: dict[str, Any] = {
            "done": run.done or 0, "total": run.total, "message": run.message,
            "phase": run.phase, "phase_started_at": run.phase_started_at,
            "log": list(run.log or []), "steps": dict(run.steps or {})}
        self._dirty = True

    def step(self, name: str, total: int = 0) -> None:
        """Count a step of the run (its own bar): begin it, or add `total` more units to
        it. Its clock starts at the first call, so its ETA is its own rate."""
        with self._lock:
            steps = self._values["steps"]
            found = steps.get(name)
            if found is None:
                steps[name] = {"done": 0, "total": total,
                               "started": utcnow().isoformat(timespec="seconds")}
            else:
                steps[name] = {**found, "total": found["total"] + total}
            self._dirty = True

    def tick(self, name: str, count: int = 1) -> None:
        with self._lock:
            found = self._values["steps"].get(name)
            if found is not None:
                self._values["steps"][name] = {**found, "done": found["done"] + count}
                self._dirty = True

    def start(self, total: int | None, message: str | None = None,
              phase: str | None = None) -> None:
        """Begin a step of `total` units (a new phase resets its clock)."""
        with self._lock:
            self._values["total"] = total
            self._values["done"] = 0
            if phase is not None:
                self._values["phase"] = phase
                self._values["phase_started_at"] = utcnow()
            self._dirty = True
        self.message(message or "Started")

    def phase(self, name: str, message: str | None = None) -> None:
        """Enter a phase whose progress is counted elsewhere (e.g. by item states)."""
        with self._lock:
            self._values["phase"] = name
            self._values["phase_started_at"] = utcnow()
            self._dirty = True
        if message:
            self.message(message)

    def advance(self, count: int = 1, message: str | None = None) -> None:
        with self._lock:
            self._values["done"] += count
            if message is not None:
                self._values["message"] = message[:500]
            self._dirty = True

    def message(self, text: str, level: str = "info", **extra: Any) -> None:
        """Set the status line and append it to the run's log."""
        entry = {"at": utcnow().isoformat(timespec="seconds"), "level": level, "text": text,
                 **extra}
        with self._lock:
            self._values["message"] = text[:500]
            self._values["log"] = [*self._values["log"], entry][-MAX_LOG_LINES:]
            self._dirty = True

    @property
    def done(self) -> int:
        with self._lock:
            return int(self._values["done"])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self._copy()

    def _copy(self) -> dict[str, Any]:
        return {k: (list(v) if k == "log" else dict(v) if k == "steps" else v)
                for k, v in self._values.items()}

    def take(self) -> dict[str, Any] | None:
        """The values to write if anything changed since the last write."""
        with self._lock:
            if not self._dirty:
                return None
            self._dirty = False
            return self._copy()


class Heartbeat:
    """A daemon thread beating for one claimed run on its own database connection.

    Every `every` seconds it writes `heartbeat_at` (and the progress when it changed),
    conditional on the claim token; when no row matches, the run was taken over and
    `lost` is set. Stopping writes a last beat. Use as a context manager.

    SQLite allows one writer, and a transaction that read before another connection
    committed may not write afterwards (SQLITE_BUSY_SNAPSHOT). So on SQLite, given the
    job's session, the beat waits until that session is between transactions (the job
    keeps them short and never holds one across an outside call); a job in one
    transaction for longer than a beat simply skips that beat.
    """

    def __init__(self, engine: Engine, run_id: int, token: str,
                 progress: RunProgress | None = None, every: float = BEAT_SECONDS,
                 session: Session | None = None) -> None:
        self.engine = engine
        self.run_id = run_id
        self.token = token
        self.progress = progress
        self.every = every
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-run-{run_id}",
                                        daemon=True)
        self._gate: threading.Lock | None = None
        self._session = session if engine.dialect.name == "sqlite" else None
        if self._session is not None:
            self._gate = threading.Lock()
            event.listen(self._session, "after_begin", self._closed)
            event.listen(self._session, "after_transaction_end", self._opened)

    def _closed(self, _session: Session, transaction: Any, _connection: Any) -> None:
        if transaction.parent is None and self._gate is not None:
            self._gate.acquire()

    def _opened(self, _session: Session, transaction: Any) -> None:
        if transaction.parent is None and self._gate is not None and self._gate.locked():
            self._gate.release()

    def __enter__(self) -> Heartbeat:
        if self._session is not None and self._session.in_transaction():
            self._gate.acquire()  # type: ignore[union-attr]
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=30)
        if self._session is not None:
            event.remove(self._session, "after_begin", self._closed)
            event.remove(self._session, "after_transaction_end", self._opened)
            self._session = None

    def _loop(self) -> None:
        while True:
            stopping = self._stop.wait(self.every)
            self.beat()
            if stopping or self.lost.is_set():
                return

    def beat(self) -> None:
        gate = self._gate
        if gate is not None and not gate.acquire(timeout=self.every):
            return  # the job is inside a transaction: beat next time
        try:
            self._write()
        finally:
            if gate is not None:
                gate.release()

    def _write(self) -> None:
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        pending = self.progress.take() if self.progress else None
        if pending:
            values.update(pending)
            values["message"] = (values.get("message") or "")[:500] or None
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":  # never wait behind a lock
                    connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
                result = connection.execute(
                    sa.update(JobRun).where(JobRun.id == self.run_id,
                                            JobRun.claim_token == self.token,
                                            JobRun.status == RunStatus.RUNNING)
                    .values(**values))
            if result.rowcount == 0:
                self.lost.set()
        except SQLAlchemyError:  # a missed beat; the next one tries again
            log.warning("run=%s heartbeat failed", self.run_id, exc_info=True)
            if pending and self.progress is not None:
                with self.progress._lock:  # noqa: SLF001 - write it again next time
                    self.progress._dirty = True  # noqa: SLF001
