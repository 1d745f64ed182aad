"""Entry point of payment sync runs (starting, resuming after a takeover)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from portal import clients
from portal.jobs.base import Outcome, execute
from portal.models import Batch, BatchStatus, RunStatus
from portal.services.runs import LostClaim
from portal.services.payments.sync import PaymentRun


def sync_payments(run_id: int) -> None:
    """Sync the run's batch; safe to run again after a crash (pending items resume)."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        batch = session.scalar(sa.select(Batch).where(Batch.run_id == run.id))
        if batch is None:
            return RunStatus.FAILED, "The batch of this run no longer exists."
        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        qbo = clients.quickbooks(session, batch.company)
        try:
            return PaymentRun(session, batch, run, qbo, cw, progress,
                              current_app.config["CW_MAX_CONCURRENT"]).execute()
        except LostClaim:
            raise
        except Exception:
            session.rollback()  # the batch must not stay "running" behind a failed run
            batch.status, batch.colour = BatchStatus.FINISHED, "red"
            batch.message = "Stopped by an unexpected error; run the sync again."
            session.commit()
            raise

    execute(run_id, work)
