"""Reliability campaign (SPEC 16.2): worker processes SIGKILLed at random moments while
both sandboxes inject faults, over N batches; then every record is audited against both
sandboxes.

Both sandboxes run on loopback with a realistic latency, and `--workers` long-running
`portal worker` processes (each with its scheduler thread) share the work, with a short
stale window (`--stale`, PORTAL_RUN_STALE_SECONDS) and tick (`--tick`). The clean
invoices of a generated backlog are posted in `--batches` batches of `--records`, one
after another (one writing run per company). For each batch a seeded generator picks
the faults (QuickBooks: SystemFault on /batch and on its items, answers dropped after
commit, 429 bursts, access tokens expiring; ConnectWise: 5xx on accounting batches and
exports, answers dropped after commit, 429s) and the kill moments: a random delay after
each claim, the worker holding the run killed (sometimes an idle one, which may be the
scheduler's leader). A replacement worker starts only once the run was taken over, so
every takeover is a live one (no restart).

Counted:
- kills: SIGKILLs sent; resumes: kills of the run's holder followed by a claim by
  another, already running worker; max_resume_seconds: the longest kill-to-claim time
  (the claim is the taker's first heartbeat); the target is stale + 30 s (SPEC 16.2).
- duplicates: a DocNumber posted twice in QuickBooks, or a record with two accounting
  batches in ConnectWise.
- lost: a record `done`/`marked` missing in QuickBooks or unmarked in ConnectWise;
  one `posted` missing in QuickBooks or unmarked without a message; one QuickBooks
  holds that the batch says was not posted (`failed`, `skipped`, `selected`,
  `validated`); one marked in ConnectWise without a document; any other record
  without a message.
- stuck: batches not finished within `--deadline` seconds of their submission, or
  left unfinished by a run that ended (`paused`, waiting for a reconnect, is counted
  apart).

Prints progress to stderr and one JSON object on its last line. SQLite and the embedded
Redis by default; `--database-url` (a database whose name ends in `_test` or `_bench`:
its tables are dropped) and `--redis-url` (a spare index: it is flushed) for PostgreSQL
and a Redis server.

    .venv/bin/python benchmarks/reliability.py [--seed 1] [--batches 10] [--records 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rq import Worker

from portal import create_app, jobs, migrate
from portal.crypto import generate_key
from portal.db import Base, make_engine, session_scope
from portal.models import Batch, BatchItem, BatchStatus, ItemState, JobRun, RunStatus
from portal.services import scheduler
from portal.services.batching.types import invoices

from _common import connected_company, sandboxes  # run as scripts, side by side
from invoice_batch import clean_invoices, say, sim, submit

SECRET_KEY = "benchmark-secret-key"
STARTED = time.monotonic()
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)
ENDED = (BatchStatus.FINISHED, BatchStatus.CANCELLED, BatchStatus.PAUSED)
NOT_POSTED = (ItemState.FAILED, ItemState.SKIPPED, ItemState.SELECTED,
              ItemState.VALIDATED)


# ---- the environment ----------------------------------------------------------

@dataclass
class Env:
    """Both sandboxes, a connected portal, and what a worker needs to join it."""

    folder: str
    url: str
    redis_url: str | None
    key: str
    app: Any
    cw: Any
    cw_server: Any
    qbo_server: Any
    company_id: int
    realm: str
    args: argparse.Namespace

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update({"PORTAL_SECRET_KEY": SECRET_KEY, "PORTAL_ENCRYPTION_KEY": self.key,
                    "PORTAL_INSTANCE_PATH": self.folder,
                    "PORTAL_DATABASE_URL": self.url,
                    "PORTAL_LOG_LEVEL": "WARNING",
                    "PORTAL_RUN_STALE_SECONDS": str(self.args.stale),
                    "PORTAL_TICK_SECONDS": str(self.args.tick),
                    "PORTAL_LOOKUP_DELAY_SECONDS": "0.5",
                    "PORTAL_QBO_BATCH_SIZE": str(self.args.chunk)})
        if self.redis_url:
            env["PORTAL_REDIS_URL"] = self.redis_url
        return env

    def stop(self) -> None:
        self.cw_server.stop()
        self.qbo_server.stop()
        jobs.stop_embedded_redis(self.app)
        if self.args.keep:
            say(f"kept {self.folder} (database, worker logs)")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def _fresh_database(url: str | None, folder: str) -> str:
    if not url:
        url = f"sqlite:///{folder}/reliability.db"
    else:
        name = sa.engine.make_url(url).database or ""
        if not name.endswith(("_test", "_bench")):
            raise SystemExit(f"--database-url names {name!r}; its tables are dropped, "
                             "so its name must end in _test or _bench.")
        engine = make_engine(url)
        with engine.begin() as connection:
            Base.metadata.drop_all(connection)
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            connection.execute(sa.text(
                "DROP FUNCTION IF EXISTS audit_event_append_only() CASCADE"))
        engine.dispose()
    migrate.upgrade(url)
    return url


def start(args: argparse.Namespace) -> Env:
    say(f"generating the data set (scale={args.scale}) and starting both sandboxes")
    cw, qbo, cw_server, qbo_server = sandboxes(args.scale)
    folder = tempfile.mkdtemp(prefix="portal-bench-reliability-")
    url = _fresh_database(args.database_url, folder)
    key = generate_key()
    os.environ["PORTAL_INSTANCE_PATH"] = folder  # the embedded Redis lives here
    app = create_app({"SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": key,
                      "DATABASE_URL": url, "REDIS_URL": args.redis_url,
                      "PASSWORD_HASH_TIME_COST": 1,
                      "PASSWORD_HASH_MEMORY_KIB": 8, "PASSWORD_HASH_PARALLELISM": 1})
    jobs.get_redis(app).flushdb()  # this process owns the embedded Redis
    company_id, realm = connected_company(app, cw, cw_server, qbo_server)
    return Env(folder, url, args.redis_url, key, app, cw, cw_server, qbo_server,
               company_id, realm, args)


# ---- faults -------------------------------------------------------------------

QBO_API = r"^/v3/company/[^/]+/"
BATCH = r"^/v3/company/[^/]+/batch$"


def qbo_faults(rng: random.Random) -> list[dict[str, Any]]:
    """The QuickBooks faults of one batch, on top of a realistic latency."""
    rules: list[dict[str, Any]] = [
        {"kind": "latency", "path_regex": BATCH, "latency_ms": 400, "jitter_ms": 400},
        {"kind": "latency", "path_regex": QBO_API + r"(?!batch$)", "latency_ms": 100,
         "jitter_ms": 150}]
    if rng.random() < 0.7:  # SystemFault (HTTP 500) on a whole /batch: nothing written
        rules.append({"kind": "error", "method": "POST", "path_regex": BATCH,
                      "rate": round(rng.uniform(0.05, 0.2), 3)})
    if rng.random() < 0.6:  # SystemFault on single documents of a /batch
        rules.append({"kind": "error", "rate": round(rng.uniform(0.03, 0.12), 3),
                      "path_regex": r"/batch/item/(invoice|creditmemo)$"})
    if rng.random() < 0.2:  # ... and on single queries (a lookup that gets no answer)
        rules.append({"kind": "error", "path_regex": r"/batch/item/query$",
                      "rate": round(rng.uniform(0.01, 0.04), 3)})
    if rng.random() < 0.7:  # written, then the answer is lost
        rules.append({"kind": "drop_after_commit", "method": "POST",
                      "path_regex": BATCH, "rate": round(rng.uniform(0.05, 0.2), 3)})
    for _ in range(rng.randint(0, 2)):  # 429 bursts
        rules.append({"kind": "throttle", "path_regex": QBO_API,
                      "count": rng.randint(1, 3), "after": rng.randint(0, 30)})
    if rng.random() < 0.5:  # the access token stops working before its time
        rules.append({"kind": "token_expire", "path_regex": QBO_API, "count": 1,
                      "after": rng.randint(0, 30)})
    return rules


def cw_faults(rng: random.Random) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"kind": "latency", "path_regex": r"apis/3\.0/", "latency_ms": 60,
         "jitter_ms": 120}]
    if rng.random() < 0.7:  # 5xx on creating accounting batches (nothing written)
        rules.append({"kind": "error", "method": "POST",
                      "path_regex": r"/finance/accounting/batches$",
                      "rate": round(rng.uniform(0.05, 0.2), 3)})
    if rng.random() < 0.6:  # created, then the answer is lost
        rules.append({"kind": "drop_after_commit", "method": "POST",
                      "path_regex": r"/finance/accounting/batches$",
                      "rate": round(rng.uniform(0.05, 0.15), 3)})
    if rng.random() < 0.6:  # 5xx on the GL export
        rules.append({"kind": "error", "method": "POST",
                      "path_regex": r"/finance/accounting/export$",
                      "rate": round(rng.uniform(0.05, 0.25), 3)})
    if rng.random() < 0.5:  # 429s on reads
        rules.append({"kind": "throttle", "method": "GET", "path_regex": r"apis/3\.0/",
                      "rate": round(rng.uniform(0.01, 0.05), 3)})
    return rules


def set_faults(env: Env, rng: random.Random) -> None:
    for server, rules in ((env.qbo_server, qbo_faults(rng)),
                          (env.cw_server, cw_faults(rng))):
        sim(server, "faults", method="DELETE", params={"seed": rng.randrange(2 ** 31)})
        sim(server, "faults", method="POST", json=rules)


def take_faults(env: Env, fired: Counter[str]) -> None:
    """Count what fired, then clear the rules."""
    for name, server in (("qbo", env.qbo_server), ("cw", env.cw_server)):
        for rule in sim(server, "faults")["rules"]:
            if rule["kind"] != "latency" and rule["fired"]:
                fired[f"{name} {rule['kind']} {rule['method']} "
                      f"{rule['path_regex']}"] += rule["fired"]
        sim(server, "faults", method="DELETE")


# ---- workers ------------------------------------------------------------------

class Workers:
    """Long-running `portal worker` processes, kept at `size` by `top_up`."""

    def __init__(self, env: Env, size: int) -> None:
        self.env = env
        self.size = size
        self.processes: list[subprocess.Popen] = []
        self.started = 0
        self.exits: list[int] = []  # exit codes of workers that ended on their own

    def top_up(self) -> None:
        for process in self.processes:
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                self.exits.append(process.returncode)
        self.processes = [p for p in self.processes if p.poll() is None]
        while len(self.processes) < self.size:
            log = Path(self.env.folder) / f"worker-{self.started}.log"
            with open(log, "wb") as handle:
                self.processes.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "portal"), "worker"],
                    env=self.env.worker_env(), stdout=handle, stderr=subprocess.STDOUT))
            self.started += 1

    def ready(self) -> bool:
        """Every worker runs and announces itself (its RQ loop is up)."""
        names = scheduler.presence(jobs.get_redis(self.env.app)).names
        present = {int(name.split(".")[-2]) for name in names}
        return all(p.poll() is None and p.pid in present for p in self.processes)

    def kill(self, pid: int) -> float:
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        for process in self.processes:
            if process.pid == pid:
                process.wait(timeout=10)
        return killed

    def holder(self, run_job: str | None) -> int | None:
        """The pid of the worker working on the run's current RQ job."""
        for worker in Worker.all(connection=jobs.get_redis(self.env.app)):
            if run_job and worker.get_current_job_id() == run_job and \
                    worker.pid in {p.pid for p in self.processes if p.poll() is None}:
                return worker.pid
        return None

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# ---- the campaign -------------------------------------------------------------

