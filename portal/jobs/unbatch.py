"""Entry points of unbatching, clearing and validation runs (SPEC 11, 12, 13.3)."""

from __future__ import annotations

import sqlalchemy as sa

from portal import clients
from portal.jobs.base import Outcome, execute
from portal.models import Company, RunStatus, UnbatchRequest


def unbatch(run_id: int) -> None:
    """Unbatch the run's records; safe to run again (each request resumes at its step)."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        from portal.services import unbatch as service

        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        first = session.scalar(sa.select(UnbatchRequest).where(
            UnbatchRequest.run_id == run.id).limit(1))
        company = session.get(Company, first.company_id) if first else None
        qbo = clients.quickbooks(session, company) if company else None
        return service.unbatch_run(session, run, progress, cw, qbo)

    execute(run_id, work)


def clear(run_id: int) -> None:
    """Mark old records as exported without posting them; resumable by chunk."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        from portal.services import clearing

        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        return clearing.clear_run(session, run, progress, cw)

    execute(run_id, work)


def validate(run_id: int) -> None:
    """Re-read posted documents and compare them with ConnectWise."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        from portal.services import validation

        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        return validation.validation_run(session, run, progress, cw)

    execute(run_id, work)
