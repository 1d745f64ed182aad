"""A run killed at any point is taken over by a worker that is already running, within
PORTAL_RUN_STALE_SECONDS and a tick, with no restart (SPEC 6.5, 15.1, 16.2 I7): every
record ends posted once and marked once. The dashboard and /readyz count live workers
only; a live worker's run never looks dead, and a run stopped by a database error still
ends its batch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from rq import Worker

from portal import jobs
from portal.db import session_scope
from portal.models import Batch, BatchItem, BatchStatus, ItemState, JobRun, RunStatus
from portal.services import runs, scheduler
from tests.conftest import run_jobs
from tests.integration.batching import (batch_of, clear_faults, cw_batches, fault,
                                        qbo_documents, submit, unposted)
from tests.integration.test_cli import PORTAL, _env
from tests.integration.test_invoice_batches import (  # noqa: F401
    _blocked_then_clean, ready)

pytestmark = pytest.mark.integration

STALE, TICK = 3, 1
MARGIN = 12.0  # seconds for a loaded machine: start-up, a slow poll, a slow claim


class Workers:
    """Long-running `portal worker` processes (not --burst), logging to files."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        with open(self.folder / f"worker-{len(self.processes)}.log", "wb") as log:
            process = subprocess.Popen([PORTAL, "worker"], env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def kill(self, pid: int) -> float:
        """SIGKILL the worker; returns when (monotonic seconds)."""
        [process] = [p for p in self.processes if p.pid == pid]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        process.wait(timeout=10)
        return killed

    def alive(self) -> set[int]:
        return {p.pid for p in self.processes if p.poll() is None}

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {n} (pid {p.pid}, exit {p.poll()}):\n"
            + (self.folder / f"worker-{n}.log").read_text(errors="replace")[-2500:]
            for n, p in enumerate(self.processes))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()  # RQ's warm shutdown; the ticker leaves
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture()
def workers(app, database_url, redis_url, instance_path,  # type: ignore[no-untyped-def]
            tmp_path) -> Iterator[Workers]:
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url,
               PORTAL_REDIS_URL=redis_url, PORTAL_RUN_STALE_SECONDS=str(STALE),
               PORTAL_TICK_SECONDS=str(TICK), PORTAL_LOOKUP_DELAY_SECONDS="0",
               PORTAL_QBO_BATCH_SIZE="4")
    pool = Workers(env, tmp_path)
    yield pool
    pool.stop()  # before the app's teardown empties the tables and Redis