@dataclass
class Tally:
    kills: int = 0
    idle_kills: int = 0
    resumes: list[float] = field(default_factory=list)
    phases: Counter[str] = field(default_factory=Counter)
    stuck: list[int] = field(default_factory=list)
    paused: int = 0
    fired: Counter[str] = field(default_factory=Counter)


def _run(env: Env, run_id: int) -> JobRun:
    with session_scope(env.app) as session:
        run = session.get(JobRun, run_id)
        session.expunge(run)
        return run


def drive(env: Env, pool: Workers, run_id: int, rng: random.Random, kills: int,
          tally: Tally) -> bool:
    """Work one batch's run to its end, killing `kills` times; False when it did not
    end within the deadline."""
    args = env.args
    submitted = time.monotonic()
    token: str | None = None
    kill_at: float | None = None
    killed: tuple[float, str] | None = None  # the holder's kill: when, which claim
    while True:
        now = time.monotonic()
        run = _run(env, run_id)
        if run.status in FINISHED:
            pool.top_up()
            return True
        if now - submitted > args.deadline:
            return False
        if run.status is RunStatus.RUNNING and run.claim_token not in (None, token):
            if killed is not None:
                tally.resumes.append(now - killed[0])
                say(f"  run {run_id} taken over after {now - killed[0]:.1f} s")
                killed = None
            token = run.claim_token
            pool.top_up()  # the replacement starts after the live takeover
            if kills:
                kill_at = now + rng.uniform(0.2, args.kill_window)
        if kill_at is not None and now >= kill_at and killed is None and pool.ready():
            holder = pool.holder(run.rq_job_id)
            if holder is not None:
                idle = [p.pid for p in pool.processes if p.pid != holder]
                target = holder if not idle or rng.random() < 0.85 else rng.choice(idle)
                at = pool.kill(target)
                kills -= 1
                tally.kills += 1
                phase = run.phase or "starting"
                if target == holder:
                    tally.phases[phase] += 1
                    killed = (at, token or "")
                    kill_at = None
                    say(f"  killed the worker holding run {run_id} ({phase})")
                else:
                    tally.idle_kills += 1
                    pool.top_up()
                    kill_at = None if not kills else \
                        now + rng.uniform(0.2, args.kill_window)
                    say("  killed an idle worker")
        time.sleep(0.1)


