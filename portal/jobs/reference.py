"""Entry point of the reference data refresh run."""

from __future__ import annotations

from portal import clients
from portal.integrations import errors
from portal.jobs.base import Outcome, execute
from portal.models import Company, RunStatus
from portal.services import reference
from portal.services.cw_setup import SetupError


def refresh_reference(run_id: int) -> None:
    """Pull every list of ConnectWise and of the run's QuickBooks company into the cache."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        company = session.get(Company, run.company_id)
        try:
            failed = reference.refresh_all(session, company, clients.connectwise(session),
                                           clients.quickbooks(session, company),
                                           progress)
        except (errors.IntegrationError, SetupError) as exc:
            session.rollback()
            return RunStatus.FAILED, f"Failed: {exc}"
        if failed:
            return RunStatus.FAILED, f"Failed: {', '.join(failed)}"
        return RunStatus.SUCCEEDED, "Every list is up to date"

    execute(run_id, work)