def _until(what: str, predicate: Callable[[], Any], pool: Workers,
           timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{pool.logs()}")


def _run(app, run_id: int) -> JobRun:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        run = session.get(JobRun, run_id)
        session.expunge(run)
        return run


def _count(app, batch_id: int, *states: ItemState,  # type: ignore[no-untyped-def]
           marking: bool = False) -> int:
    query = sa.select(sa.func.count()).select_from(BatchItem).where(
        BatchItem.batch_id == batch_id, BatchItem.state.in_(states))
    if marking:
        query = query.where(BatchItem.mark_attempts > 0)
    with session_scope(app) as session:
        return session.scalar(query) or 0


def _holder(app, run: JobRun) -> int | None:  # type: ignore[no-untyped-def]
    """The pid of the worker process working on the run's current RQ job."""
    for worker in Worker.all(connection=jobs.get_redis(app)):
        if run.rq_job_id and worker.get_current_job_id() == run.rq_job_id:
            return worker.pid
    return None


def _claimed(app, run_id: int, pool: Workers,  # type: ignore[no-untyped-def]
             other_than: str | None = None) -> tuple[JobRun, int]:
    """Wait until a live worker holds the run under a claim other than `other_than`."""

    def claimed() -> tuple[JobRun, int] | None:
        run = _run(app, run_id)
        if run.status is not RunStatus.RUNNING or run.claim_token in (None, other_than):
            return None
        pid = _holder(app, run)
        return (run, pid) if pid in pool.alive() else None

    return _until("a live worker claims the run", claimed, pool)


def _taken_over(app, run: JobRun, pool: Workers,  # type: ignore[no-untyped-def]
                times: list[float]) -> tuple[JobRun, int]:
    """Wait for a worker that ran before the kill to claim the run; the last entry of
    `times`, the kill, becomes the seconds the takeover took."""
    running = pool.alive()
    run, holder = _claimed(app, run.id, pool, other_than=run.claim_token)
    times[-1] = time.monotonic() - times[-1]
    assert holder in running  # no worker was started for it
    return run, holder


def _rule_fired(server: Any, rule_id: int) -> int:
    rules = requests.get(f"{server.url}/_sim/faults", timeout=5).json()["rules"]
    return next((r["fired"] for r in rules if r["id"] == rule_id), 0)


def _rule_fired_all(server: Any) -> int:
    rules = requests.get(f"{server.url}/_sim/faults", timeout=5).json()["rules"]
    return sum(r["fired"] for r in rules)


def _live_pids(app) -> set[int]:  # type: ignore[no-untyped-def]
    """Worker pids as the dashboard's presence sees them (names are host.pid.random)."""
    names = scheduler.presence(jobs.get_redis(app)).names
    return {int(name.split(".")[-2]) for name in names}


def test_a_killed_run_is_taken_over_by_a_live_worker_without_a_restart(
        app, client, ready, qbo_sandbox, cw_sandbox, workers):  # noqa: F811
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:12]
    assert client.get("/readyz").status_code == 503  # no worker yet

    # One idle worker: counted, ready, and the scheduler's leader. Then three more, all
    # running before anything is killed: whoever takes a run over was already there.
    first = workers.start()
    _until("the first worker beats", lambda: _live_pids(app) == {first.pid}, workers)
    _until("the first worker leads the scheduler",
           lambda: jobs.get_redis(app).get(scheduler.LEADER_KEY), workers)
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    assert "1 worker(s)" in client.get("/").get_data(as_text=True)
    for _ in range(3):
        workers.start()
    _until("four workers beat", lambda: _live_pids(app) == workers.alive(), workers)
    assert "4 worker(s)" in client.get("/").get_data(as_text=True)

    # 1. Killed while reading ConnectWise: the GL export hangs for 3 s. The first
    # worker, waiting longest on the queue, takes the batch: it is also the leader.
    export = fault(cw_server, kind="latency", method="POST", latency_ms=3000, count=1,
                   path_regex="/finance/accounting/export")["rules"][0]["id"]
    batch_id = submit(app, set(clean))
    with session_scope(app) as session:
        run_id = session.get(Batch, batch_id).run_id
    run, holder = _claimed(app, run_id, workers)
    assert holder == first.pid
    _until("the worker is inside the export", lambda: _rule_fired(cw_server, export),
           workers)
    took = [workers.kill(holder)]
    assert _count(app, batch_id, ItemState.SELECTED) == len(clean)  # nothing written
    clear_faults(cw_server)
    run, holder = _taken_over(app, run, workers, took)

    # 2. Killed while QuickBooks writes a /batch of documents (items `posting`).
    fault(qbo_server, kind="latency", method="POST", path_regex=r"/batch$",
          latency_ms=2500)
    _until("the worker posts a chunk",
           lambda: _count(app, batch_id, ItemState.POSTING), workers)
    time.sleep(0.5)  # the request is at QuickBooks, which answers 2.5 s after it came
    marking = fault(cw_server, kind="latency", method="POST", latency_ms=3000, count=1,
                    path_regex="/finance/accounting/batches$")["rules"][0]["id"]
    took.append(workers.kill(holder))
    with session_scope(app) as session:
        in_flight = set(session.scalars(sa.select(BatchItem.qbo_doc_number).where(
            BatchItem.batch_id == batch_id, BatchItem.state == ItemState.POSTING)))
    assert in_flight
    clear_faults(qbo_server)
    _until("the killed worker's /batch is written all the same", lambda: in_flight <= {
        d["DocNumber"] for d in qbo_documents(qbo_server, ready.realm_id)}, workers)
    run, holder = _taken_over(app, run, workers, took)

    # 3. Killed while ConnectWise creates an accounting batch (items `posted`).
    _until("the worker marks a record", lambda: _rule_fired(cw_server, marking),
           workers)
    took.append(workers.kill(holder))
    assert _count(app, batch_id, ItemState.POSTED, marking=True) >= 1
    clear_faults(cw_server)
    run, holder = _taken_over(app, run, workers, took)

    # Each takeover came from the stale window and a tick: not from a restart, nor
    # from the expiry of the dead leader's lock.
    assert all(seconds <= STALE + TICK + MARGIN for seconds in took), took

    # 4. The worker holding it now finishes: every record posted once, marked once.
    _until("the batch finishes", lambda: batch_of(app, batch_id)[0].status
           is BatchStatus.FINISHED, workers)
    batch, items = batch_of(app, batch_id)
    assert Counter(i.state.value for i in items) == {"done": len(clean)}, (
        batch.message, [(i.cw_number, i.state, i.message) for i in items
                        if i.state is not ItemState.DONE])
    numbers = Counter(d["DocNumber"] for d in qbo_documents(qbo_server, ready.realm_id))
    assert all(numbers[n] == 1 for n in clean), numbers
    assert all(count == 1 for count in numbers.values()), "a DocNumber posted twice"
    marks = Counter(b["batchIdentifier"].split("-I")[-1]
                    for b in cw_batches(cw_sandbox))
    assert all(marks[n] == 1 for n in clean), marks
    assert not set(clean) & {r.number for r in unposted(app)}
    assert _run(app, run_id).status is RunStatus.SUCCEEDED

    # The dead leave the dashboard within the presence TTL (twelve beats); the one
    # idle worker left is counted and ready.
    _until("only the live workers are counted",
           lambda: _live_pids(app) == workers.alive(), workers,
           timeout=12 * TICK + MARGIN)
    assert len(workers.alive()) == 1
    assert "1 worker(s)" in client.get("/").get_data(as_text=True)
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.get_json()


