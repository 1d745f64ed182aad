"""The dashboard checklist: numbered as the setup guide, and links each role may follow."""

from __future__ import annotations

import re

import pytest

from portal.db import session_scope
from portal.models import Company

pytestmark = pytest.mark.integration


def _steps(html: str) -> dict[int, str]:
    return {int(n): body for n, body in re.findall(
        r'<li class="step [^"]+" id="step-(\d+)">(.*?)</li>', html, re.S)}


@pytest.fixture()
def company(app) -> int:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        row = Company(realm_id="9130350", qbo_name="Acme Services LLC", country="US",
                      is_us=True, is_default=True)
        session.add(row)
        session.flush()
        return row.id


def test_the_steps_read_one_to_eleven_and_say_why_nine_has_no_check(client, login_as):
    login_as("admin")
    steps = _steps(client.get("/").get_data(as_text=True))
    assert list(steps) == list(range(1, 12))
    for number, body in steps.items():
        assert f"{number}. " in body
    assert "When needed" in steps[9] and "Unbatch when needed" in steps[9]
    assert "Nothing to check here" in steps[9] and "<a " not in steps[9]


@pytest.mark.parametrize(("role", "linked"), [
    ("admin", {1, 2, 3, 4, 5, 6, 7, 8, 10, 11}),
    ("accountant", {4, 5, 6, 8, 10, 11}),
    ("viewer", {11}),
])
def test_each_role_gets_links_it_may_follow_and_no_others(app, client, login_as, company,
                                                          role, linked):
    login_as(role)
    steps = _steps(client.get("/").get_data(as_text=True))
    links = {n: re.search(r'<a href="([^"]+)"', body) for n, body in steps.items()}
    assert {n for n, found in links.items() if found} == linked
    for number in linked:
        response = client.get(links[number].group(1))
        assert response.status_code in (200, 302), (number, response.status_code)
        if response.status_code == 302:  # the settings index opens the first tab
            assert client.get(response.headers["Location"]).status_code == 200
    for number in set(steps) - linked - {9}:
        assert "Another role does this step." in steps[number]
    if role == "accountant":
        assert f"/setup/quickbooks/{company}/settings" in links[4].group(1)


def test_a_batch_run_is_named_after_its_batch_not_its_run_number(app, client, login_as,
                                                                 company):
    from portal.models import Batch, BatchStatus, BatchType, JobRun, RunKind, RunStatus

    login_as("admin")
    with session_scope(app) as session:
        for _ in range(3):  # runs of other kinds take the first numbers
            session.add(JobRun(kind=RunKind.SELF_CHECK, status=RunStatus.SUCCEEDED, log=[]))
        resumed = JobRun(kind=RunKind.BATCH, status=RunStatus.FAILED, company_id=company,
                         log=[])
        current = JobRun(kind=RunKind.BATCH, status=RunStatus.SUCCEEDED, company_id=company,
                         log=[])
        session.add_all([resumed, current])
        session.flush()
        batch = Batch(type=BatchType.INVOICE, company_id=company, run_id=current.id,
                      status=BatchStatus.FINISHED, colour="green", trigger="autosync",
                      options={}, counts={}, totals={}, preflight=[])
        session.add(batch)
        session.flush()
        ids = (batch.id, current.id, resumed.id)
    batch_id, run_id, old_run = ids
    assert batch_id != run_id
    for page in (client.get("/").get_data(as_text=True),
                 client.get("/runs/").get_data(as_text=True)):
        assert (f'<a href="/batches/{batch_id}">Batch #{batch_id} (run #{run_id})</a>'
                in page)
        assert f"Batch #{run_id}" not in page
        assert f'<a href="/runs/{old_run}">Batch run #{old_run}</a>' in page
        assert '<a href="/runs/1">Self-check (run #1)</a>' in page
    shown = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f"<h1>Batch #{batch_id} (run #{run_id})</h1>" in shown
    assert f'<a href="/batches/{batch_id}">Open the batch</a>' in shown
