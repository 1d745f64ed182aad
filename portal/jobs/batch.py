"""Entry point of batch runs (posting, resuming and retrying use the same job)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from portal import clients
from portal.jobs.base import Outcome, execute
from portal.models import Batch, RunStatus
from portal.services.batching import engine
from portal.services.batching.types import record_type


def post_batch(run_id: int) -> None:
    """Post the run's batch; safe to run again after a crash (the items say where it was)."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        batch = session.scalar(sa.select(Batch).where(Batch.run_id == run.id))
        if batch is None:
            return RunStatus.FAILED, "The batch of this run no longer exists."
        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        config = current_app.config
        return engine.post_batch(
            session, batch, record_type(batch.type), cw,
            clients.quickbooks(session, batch.company), progress, run,
            engine.Config(batch_size=config["QBO_BATCH_SIZE"],
                          lookup_delay=float(config["LOOKUP_DELAY_SECONDS"]),
                          mark_workers=config["CW_MAX_CONCURRENT"]))

    execute(run_id, work)