def test_a_worker_waiting_on_connectwise_keeps_its_run_alive(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """While the engine waits (a slow GL export read ahead, the last marks), the run's
    heartbeat goes on, so the run never looks dead to the scheduler: on SQLite the
    heartbeat waits for the job's session to be between transactions."""
    _cw, cw_server = cw_sandbox
    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:4]
    for path in ("/finance/accounting/export", "/finance/accounting/batches$"):
        fault(cw_server, kind="latency", method="POST", latency_ms=2000 + 1000 * STALE,
              count=1, path_regex=path)
    batch_id = submit(app, set(clean))
    with session_scope(app) as session:
        run_id = session.get(Batch, batch_id).run_id
    looked_dead: list[str] = []
    done = threading.Event()

    def watch() -> None:
        with session_scope(app) as session:
            while not done.is_set():
                stale = [r for r in runs.stale(session, STALE) if r.id == run_id]
                if stale and stale[0].status is RunStatus.RUNNING:
                    looked_dead.append(stale[0].phase or "")
                session.rollback()
                time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_jobs(app)
    finally:
        done.set()
        watcher.join(timeout=10)
    batch, items = batch_of(app, batch_id)
    assert Counter(i.state.value for i in items) == {"done": len(clean)}, batch.message
    assert _rule_fired_all(cw_server) == 2  # both waits happened
    assert not looked_dead, Counter(looked_dead)


REFUSE_MARKED = {
    "sqlite": ["CREATE TRIGGER refuse_marked BEFORE INSERT ON batch_item_event "
               "WHEN NEW.to_state = 'marked' "
               "BEGIN SELECT RAISE(ABORT, 'disk full'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.to_state = 'marked' THEN RAISE EXCEPTION 'disk full'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER refuse_marked BEFORE INSERT ON batch_item_event FOR EACH ROW "
        "EXECUTE FUNCTION refuse_marked()"]}
DROP_REFUSE_MARKED = {
    "sqlite": ["DROP TRIGGER IF EXISTS refuse_marked"],
    "postgresql": ["DROP TRIGGER IF EXISTS refuse_marked ON batch_item_event",
                   "DROP FUNCTION IF EXISTS refuse_marked()"]}


def test_a_database_error_stops_the_batch_without_leaving_it_running(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """The database refuses the engine's write (here: recording a record as marked):
    the batch still ends, red, every record saying what happened; it is not left
    `running` under a failed run, which nothing would ever finish."""
    from portal.db import engine

    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:4]
    dialect = engine(app).dialect.name
    with engine(app).begin() as connection:
        for statement in REFUSE_MARKED[dialect]:
            connection.exec_driver_sql(statement)
    try:
        batch_id = submit(app, set(clean))
        run_jobs(app)
    finally:
        with engine(app).begin() as connection:
            for statement in DROP_REFUSE_MARKED[dialect]:
                connection.exec_driver_sql(statement)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and batch.colour == "red", batch.status
    assert "unexpected error" in batch.message, batch.message
    assert {i.state for i in items} == {ItemState.POSTED}
    assert all(i.message and i.fix_hint for i in items)
    assert _run(app, batch.run_id).status is RunStatus.FAILED
