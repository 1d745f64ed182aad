"""A worker SIGKILLed at each ConnectWise payment write of a sync (create, update, delete,
credit), and faults on both sides: never two cash rows, never more paid than QuickBooks
applied, and a restarted worker converges (SPEC 10.4, 16.2 I4)."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal as D

import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import Batch, BatchStatus, ExternalWrite, PaymentStatus, WriteStatus
from portal.models.types import utcnow
from portal.services.payments import sync
from tests.integration.batching import clear_faults, fault
from tests.integration.payments import (cash_rows, credit_rows, cw_invoice, items_of,
                                        qbo_credit_memo, qbo_invoice, qbo_payment, run_sync,
                                        shape_cw_invoice)
from tests.integration.test_batch_crash import _kill, _worker
from tests.integration.test_cli import _env

pytestmark = pytest.mark.integration
INVOICE, MEMO = 87, 142
PAYMENTS = rf"/finance/invoices/{INVOICE}/payments"


def _start(app, since=None) -> int:  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        from portal.models import Company

        company = session.scalars(sa.select(Company)).one()
        return sync.start_and_enqueue(session, company, trigger="test", since=since).id


def _sending(app, operation: str, key: str = "%") -> bool:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return bool(session.scalar(sa.select(sa.func.count()).select_from(ExternalWrite).where(
            ExternalWrite.operation == operation, ExternalWrite.key.like(key),
            ExternalWrite.status == WriteStatus.SENDING)))


def _kill_inside(app, env, server, method: str, path: str,  # type: ignore[no-untyped-def]
                 operation: str) -> None:
    """Start a worker, wait until it is inside the slow write, SIGKILL it."""
    fault(server, kind="latency", method=method, path_regex=path, latency_ms=1500, count=1)
    worker = _worker(env)
    deadline = time.monotonic() + 60
    while not _sending(app, operation):
        assert time.monotonic() < deadline, worker.stderr.read().decode()[-2000:] \
            if worker.poll() is not None else "never reached the write"
        time.sleep(0.05)
    time.sleep(0.3)
    _kill(worker)
    clear_faults(server)
    time.sleep(1.6)  # the write lands; the killed run's heartbeat goes stale


def _finish(app, env, batch_id: int) -> Batch:  # type: ignore[no-untyped-def]
    worker = _worker(env)
    assert worker.wait(timeout=120) == 0, worker.stderr.read().decode()[-3000:]
    batch, items = items_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert items["10087"].status in (PaymentStatus.DONE, PaymentStatus.WARNING), \
        (items["10087"].message, items["10087"].warnings)
    return batch


def _invariant(cw_sandbox, applied: str) -> None:  # type: ignore[no-untyped-def]
    assert len(cash_rows(cw_sandbox, INVOICE)) <= 1
    inv = cw_invoice(cw_sandbox, INVOICE)
    assert D(str(inv["payments"])) + D(str(inv["credits"])) <= D(applied)


def test_sigkill_at_each_payment_write_never_writes_twice(
        app, connected, cw_sandbox, qbo_sandbox, database_url, redis_url, instance_path):
    _cw, server = cw_sandbox
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
               PORTAL_RUN_STALE_SECONDS="1")
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    shape_cw_invoice(cw_sandbox, MEMO, "-100.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)
    first = _start(app, since)

    # 1. killed inside the cash create
    qbo_payment(app, "2026-11-01", ("Invoice", invoice["Id"], "300.00"))
    _kill_inside(app, env, server, "POST", PAYMENTS + "$", "cw.invoice_payment.create")
    _invariant(cw_sandbox, "300.00")
    _finish(app, env, first)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-01")]

    # 2. killed inside the cash update
    qbo_payment(app, "2026-11-05", ("Invoice", invoice["Id"], "200.00"))
    second = _start(app)
    _kill_inside(app, env, server, "PATCH", PAYMENTS + r"/\d+$", "cw.invoice_payment.update")
    _invariant(cw_sandbox, "500.00")
    _finish(app, env, second)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("500.00"), "2026-11-05")]

    # 3. a credit arrives: killed inside the removal of the cash row, then inside the
    # credit's create, then finished
    memo = qbo_credit_memo(app, "10142", "100.00")
    qbo_payment(app, "2026-11-07", ("Invoice", invoice["Id"], "100.00"),
                ("CreditMemo", memo["Id"], "100.00"))
    third = _start(app)
    _kill_inside(app, env, server, "DELETE", PAYMENTS + r"/\d+$", "cw.invoice_payment.delete")
    _invariant(cw_sandbox, "600.00")
    _kill_inside(app, env, server, "POST", PAYMENTS + "$", "cw.invoice_payment.create")
    _invariant(cw_sandbox, "600.00")
    _finish(app, env, third)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("500.00"), "2026-11-05")]
    assert credit_rows(cw_sandbox, INVOICE) == [(MEMO, D("100.00"))]
    assert D(str(cw_invoice(cw_sandbox, INVOICE)["balance"])) == D("400.00")

    # and a run afterwards writes nothing
    batch_id = run_sync(app, since=since)
    _batch, items = items_of(app, batch_id)
    assert items["10087"].actions == []


def test_faults_on_both_sides_converge_without_a_second_cash_row(
        app, connected, cw_sandbox, qbo_sandbox):
    _cw, cw_server = cw_sandbox
    _qbo, qbo_server = qbo_sandbox
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)
    qbo_payment(app, "2026-11-01", ("Invoice", invoice["Id"], "300.00"))
    # the create lands but its answer is lost; the next ConnectWise read fails once;
    # QuickBooks answers one /batch with a 500
    fault(cw_server, kind="drop_after_commit", method="POST", path_regex=PAYMENTS + "$",
          count=1)
    fault(qbo_server, kind="error", method="POST", path_regex=r"/batch$", status=500, count=1)
    batch_id = run_sync(app, since=since)
    clear_faults(cw_server)
    clear_faults(qbo_server)
    _batch, items = items_of(app, batch_id)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-01")]
    assert items["10087"].status is PaymentStatus.DONE, (items["10087"].message,
                                                         items["10087"].actions)
    assert any("adopted" in a for a in items["10087"].actions)
    fault(cw_server, kind="error", method="PATCH", path_regex=PAYMENTS + r"/\d+$", status=500,
          count=5)
    qbo_payment(app, "2026-11-05", ("Invoice", invoice["Id"], "200.00"))
    batch_id = run_sync(app)
    clear_faults(cw_server)
    batch, items = items_of(app, batch_id)
    assert batch.colour == "red" and items["10087"].status is PaymentStatus.FAILED
    _invariant(cw_sandbox, "500.00")
    batch_id = run_sync(app)  # from the retry set
    _batch, items = items_of(app, batch_id)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("500.00"), "2026-11-05")]


def test_a_dead_workers_payment_run_is_taken_over_by_the_tick(app, connected, cw_sandbox,
                                                              qbo_sandbox):
    from portal.models import JobRun, RunStatus
    from portal.services import scheduler

    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    qbo_payment(app, "2026-11-01", ("Invoice", invoice["Id"], "300.00"))
    with app.app_context(), session_scope(app) as session:
        from portal.models import Company

        company = session.scalars(sa.select(Company)).one()
        batch = sync.start(session, company, trigger="test",
                           since=utcnow() - timedelta(minutes=1))
        run = session.get(JobRun, batch.run_id)  # claimed by a worker that then died
        run.status, run.claim_token = RunStatus.RUNNING, "dead-worker"
        run.heartbeat_at = utcnow() - timedelta(hours=1)
        batch_id = batch.id
        session.commit()
    report = scheduler.tick(app)
    assert report.resumed == [run.id]
    from tests.conftest import run_jobs

    run_jobs(app)
    batch, items = items_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and items["10087"].status is PaymentStatus.DONE
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-01")]


def test_a_cancelled_payment_run_keeps_the_rest_for_the_next_one(app, client, connected,
                                                                 cw_sandbox, qbo_sandbox):
    from portal.models import PaymentSyncState
    from tests.conftest import run_jobs

    batch_id = _start(app)
    token = client.csrf_token(f"/payments/batches/{batch_id}")
    assert client.post(f"/batches/{batch_id}/cancel",
                       data={"csrf_token": token}).status_code == 303
    run_jobs(app)
    batch, items = items_of(app, batch_id)
    assert batch.status is BatchStatus.CANCELLED and "cancelled by" in batch.message
    pending = {i.qbo_invoice_id for i in items.values() if i.status is PaymentStatus.PENDING}
    assert pending  # found, not synced
    with session_scope(app) as session:
        assert pending <= set(session.get(PaymentSyncState, connected.id).retry_set)


@pytest.mark.parametrize("one_payment_rule", [True, False])
def test_a_run_taken_over_while_its_write_is_in_flight_never_shows_two_cash_rows(
        app, connected, cw_sandbox, qbo_sandbox, database_url, redis_url, instance_path,
        one_payment_rule):
    """The first worker dies while ConnectWise is still working on its cash create; the
    next worker takes the run over before that row exists. It waits for the write to land
    and adopts it instead of writing a second cash row (whether or not ConnectWise itself
    would refuse a second one)."""
    _cw, server = cw_sandbox
    requests.post(f"{server.url}/_sim/switches", timeout=5,
                  json={"sim.cw_single_payment_per_invoice": one_payment_rule}).raise_for_status()
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
               PORTAL_RUN_STALE_SECONDS="1")
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)
    qbo_payment(app, "2026-11-01", ("Invoice", invoice["Id"], "300.00"))
    batch_id = _start(app, since)
    rule = fault(server, kind="queued", method="POST", path_regex=PAYMENTS + "$",
                 latency_ms=5000, count=1)
    first = _worker(env)
    deadline = time.monotonic() + 60
    # the create has reached ConnectWise, which works it only 5 s later
    rule_id = rule["rules"][0]["id"]
    while not any(r["id"] == rule_id and r["fired"] for r in _cw.faults.rules()):
        assert time.monotonic() < deadline and first.poll() is None, "never reached the write"
        time.sleep(0.05)
    _kill(first)
    time.sleep(1.2)  # the heartbeat goes stale; the create is still in ConnectWise's hands
    assert cash_rows(cw_sandbox, INVOICE) == []
    second = _worker(env)
    most = 0
    while second.poll() is None:
        most = max(most, len(cash_rows(cw_sandbox, INVOICE)))
        time.sleep(0.05)
    assert second.returncode == 0, second.stderr.read().decode()[-3000:]
    most = max(most, len(cash_rows(cw_sandbox, INVOICE)))
    assert most == 1
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-01")]
    batch, items = items_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].message
    assert any("adopted row" in a for a in items["10087"].actions), items["10087"].actions
    with session_scope(app) as session:
        creates = session.scalars(sa.select(ExternalWrite).where(
            ExternalWrite.operation == "cw.invoice_payment.create",
            ExternalWrite.key.like(f"pay:%:{INVOICE}:%"))).all()
        assert [w.status for w in creates] == [WriteStatus.DONE]