def campaign(env: Env, clean: list[invoices.Record], rng: random.Random
             ) -> tuple[Tally, list[int]]:
    args = env.args
    tally = Tally()
    pool = Workers(env, args.workers)
    batch_ids: list[int] = []
    try:
        pool.top_up()
        while not pool.ready():
            time.sleep(0.2)
        for number in range(args.batches):
            rows = clean[number * args.records:(number + 1) * args.records]
            if not rows:
                break
            left = args.batches - number
            kills = -(-max(0, args.kills - tally.kills) // left)  # spread what is left
            set_faults(env, rng)
            batch_id = submit(env, rows, "Default")
            with session_scope(env.app) as session:
                run_id = session.get(Batch, batch_id).run_id
            batch_ids.append(batch_id)
            say(f"batch {number + 1}/{args.batches} (#{batch_id}): {len(rows)} "
                f"records, {kills} kill(s) planned")
            ended = drive(env, pool, run_id, rng, kills, tally)
            take_faults(env, tally.fired)
            with session_scope(env.app) as session:
                batch = session.get(Batch, batch_id)
                status = batch.status
                say(f"  {status.value} {batch.colour}: {batch.message}")
            if not ended or status not in ENDED:
                tally.stuck.append(batch_id)
                why = f"after {args.deadline:.0f} s" if not ended else "its run ended"
                say(f"  STUCK: batch #{batch_id} is {status.value}; {why}")
            if not ended:
                say("  the company stays busy, so the campaign stops here")
                break
            tally.paused += status is BatchStatus.PAUSED
    finally:
        pool.stop()
        tally.fired["worker exits (not killed)"] += len(pool.exits)
    return tally, batch_ids


# ---- the audit ----------------------------------------------------------------

def audit(env: Env, batch_ids: list[int]) -> dict[str, Any]:
    """Every record of the campaign against both sandboxes."""
    with session_scope(env.app) as session:
        items = list(session.scalars(sa.select(BatchItem).where(
            BatchItem.batch_id.in_(batch_ids))))
        session.expunge_all()
    state = sim(env.qbo_server, "state", params={"realmId": env.realm})["companies"][0]
    documents: Counter[str] = Counter(
        str(d.get("DocNumber")) for entity in ("Invoice", "CreditMemo")
        for d in state["entities"].get(entity, []))
    with env.cw.store.lock:
        identifiers = [str(b["batchIdentifier"])
                       for b in env.cw.store.tables["batches"].values()]
    marks: Counter[str] = Counter(i[11:].lstrip("I").split("-")[0] for i in identifiers
                                  if i[11:12] == "I")
    duplicates: list[str] = []
    lost: list[str] = []
    for item in items:
        number = item.qbo_doc_number or item.cw_number or ""
        posted, marked = documents[number], marks[item.cw_number or ""]
        if posted > 1:
            duplicates.append(f"{number}: {posted} documents in QuickBooks")
        if marked > 1:
            duplicates.append(f"{item.cw_number}: {marked} accounting batches")
        why = None
        if item.state in (ItemState.DONE, ItemState.MARKED):
            why = None if posted and marked else "done but not in both systems"
        elif item.state is ItemState.POSTED:
            why = "posted but not in QuickBooks" if not posted else \
                None if marked or item.message else "posted, unmarked, no message"
        elif posted and item.state in NOT_POSTED:
            why = f"{item.state.value} but QuickBooks holds it"
        elif marked:
            why = f"{item.state.value} but marked in ConnectWise"
        elif not item.message:
            why = f"{item.state.value} without a message"
        if why:
            lost.append(f"{item.cw_number}: {why}")
    for line in duplicates + lost:
        say(f"  audit: {line}")
    return {"records": len(items), "duplicates": len(duplicates), "lost": len(lost),
            "states": dict(Counter(i.state.value for i in items))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--records", type=int, default=20, help="records per batch")
    parser.add_argument("--kills", type=int, default=24,
                        help="SIGKILLs over the campaign")
    parser.add_argument("--workers", type=int, default=2, help="workers alive at once")
    parser.add_argument("--stale", type=int, default=3, help="PORTAL_RUN_STALE_SECONDS")
    parser.add_argument("--tick", type=int, default=1, help="PORTAL_TICK_SECONDS")
    parser.add_argument("--chunk", type=int, default=10, help="PORTAL_QBO_BATCH_SIZE")
    parser.add_argument("--kill-window", type=float, default=4.0,
                        help="a kill comes up to this many seconds after a claim")
    parser.add_argument("--deadline", type=float, default=240.0,
                        help="seconds a batch may take before it counts as stuck")
    parser.add_argument("--scale", type=int, default=0,
                        help="generated invoices (default: enough clean ones)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (database, worker logs)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    for name in ("rq.worker", "werkzeug"):  # the preparation's worker; the sandboxes
        logging.getLogger(name).setLevel(logging.ERROR)
    wanted = args.batches * args.records
    args.scale = args.scale or wanted + max(300, wanted // 3)
    rng = random.Random(args.seed)

    env = start(args)
    try:
        clean = sorted(clean_invoices(env, "Default"), key=lambda r: r.number)
        if len(clean) < wanted:
            say(f"only {len(clean)} clean invoices for {wanted} records; raise --scale")
        tally, batch_ids = campaign(env, clean[:wanted], rng)
        figures = audit(env, batch_ids)
    finally:
        env.stop()
    target = args.stale + 30
    result = {
        "kills": tally.kills, "records": figures["records"],
        "duplicates": figures["duplicates"], "lost": figures["lost"],
        "stuck": len(tally.stuck),
        "max_resume_seconds": round(max(tally.resumes), 1) if tally.resumes else None,
        "target_resume_seconds": target,
        "median_resume_seconds": round(statistics.median(tally.resumes), 1)
        if tally.resumes else None,
        "resumes": len(tally.resumes), "idle_kills": tally.idle_kills,
        "paused": tally.paused,
        "kills_by_phase": dict(tally.phases), "batches": len(batch_ids),
        "states": figures["states"], "faults_fired": dict(tally.fired),
        "seed": args.seed, "workers": args.workers, "stale_seconds": args.stale,
        "tick_seconds": args.tick,
        "stack": "postgresql" if args.database_url else "sqlite",
        "redis": "server" if args.redis_url else "embedded",
        "seconds": round(time.monotonic() - STARTED, 1)}
    for name, value in result.items():
        say(f"{name}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
