"""Helpers for batch tests: submit a selection as the UI does, read both sandboxes' state."""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests
import sqlalchemy as sa

from portal import clients, jobs
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, Company, ItemState, RunKind
from portal.services import batches
from portal.services.batching.types import invoices as cw_invoices


def unposted(app: Any) -> list[cw_invoices.Record]:
    with app.app_context(), session_scope(app) as session:
        return cw_invoices.unposted(clients.connectwise(session))


def submit(app: Any, numbers: set[str] | None = None, summary: str = "Default") -> int:
    """Submit the unposted invoices (all, or those numbered) and enqueue the batch."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).first()
        rows = [r for r in cw_invoices.unposted(clients.connectwise(session))
                if numbers is None or r.number in numbers]
        batch = batches.submit(session, company, rows, user=None,
                               options={"summary": summary})
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id


def batch_of(app: Any, batch_id: int) -> tuple[Batch, list[BatchItem]]:
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        items = list(session.scalars(sa.select(BatchItem).where(
            BatchItem.batch_id == batch_id).order_by(BatchItem.position)))
        session.expunge_all()
        return batch, items


def states(items: list[BatchItem]) -> Counter[str]:
    return Counter(i.state.value for i in items)


def numbers_in(items: list[BatchItem], state: ItemState) -> set[str]:
    return {i.cw_number for i in items if i.state is state}


def qbo_state(server: Any, realm: str) -> dict[str, list[dict[str, Any]]]:
    state = requests.get(f"{server.url}/_sim/state", params={"realmId": realm},
                         timeout=30).json()
    [company] = state["companies"]
    return company["entities"]


def qbo_documents(server: Any, realm: str) -> list[dict[str, Any]]:
    entities = qbo_state(server, realm)
    return [dict(d, _entity=e) for e in ("Invoice", "CreditMemo") for d in entities.get(e, [])]


def cw_batches(cw_sandbox: Any) -> list[dict[str, Any]]:
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return [dict(b) for b in sandbox.store.tables["batches"].values()]


def fault(server: Any, **rule: Any) -> dict[str, Any]:
    answer = requests.post(f"{server.url}/_sim/faults", json=rule, timeout=5)
    assert answer.status_code < 300, answer.text
    return answer.json()


def clear_faults(server: Any) -> None:
    requests.delete(f"{server.url}/_sim/faults", timeout=5)


def retry_and_run(app: Any, batch_id: int) -> int:
    """Retry a batch's unfinished items as the batch page does and run it; its id."""
    with session_scope(app) as session:
        retry = batches.retry(session, session.get(Batch, batch_id), None)
        session.commit()
        retry_id, run_id = retry.id, retry.run_id
    with app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    jobs.run_burst(app)
    return retry_id


def faults_fired(*servers: Any) -> None:
    """Every fault rule of the servers fired at least once (so each kind really happened);
    then they are cleared."""
    fired = {r["kind"] + r["path_regex"]: r["fired"] for server in servers
             for r in requests.get(f"{server.url}/_sim/faults", timeout=5).json()["rules"]}
    assert all(fired.values()), fired
    for server in servers:
        clear_faults(server)
