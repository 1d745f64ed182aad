"""AutoSync end to end on a fast clock (SPEC 15): the tick is called with the time it
pretends it is, the runs are real batches worked by a real RQ worker against both
sandboxes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import (AuditEvent, AutoSyncCompany, AutoSyncType, Batch, BatchStatus,
                           Company, CompanyStatus, ItemState, QboRef)
from portal.models.types import utcnow
from portal.services import autosync, tax_mapping
from portal.services import company_settings as cs
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, unposted
from tests.integration.mail import post_clean_invoices, use_sink

pytestmark = pytest.mark.integration


@pytest.fixture()
def mapped(app, client, connected):  # type: ignore[no-untyped-def]
    """Reference data, the two-level tax code mapped, and a mapping check of the backlog."""
    client.hx("POST", f"/mappings/refresh?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    with session_scope(app) as session:
        code = session.scalar(sa.select(QboRef).where(QboRef.entity == "TaxCode",
                                                      QboRef.name == "NYC Combined"))
        tax_mapping.save(session, session.get(Company, connected.id), "NYC", code.qbo_id)
    client.hx("POST", f"/mappings/scan?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    return connected


def _enable(client, company_id, **extra):  # type: ignore[no-untyped-def]
    url = f"/setup/quickbooks/{company_id}/settings/autosync"
    data = {"autosync_enabled": ["", "y"], "autosync_invoices": ["", "y"],
            "autosync_interval_minutes": "15", **extra}
    return client.hx("POST", url, current_url=url, token_from=url, data=data)


def _tick(app, now):  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        return autosync.tick(app, session, now=now)


def _autosync_batches(app):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(Batch).where(Batch.trigger == "autosync")
                                    .order_by(Batch.id)))
        session.expunge_all()
        return rows


def _state(app, company_id, slug="invoices"):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        row = session.get(AutoSyncType, (company_id, slug))
        company = session.get(AutoSyncCompany, company_id)
        session.expunge_all()
        return row, company


def test_preconditions_block_enabling_until_a_manual_batch_is_green(
        app, client, mapped, qbo_sandbox):
    refused = _enable(client, mapped.id)
    assert refused.status_code == 422
    assert "Run one invoices batch by hand that finishes green or yellow" in \
        refused.get_data(as_text=True)
    with session_scope(app) as session:
        assert not cs.get_settings(session, session.get(Company, mapped.id)).autosync_enabled
    post_clean_invoices(app, qbo_sandbox, count=2)
    response = _enable(client, mapped.id)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_runs_when_due_posts_what_passes_and_leaves_the_bad_records_out(
        app, client, mapped, qbo_sandbox):
    post_clean_invoices(app, qbo_sandbox, count=2)
    assert _enable(client, mapped.id,
                   autosync_on_mapping_error="SkipRecords").status_code == 200
    t0 = utcnow()
    [started] = _tick(app, t0)
    assert started.batch_id and started.type == "invoices"
    assert _tick(app, t0) == []  # not twice for the same due time
    run_jobs(app)
    batch, items = batch_of(app, started.batch_id)
    assert batch.trigger == "autosync" and batch.options["skip_problems"] is True
    assert batch.colour == "yellow", batch.message
    bad = {i.cw_number for i in items if i.state is ItemState.SKIPPED
           and i.skip_reason == "problem"}
    assert bad and all(i.message and i.fix_hint is not None for i in items
                       if i.cw_number in bad)
    assert {i.state for i in items if i.cw_number not in bad} <= {ItemState.DONE,
                                                                   ItemState.SKIPPED}
    assert _tick(app, t0 + timedelta(minutes=1)) == []  # counted, not due yet
    row, company = _state(app, mapped.id)
    assert {a["number"] for a in row.attention} == bad and company.consecutive_failures == 0
    assert row.next_run_at == t0 + timedelta(minutes=15) and row.last_colour == "yellow"
    # due again: only unchanged bad records are left, so nothing runs and nothing fails
    assert {r.number for r in unposted(app)} >= bad
    [again] = _tick(app, t0 + timedelta(minutes=16))
    assert again.batch_id is None and "nothing to do" in again.note
    assert len(_autosync_batches(app)) == 1
    row, company = _state(app, mapped.id)
    assert {a["number"] for a in row.attention} == bad and company.consecutive_failures == 0
    page = client.get(f"/setup/quickbooks/{mapped.id}/settings/autosync").get_data(
        as_text=True)
    assert f"{len(bad)} record(s) left out until they change" in page
    card = client.hx("GET", "/dashboard/autosync").get_data(as_text=True)
    assert "left out until they change" in card and "AutoSync <strong>on</strong>" in card
    # a change of the settings may have fixed them: the next due run tries them again
    url = f"/setup/quickbooks/{mapped.id}/settings/autosync"
    assert client.hx("POST", url, current_url=url, token_from=url,
                     data={"autosync_interval_minutes": "20"}).status_code == 200
    [retry] = _tick(app, t0 + timedelta(minutes=40))
    assert retry.batch_id, retry.note
    _batch, items = batch_of(app, retry.batch_id)
    assert {i.cw_number for i in items} == bad


def test_two_workers_running_the_tick_start_one_run(app, client, mapped, qbo_sandbox):
    """Two workers' scheduler threads on a tick shorter than the tick's own work, so the
    leader lock lapses and both run it: the conditional claim and the company lock still
    start one run, and the second worker's run of the batch finds it claimed."""
    from portal.services import scheduler

    post_clean_invoices(app, qbo_sandbox, count=2)
    assert _enable(client, mapped.id).status_code == 200
    tickers = [scheduler.Ticker(app, name=f"worker-{n}", every=0.2).start() for n in (1, 2)]
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(t.ticks for t in tickers) < 6:
            time.sleep(0.2)
    finally:
        for ticker in tickers:
            ticker.stop()
    assert sum(t.ticks for t in tickers) >= 6
    [batch] = _autosync_batches(app)
    run_jobs(app)
    batch, _items = batch_of(app, batch.id)
    assert batch.status is BatchStatus.FINISHED and len(_autosync_batches(app)) == 1


