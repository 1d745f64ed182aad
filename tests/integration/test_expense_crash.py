"""An expense batch whose worker is SIGKILLed at each recovery point (reading ConnectWise,
a QuickBooks /batch in flight, marking), restarted, finishes: every group posted once and
marked once, nothing lost (SPEC 6.5, 16.2)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from portal.models import BatchStatus, ItemState
from tests.integration.batching import batch_of, cw_batches, qbo_state
from tests.integration.expenses import (expense_documents, postable, submit_groups,
                                        unposted_expense_ids)
from tests.integration.test_batch_crash import _worker, kill_at_each_recovery_point
from tests.integration.test_cli import _env

pytestmark = pytest.mark.integration


def test_sigkilled_worker_resumes_an_expense_batch_without_posting_or_marking_twice(
        app, connected, qbo_sandbox, cw_sandbox, database_url, redis_url, instance_path):
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = [r for r in postable(app) if r.party != "Kiran Patel"][:12]
    kinds = {r.target for r in clean}
    assert len(kinds) >= 2, kinds  # bills and purchases at least
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
               PORTAL_RUN_STALE_SECONDS="1", PORTAL_LOOKUP_DELAY_SECONDS="0",
               PORTAL_QBO_BATCH_SIZE="4")
    batch_id = submit_groups(app, clean)
    kill_at_each_recovery_point(app, env, batch_id, len(clean), qbo_server, cw_server)
    time.sleep(1.2)  # a clean restart finishes the batch
    worker = _worker(env)
    assert worker.wait(timeout=300) == 0, worker.stderr.read().decode()[-3000:]
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert Counter(i.state.value for i in items) == {"done": len(clean)}, [
        (i.cw_number, i.state, i.message) for i in items if i.state is not ItemState.DONE]
    numbers = Counter(d["DocNumber"] for d in expense_documents(
        qbo_state(qbo_server, connected.realm_id)))
    assert {r.number: numbers[r.number] for r in clean} == {r.number: 1 for r in clean}
    marks = Counter(b["batchIdentifier"].split("-", 3)[3] for b in cw_batches(cw_sandbox)
                    if b.get("exportExpensesFlag"))
    assert sorted(marks.values()) == [1] * len(clean), marks
    assert not {int(ref) for r in clean for ref in r.source_refs} & unposted_expense_ids(
        cw_sandbox)
