"""The common shape of a run's job: claim the row, beat while working, record an outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app
from rq import get_current_job
from sqlalchemy.orm import Session

from portal import db
from portal.db import session_scope
from portal.models import JobRun, RunStatus
from portal.services import runs
from portal.services.runs import RunProgress

log = logging.getLogger(__name__)
Outcome = tuple[RunStatus, str]
Work = Callable[[Session, JobRun, RunProgress], Outcome]


def execute(run_id: int, work: Work) -> None:
    """Claim the run and call `work` while a heartbeat thread keeps the claim fresh.

    An unexpected exception ends the run as failed (with a message free of request data)
    instead of leaving it 'running' until it goes stale; a run taken over by another worker
    is left to that worker.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    job = get_current_job()
    with session_scope() as session:
        run = runs.claim(session, run_id, job_id=job.id if job else None,
                         stale_seconds=app.config["RUN_STALE_SECONDS"])
        if run is None:
            return  # held by a live worker, or already finished
        progress = RunProgress(run)
        with runs.Heartbeat(db.engine(app), run.id, run.claim_token or "", progress,
                            session=session) as beat:
            try:
                status, message = work(session, run, progress)
            except runs.LostClaim:
                session.rollback()
                log.warning("run=%s was taken over by another worker", run_id)
                return
            except Exception as exc:  # noqa: BLE001 - recorded on the run, logged with its trace
                log.exception("run=%s failed unexpectedly", run_id)
                session.rollback()
                beat.stop()
                run = session.get(JobRun, run_id, populate_existing=True)
                runs.finish(session, run, RunStatus.FAILED,
                            f"Stopped by an unexpected error ({exc.__class__.__name__}); "
                            "the details are in the worker's log.", progress=progress)
                return
        if beat.lost.is_set():
            log.warning("run=%s was taken over by another worker", run_id)
            return
        runs.finish(session, run, status, message, progress=progress)
