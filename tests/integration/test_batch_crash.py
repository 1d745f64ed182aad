"""A worker process SIGKILLed at several points of a batch, restarted, finishes it: every
record posted once and marked once (SPEC 6.5, 16.2)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import BatchItem, BatchStatus, ItemState
from tests.integration.batching import (batch_of, clear_faults, cw_batches, fault,
                                        qbo_documents, submit, unposted)
from tests.integration.test_cli import PORTAL, _env
from tests.integration.test_invoice_batches import _blocked_then_clean, ready  # noqa: F401

pytestmark = pytest.mark.integration


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([PORTAL, "worker", "--burst"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(predicate, worker: subprocess.Popen, app, batch_id: int,  # type: ignore[no-untyped-def]
              timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    _batch, items = batch_of(app, batch_id)
    code = worker.poll()
    log = worker.stderr.read().decode()[-3000:] if code is not None else "(still running)"
    raise AssertionError(f"the worker never reached the point to kill it at: states "
                         f"{Counter(i.state.value for i in items)}, exit {code}, log {log}")


def _count(app, batch_id: int, state: ItemState) -> int:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == batch_id, BatchItem.state == state)) or 0


def _kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def kill_at_each_recovery_point(app, env, batch_id: int, total: int,  # type: ignore[no-untyped-def]
                                qbo_server, cw_server) -> None:
    """Run the batch in worker processes SIGKILLed while reading ConnectWise, while a
    QuickBooks /batch is in flight (PORTAL_QBO_BATCH_SIZE 4) and while ConnectWise creates
    an accounting batch; the caller's clean restart must then finish it."""
    # 1. Killed while reading ConnectWise (items still `selected`).
    fault(cw_server, kind="latency", method="POST", path_regex="/finance/accounting/export",
          latency_ms=3000, count=1)
    worker = _worker(env)
    _wait_for(lambda: batch_of(app, batch_id)[0].status is BatchStatus.RUNNING, worker, app,
              batch_id)
    time.sleep(1.0)  # inside the slow export call
    _kill(worker)
    assert _count(app, batch_id, ItemState.SELECTED) == total
    clear_faults(cw_server)

    # 2. Killed while QuickBooks is writing a /batch (items `posting`; the write lands).
    fault(qbo_server, kind="latency", method="POST", path_regex=r"/batch$", latency_ms=1500)
    time.sleep(1.2)  # the killed run's heartbeat goes stale
    worker = _worker(env)
    _wait_for(lambda: _count(app, batch_id, ItemState.POSTED) >= 4
              and _count(app, batch_id, ItemState.POSTING) >= 1, worker, app, batch_id)
    _kill(worker)
    assert _count(app, batch_id, ItemState.POSTING) == 4  # the slow /batch was in flight
    clear_faults(qbo_server)

    # 3. Killed while ConnectWise creates an accounting batch (items `posted`).
    fault(cw_server, kind="latency", method="POST", path_regex="/finance/accounting/batches$",
          latency_ms=2000, count=1, after=2)
    time.sleep(1.2)
    worker = _worker(env)
    _wait_for(lambda: _count(app, batch_id, ItemState.MARKED) >= 2, worker, app, batch_id)
    time.sleep(0.5)
    _kill(worker)
    with session_scope(app) as session:
        in_flight = session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.batch_id == batch_id, BatchItem.state == ItemState.POSTED,
            BatchItem.mark_attempts > 0))
    # killed while ConnectWise was creating accounting batches (marking runs several at a
    # time, so more than the slow one may be in flight, their intent committed)
    assert in_flight >= 1
    clear_faults(cw_server)


def test_sigkilled_worker_resumes_without_posting_or_marking_twice(
        app, ready, qbo_sandbox, cw_sandbox, database_url, redis_url,  # noqa: F811
        instance_path):
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:12]
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
               PORTAL_RUN_STALE_SECONDS="1", PORTAL_LOOKUP_DELAY_SECONDS="0",
               PORTAL_QBO_BATCH_SIZE="4")
    batch_id = submit(app, set(clean))
    kill_at_each_recovery_point(app, env, batch_id, len(clean), qbo_server, cw_server)

    # 4. A clean restart finishes the batch.
    time.sleep(1.2)
    worker = _worker(env)
    assert worker.wait(timeout=300) == 0, worker.stderr.read().decode()[-3000:]
    log = worker.stderr.read().decode()
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert Counter(i.state.value for i in items) == {"done": len(clean)}, (batch.message, [
        (i.cw_number, i.state, i.message) for i in items if i.state is not ItemState.DONE],
        log[-3000:])
    numbers = Counter(d["DocNumber"] for d in qbo_documents(qbo_server, ready.realm_id))
    assert all(numbers[n] == 1 for n in clean), numbers
    marks = Counter(b["batchIdentifier"].split("-I")[-1] for b in cw_batches(cw_sandbox))
    assert all(marks[n] == 1 for n in clean), marks
    assert not set(clean) & {r.number for r in unposted(app)}

