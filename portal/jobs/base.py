"""The common shape of a run's job: claim the row, do the work, always record an outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app
from rq import get_current_job
from sqlalchemy.orm import Session

from portal.db import session_scope
from portal.models import JobRun, RunStatus
from portal.services import runs

log = logging.getLogger(__name__)
Outcome = tuple[RunStatus, str]


def execute(run_id: int, work: Callable[[Session, JobRun], Outcome]) -> None:
    """Claim the run and call `work`; an unexpected exception ends the run as failed
    (with the request id-free message) instead of leaving it 'running' until it goes stale."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    job = get_current_job()
    with session_scope() as session:
        run = runs.claim(session, run_id, job_id=job.id if job else None,
                         stale_seconds=app.config["RUN_STALE_SECONDS"])
        if run is None:
            return  # held by a live worker, or already finished
        try:
            status, message = work(session, run)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, logged with its trace
            log.exception("run=%s failed unexpectedly", run_id)
            session.rollback()
            run = session.get(JobRun, run_id, populate_existing=True)
            runs.finish(session, run, RunStatus.FAILED,
                        f"Stopped by an unexpected error ({exc.__class__.__name__}); "
                        "the details are in the worker's log.")
            return
        runs.finish(session, run, status, message)
