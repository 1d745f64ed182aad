"""Start, claim and finish JobRun rows; find stale ones."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import JobRun, RunKind, RunStatus, User
from portal.models.types import utcnow


class RunAlreadyActive(Exception):
    """Another run holds the company's lock."""

    def __init__(self, active_run: JobRun | None) -> None:
        super().__init__("another run is active")
        self.active_run = active_run


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


def claim(session: Session, run_id: int, *, job_id: str | None, stale_seconds: int) -> JobRun | None:
    """Take the run for this worker: one conditional UPDATE, so two workers never share it.

    Succeeds for a queued run, or a running one whose heartbeat is older than
    `stale_seconds` (its worker died). Commits.
    """
    now = utcnow()
    stale_before = now - timedelta(seconds=stale_seconds)
    result = session.execute(
        sa.update(JobRun)
        .where(JobRun.id == run_id,
               sa.or_(JobRun.status == RunStatus.QUEUED,
                      sa.and_(JobRun.status == RunStatus.RUNNING,
                              sa.or_(JobRun.heartbeat_at.is_(None),
                                     JobRun.heartbeat_at < stale_before))))
        .values(status=RunStatus.RUNNING, rq_job_id=job_id, heartbeat_at=now,
                started_at=sa.func.coalesce(JobRun.started_at, now))
        .execution_options(synchronize_session=False))
    session.commit()
    if result.rowcount != 1:
        return None
    return session.get(JobRun, run_id, populate_existing=True)


def finish(session: Session, run: JobRun, status: RunStatus, message: str,
           error: str | None = None) -> None:
    """Record the outcome and commit."""
    now = utcnow()
    run.status = status
    run.message = message[:500]
    run.error = error
    run.finished_at = now
    run.heartbeat_at = now
    if run.total is not None and status is RunStatus.SUCCEEDED:
        run.done = run.total
    session.commit()


def stale(session: Session, stale_seconds: int) -> list[JobRun]:
    """Queued runs and running ones whose worker stopped beating: to be enqueued again."""
    before = utcnow() - timedelta(seconds=stale_seconds)
    return list(session.scalars(sa.select(JobRun).where(sa.or_(
        JobRun.status == RunStatus.QUEUED,
        sa.and_(JobRun.status == RunStatus.RUNNING,
                sa.or_(JobRun.heartbeat_at.is_(None), JobRun.heartbeat_at < before))))))


def recent(session: Session, limit: int = 10) -> list[JobRun]:
    return list(session.scalars(sa.select(JobRun).order_by(JobRun.id.desc()).limit(limit)))
