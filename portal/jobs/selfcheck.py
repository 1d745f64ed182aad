"""Entry point of the self-check run."""

from __future__ import annotations

from flask import current_app

from portal.jobs.base import Outcome, execute
from portal.models import RunStatus
from portal.services import selfcheck


def run_self_check(run_id: int) -> None:
    """Check database, schema, Redis, worker and keys, reporting each step on the run."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        failed = selfcheck.run(app, session, progress)
        if failed:
            return RunStatus.FAILED, f"Failed: {', '.join(failed)}"
        return RunStatus.SUCCEEDED, "Every check passed"

    execute(run_id, work)
