"""Entry point of batch runs (posting, resuming and retrying use the same job)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from portal import clients
from portal.integrations import errors
from portal.jobs.base import Outcome, execute
from portal.jobs.progress import DbProgress
from portal.models import Batch, RunStatus
from portal.services import batch_engine


def post_batch(run_id: int) -> None:
    """Post the run's batch; safe to run again after a crash (the items say where it was)."""

    def work(session, run) -> Outcome:  # type: ignore[no-untyped-def]
        batch = session.scalar(sa.select(Batch).where(Batch.run_id == run.id))
        if batch is None:
            return RunStatus.FAILED, "The batch of this run no longer exists."
        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        config = batch_engine.Config(
            batch_size=current_app.config["QBO_BATCH_SIZE"],
            lookup_delay=float(current_app.config["LOOKUP_DELAY_SECONDS"]))
        try:
            return batch_engine.post_batch(session, batch, cw,
                                           clients.quickbooks(session, batch.company),
                                           DbProgress(session, run), config)
        except batch_engine.LostClaim:
            session.rollback()
            return RunStatus.FAILED, "Another worker took this batch over."
        except errors.IntegrationError as exc:
            session.rollback()
            batch = session.get(Batch, batch.id)
            batch_engine.stopped(session, batch, f"Stopped: {exc.message}"
                                 + (f" {exc.hint}" if exc.hint else ""))
            return RunStatus.FAILED, f"Stopped: {exc.message}"
        except Exception as exc:
            session.rollback()
            batch_engine.stopped(session, session.get(Batch, batch.id),
                                 f"Stopped by an unexpected error ({exc.__class__.__name__}); "
                                 "the details are in the worker's log.")
            raise

    execute(run_id, work)
