"""Background runs on a real RQ worker and real Redis: the self-check, progress, the lock."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import JobRun, RunKind, RunStatus
from portal.models.types import utcnow
from portal.services import runs
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration


def _run(app, run_id=1) -> JobRun:
    with session_scope(app) as session:
        return session.get(JobRun, run_id)


def test_self_check_runs_on_a_worker_and_reports_each_step(app, client, login_as):
    login_as("admin")
    started = client.hx("POST", "/runs/self-check")
    assert started.status_code == 202
    body = started.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in body and "Queued" in body
    assert jobs.get_queue("default", app).count == 1

    polling = client.hx("GET", "/runs/1")
    assert polling.status_code == 200 and 'hx-trigger="every 1s"' in polling.get_data(as_text=True)

    run_jobs(app)

    run = _run(app)
    assert run.status is RunStatus.SUCCEEDED, run.log
    assert (run.done, run.total) == (6, 6)
    steps = [entry["step"] for entry in run.log if "step" in entry]
    assert steps == ["Database", "Schema", "Redis", "Worker", "Encryption key", "Instance folder"]
    assert all(entry["level"] == "info" for entry in run.log)
    assert run.started_at and run.finished_at and run.started_at <= run.finished_at

    final = client.hx("GET", "/runs/1")
    assert final.status_code == 286  # htmx stops polling
    assert final.headers["HX-Trigger"] == "run-finished"
    text = final.get_data(as_text=True)
    assert "hx-trigger" not in text and "Succeeded" in text
    assert '<progress id="run-1-bar" max="6" value="6"' in text


def test_a_failing_step_is_reported_and_the_others_still_run(app, client, login_as):
    login_as("admin")
    client.hx("POST", "/runs/self-check")
    app.config["ENCRYPTION_KEY"] = "this is not a key"
    run_jobs(app)
    run = _run(app)
    assert run.status is RunStatus.FAILED
    assert run.message == "Failed: Encryption key"
    errors = [e for e in run.log if e["level"] == "error"]
    assert len(errors) == 1 and errors[0]["step"] == "Encryption key"
    assert run.done == 6


def test_job_arguments_are_ids_only(app, client, login_as):
    login_as("admin")
    client.hx("POST", "/runs/self-check")
    job = jobs.get_queue("default", app).jobs[0]
    assert job.args == [1] or job.args == (1,)


def test_claim_is_exclusive(app):
    with session_scope(app) as session:
        run = runs.start(session, RunKind.SELF_CHECK)
    with session_scope(app) as first, session_scope(app) as second:
        assert runs.claim(first, run.id, job_id="a", stale_seconds=300) is not None
        assert runs.claim(second, run.id, job_id="b", stale_seconds=300) is None


def test_a_stale_run_can_be_claimed_again_and_is_requeued(app):
    with session_scope(app) as session:
        run = runs.start(session, RunKind.SELF_CHECK)
    with session_scope(app) as session:
        runs.claim(session, run.id, job_id="dead-worker", stale_seconds=300)
        session.execute(sa.update(JobRun).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
    with app.app_context(), session_scope(app) as session:
        stale = runs.stale(session, 300)
        assert [r.id for r in stale] == [run.id]
        for item in stale:
            enqueue_run(item.kind, item.id)
    run_jobs(app)
    assert _run(app, run.id).status is RunStatus.SUCCEEDED


def test_one_active_run_per_company(app):
    with session_scope(app) as session:
        first = runs.start(session, RunKind.SELF_CHECK, company_id=7)
    with session_scope(app) as session:
        with pytest.raises(runs.RunAlreadyActive) as busy:
            runs.start(session, RunKind.SELF_CHECK, company_id=7)
        assert busy.value.active_run.id == first.id
        runs.start(session, RunKind.SELF_CHECK, company_id=8)  # another company is free
    with session_scope(app) as session:
        runs.finish(session, session.get(JobRun, first.id), RunStatus.SUCCEEDED, "done")
    with session_scope(app) as session:
        runs.start(session, RunKind.SELF_CHECK, company_id=7)  # the lock is released


def test_runs_list_pages(app, client, login_as):
    user = login_as("admin")
    with session_scope(app) as session:
        for _ in range(30):
            runs.finish(session, runs.start(session, RunKind.SELF_CHECK, user=user),
                        RunStatus.SUCCEEDED, "done")
    first = client.get("/runs/").get_data(as_text=True)
    assert "Page 1 of 2" in first and "Self-check (run #30)" in first
    second = client.hx("GET", "/runs/?page=2").get_data(as_text=True)
    assert "Self-check (run #1)<" in second and "Self-check (run #30)" not in second


def test_unknown_run_is_404(client, login_as):
    login_as("viewer")
    assert client.get("/runs/999").status_code == 404
