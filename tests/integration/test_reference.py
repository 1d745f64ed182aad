"""The reference cache: a refresh run pulls both sides' lists over HTTP."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import CwRef, QboRef, RunStatus
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration


def test_refresh_fills_both_caches_and_shows_their_age(app, client, connected):
    page = client.get("/mappings/").get_data(as_text=True)
    assert "Reference data for Northwind Managed IT" in page and "never" in page
    started = client.hx("POST", f"/mappings/refresh?company={connected.id}",
                        token_from="/mappings/")
    assert started.status_code == 202
    busy = client.hx("POST", f"/mappings/refresh?company={connected.id}",
                     token_from="/mappings/")
    assert busy.status_code == 409 and "Another run is already working" in busy.get_data(
        as_text=True)
    run_jobs(app)
    with session_scope(app) as session:
        from portal.models import JobRun

        run = session.scalars(sa.select(JobRun)).one()
        assert run.status is RunStatus.SUCCEEDED, run.log
        customers = session.scalar(sa.select(sa.func.count()).select_from(QboRef).where(
            QboRef.company_id == connected.id, QboRef.entity == "Customer"))
        cw_companies = session.scalar(sa.select(sa.func.count()).select_from(CwRef).where(
            CwRef.entity == "company"))
        near = session.scalar(sa.select(QboRef).where(QboRef.name == "ACME Corp (ACME)"))
    assert customers >= 30 and cw_companies >= 45
    assert near is not None and near.active
    page = client.get("/mappings/").get_data(as_text=True)
    assert "0 minutes ago" in page and f"{customers:,}" in page
    assert "never" not in page


def test_a_failing_list_is_reported_and_keeps_the_others(app, client, connected,
                                                         cw_sandbox):
    from tests.integration.connect import sim

    _cw, server = cw_sandbox
    sim(server, "role", {"revoke": {"System.Member Maintenance": ["inquire"]}})
    client.hx("POST", f"/mappings/refresh?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    with session_scope(app) as session:
        from portal.models import JobRun

        run = session.scalars(sa.select(JobRun)).one()
        assert run.status is RunStatus.FAILED
        assert run.message == "Failed: ConnectWise members"
        assert session.scalar(sa.select(sa.func.count()).select_from(QboRef)) > 50
    page = client.get("/mappings/").get_data(as_text=True)
    assert 'id="ref-cw-member"' in page
