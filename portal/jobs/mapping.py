"""Entry point of the mapping scan run ("Check the backlog")."""

from __future__ import annotations

from portal import clients
from portal.integrations import errors
from portal.jobs.base import Outcome, execute
from portal.models import Company, RunStatus
from portal.services import scan


def scan_mappings(run_id: int) -> None:
    """Check every unposted transaction against the mappings; writes nothing remote."""

    def work(session, run, progress) -> Outcome:  # type: ignore[no-untyped-def]
        company = session.get(Company, run.company_id)
        cw = clients.connectwise(session)
        if cw is None:
            return RunStatus.FAILED, "Set up ConnectWise first."
        try:
            result = scan.scan(session, company, cw, None, progress, run_id=run.id,
                               qbo=clients.quickbooks(session, company)).scan
        except errors.IntegrationError as exc:
            session.rollback()
            return RunStatus.FAILED, f"Failed: {exc}"
        problems = scan.blocking(session, result)
        return RunStatus.SUCCEEDED, (f"{result.records} transaction(s) checked: {problems} "
                                     f"problem(s) block {result.records_with_errors} of them")

    execute(run_id, work)
