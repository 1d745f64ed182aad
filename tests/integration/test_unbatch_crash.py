"""A worker SIGKILLed between the QuickBooks and the ConnectWise step of an unbatch: the
restarted run finishes only the ConnectWise step (SPEC 11.2)."""

from __future__ import annotations

import time

import pytest

from portal.models import ItemState
from tests.integration.batching import batch_of, clear_faults, cw_batches, fault, unposted
from tests.integration.test_batch_crash import _kill, _worker
from tests.integration.test_cli import _env
from tests.integration.unbatching import INVOICES, post, qbo_get, requests_of, start

pytestmark = pytest.mark.integration


def test_killed_between_quickbooks_and_connectwise_resumes_with_connectwise_only(
        app, connected, qbo_sandbox, cw_sandbox, database_url, redis_url, instance_path):
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
               PORTAL_RUN_STALE_SECONDS="1", PORTAL_LOOKUP_DELAY_SECONDS="0")
    batch, [item] = post(app, {INVOICES[4]})
    start(app, batch.id, {item.cw_number}, "Void", run=False)
    # the ConnectWise step starts by looking the accounting batch up: make that slow
    fault(cw_server, kind="latency", method="GET", path_regex="/finance/accounting/batches",
          latency_ms=4000, count=1)
    worker = _worker(env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and requests_of(app, batch.id)[0].step != "cw":
        time.sleep(0.1)
    time.sleep(0.5)  # inside the slow ConnectWise call
    _kill(worker)
    [request] = requests_of(app, batch.id)
    assert request.step == "cw"
    voided = qbo_get(qbo_server, connected.realm_id, "Invoice", item.qbo_id)
    assert voided["PrivateNote"] == "Voided"
    assert item.cw_batch_identifier in {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}
    assert batch_of(app, batch.id)[1][0].state is ItemState.UNBATCHING
    clear_faults(cw_server)

    time.sleep(1.2)  # the killed run's heartbeat goes stale; the next worker takes it over
    worker = _worker(env)
    assert worker.wait(timeout=120) == 0, worker.stderr.read().decode()[-3000:]
    [request] = requests_of(app, batch.id)
    assert request.step == "done", request.message
    assert batch_of(app, batch.id)[1][0].state is ItemState.UNBATCHED
    again = qbo_get(qbo_server, connected.realm_id, "Invoice", item.qbo_id)
    assert again["SyncToken"] == voided["SyncToken"]  # QuickBooks was not written again
    assert item.cw_batch_identifier not in {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}
    assert item.cw_number in {r.number for r in unposted(app)}