def test_a_failing_precondition_skips_the_run_and_auto_disable_needs_an_admin(
        app, client, mapped, qbo_sandbox, mailbox):
    use_sink(app, mailbox)
    post_clean_invoices(app, qbo_sandbox, count=2)
    assert _enable(client, mapped.id, autosync_max_consecutive_failures="2",
                   autosync_error_extra_emails="ops@example.test").status_code == 200
    with session_scope(app) as session:
        session.get(Company, mapped.id).status = CompanyStatus.RECONNECT_NEEDED
    t0 = utcnow()
    [skipped] = _tick(app, t0)
    assert skipped.batch_id is None and "AutoSync needs a connected company" in skipped.note
    _row, company = _state(app, mapped.id)
    assert company.consecutive_failures == 1 and company.disabled_reason is None
    [first] = mailbox.messages()
    assert first["subject"].startswith("AutoSync skipped invoices") and \
        "ops@example.test" in first["envelope_to"]
    _tick(app, t0 + timedelta(minutes=16))
    _row, company = _state(app, mapped.id)
    assert company.consecutive_failures == 2 and "Turned off after 2" in \
        company.disabled_reason
    with session_scope(app) as session:
        assert not cs.get_settings(session, session.get(Company, mapped.id)).autosync_enabled
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "autosync.auto_disable")) == 1
    assert any(m["subject"].startswith("AutoSync was turned off") for m in
               mailbox.messages())
    assert _tick(app, t0 + timedelta(minutes=40)) == []  # off: nothing runs
    card = client.hx("GET", "/dashboard/autosync").get_data(as_text=True)
    assert f'id="autosync-banner-{mapped.id}"' in card and "AutoSync was turned off" in card
    assert 'id="autosync-banners"' in client.get("/").get_data(as_text=True)
    assert _autosync_batches(app) == []
    # an admin fixes the cause and turns it on again
    with session_scope(app) as session:
        session.get(Company, mapped.id).status = CompanyStatus.CONNECTED
    assert _enable(client, mapped.id).status_code == 200
    _row, company = _state(app, mapped.id)
    assert company.consecutive_failures == 0 and company.disabled_reason is None
    assert "autosync-banner-" not in client.hx("GET", "/dashboard/autosync").get_data(
        as_text=True)
    [started] = _tick(app, utcnow())
    assert started.batch_id


