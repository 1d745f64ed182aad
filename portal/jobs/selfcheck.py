"""Entry point of the self-check run."""

from __future__ import annotations

from flask import current_app
from rq import get_current_job

from portal.db import session_scope
from portal.jobs.progress import DbProgress
from portal.models import RunStatus
from portal.services import runs, selfcheck


def run_self_check(run_id: int) -> None:
    """Check database, schema, Redis, worker and keys, reporting each step on the run."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    job = get_current_job()
    with session_scope() as session:
        run = runs.claim(session, run_id, job_id=job.id if job else None,
                         stale_seconds=app.config["RUN_STALE_SECONDS"])
        if run is None:
            return  # held by a live worker, or already finished
        failed = selfcheck.run(app, session, DbProgress(session, run))
        if failed:
            runs.finish(session, run, RunStatus.FAILED, f"Failed: {', '.join(failed)}")
        else:
            runs.finish(session, run, RunStatus.SUCCEEDED, "Every check passed")