def test_a_red_run_mails_the_issues_with_a_rerun_link(app, client, mapped, qbo_sandbox,
                                                      mailbox):
    use_sink(app, mailbox)
    post_clean_invoices(app, qbo_sandbox, count=2)
    assert _enable(client, mapped.id).status_code == 200  # BlockRun: a problem blocks
    t0 = utcnow()
    [started] = _tick(app, t0)
    run_jobs(app)
    batch, items = batch_of(app, started.batch_id)
    assert batch.colour == "red" and batch.status is BatchStatus.FINISHED
    _tick(app, t0 + timedelta(minutes=1))
    _row, company = _state(app, mapped.id)
    assert company.consecutive_failures == 1
    [mail] = [m for m in mailbox.messages() if "is red" in m["subject"]]
    assert f"/batches/{batch.id}" in mail["text"]
    assert f"/autosync/{mapped.id}/rerun/{batch.id}" in mail["text"]
    failed = [i for i in items if i.state is ItemState.FAILED]
    assert failed[0].cw_number in mail["text"]
    page = client.get(f"/autosync/{mapped.id}/rerun/{batch.id}")
    assert page.status_code == 200 and "Start the batch" in page.get_data(as_text=True)
    # the next run leaves the failing records out, so the others post (green or yellow)
    [second] = _tick(app, t0 + timedelta(minutes=16))
    assert second.batch_id, second.note
    run_jobs(app)
    batch2, items2 = batch_of(app, second.batch_id)
    assert batch2.colour in ("green", "yellow"), batch2.message
    assert not {i.cw_number for i in items2} & {i.cw_number for i in failed}
    _tick(app, t0 + timedelta(minutes=17))
    _row, company = _state(app, mapped.id)
    assert company.consecutive_failures == 0
    # the re-run link: its form starts the records of the red run still unposted
    url = f"/autosync/{mapped.id}/rerun/{batch.id}"
    started = client.post(url, data={"csrf_token": client.csrf_token(url)})
    assert started.status_code == 303, started.get_data(as_text=True)
    rerun_id = int(started.headers["Location"].rsplit("/", 1)[1])
    rerun, rerun_items = batch_of(app, rerun_id)
    assert rerun.trigger.startswith("user:") and rerun.status is BatchStatus.QUEUED
    assert {i.cw_number for i in rerun_items} == {i.cw_number for i in failed}


def test_enabling_needs_the_tax_mapping_and_nothing_before_the_go_live_date(
        app, client, connected, qbo_sandbox):
    from portal.models import StoredSettings

    post_clean_invoices(app, qbo_sandbox, count=2)
    client.hx("POST", f"/mappings/refresh?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    client.hx("POST", f"/mappings/scan?company={connected.id}", token_from="/mappings/")
    run_jobs(app)  # the two-level code NYC is not mapped
    refused = _enable(client, connected.id)
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "Tax mapping is incomplete: ConnectWise tax code &#39;NYC&#39;" in text
    with session_scope(app) as session:
        code = session.scalar(sa.select(QboRef).where(QboRef.entity == "TaxCode",
                                                      QboRef.name == "NYC Combined"))
        tax_mapping.save(session, session.get(Company, connected.id), "NYC", code.qbo_id)
    client.hx("POST", f"/mappings/scan?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    days = sorted(r.day for r in unposted(app))
    with session_scope(app) as session:  # set by clearing old transactions (not on a form)
        cs.ensure_settings(session, session.get(Company, connected.id))
        row = session.get(StoredSettings, connected.id)
        row.values = {**row.values, "go_live_date": days[len(days) // 2].isoformat()}
    refused = _enable(client, connected.id)
    assert refused.status_code == 422
    assert "are dated before the go-live date" in refused.get_data(as_text=True)
    with session_scope(app) as session:
        row = session.get(StoredSettings, connected.id)
        row.values = {**row.values, "go_live_date": days[0].isoformat()}
    assert _enable(client, connected.id).status_code == 200


def test_payment_sync_runs_on_its_schedule_from_its_cursor(app, client, mapped, qbo_sandbox):
    """Payment sync has no selection: AutoSync starts a run of its own kind, which a
    worker works like a manual one."""
    from portal.models import BatchType
    from portal.services.payments import sync as payment_sync

    from tests.integration.payments import save_settings

    post_clean_invoices(app, qbo_sandbox, count=2)
    save_settings(app, credit_memo_multi_invoice="AllocateOldestFirst")  # the data set's
    refused = _enable(client, mapped.id, autosync_invoices="", autosync_payments=["", "y"])
    assert refused.status_code == 422
    assert "Run one payment sync batch by hand" in refused.get_data(as_text=True)
    with app.app_context(), session_scope(app) as session:
        payment_sync.start_and_enqueue(session, session.get(Company, mapped.id),
                                       trigger="user:1")
    run_jobs(app)
    with session_scope(app) as session:
        manual = session.scalar(sa.select(Batch).where(Batch.type == BatchType.PAYMENT))
        assert manual.status is BatchStatus.FINISHED and manual.colour in ("green", "yellow"), \
            (manual.status, manual.colour, manual.message)
    response = _enable(client, mapped.id, autosync_invoices="", autosync_payments=["", "y"])
    assert response.status_code == 200, response.get_data(as_text=True)
    [started] = _tick(app, utcnow())
    assert started.type == "payments" and started.batch_id, started.note
    run_jobs(app)
    [batch] = _autosync_batches(app)
    assert batch.id == started.batch_id and batch.type is BatchType.PAYMENT
    assert batch.status is BatchStatus.FINISHED, batch.message
    row, company = _state(app, mapped.id, "payments")
    assert row.last_batch_id == batch.id and company.consecutive_failures == 0
