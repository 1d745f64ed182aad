"""Invoice batch at real time: 1,000 invoices posted and marked against both sandboxes
running at the real limits and latencies, compared with the least time those limits allow.

For each size it starts both sandboxes on loopback (`demo_data.generate(scale=...)`), a
portal app on a temporary SQLite database and the embedded Redis, and connects them as an
admin would. The whole backlog is submitted once (pre-flight blocks it and writes nothing;
its skipped items are the clean invoices). Then the sandboxes are set to the real world:
QuickBooks answers a /batch in 1 s and any other call in 250 ms, ConnectWise any call in
200 ms, and QuickBooks enforces its limits (500 requests and 40 /batch per sliding minute
per company, 10 in flight). The first N clean invoices are submitted as one batch and
worked by a separate `portal worker --burst` process, whose CPU time, peak memory and SQL
statements are measured. `--clock X` runs the sandbox clock and every latency X times
faster (development runs only; the README figure is at real time, `--clock 1`).

The floor is the least wall time the outside limits allow for the calls this run made:
QuickBooks: every call at its latency, at most 10 in flight, at most 40 /batch and 500
requests in any 60 s; ConnectWise: every call at 200 ms, at most 4 in flight; the floor is
the larger of the two. The run's `seconds` is the batch's started_at to finished_at.

Prints figures to stderr and one JSON object on its last line.

    .venv/bin/python benchmarks/invoice_batch.py [--invoices 1000] [--memory 10000] [--clock 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from portal import clients, create_app, jobs, migrate
from portal.crypto import generate_key
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, Company, JobRun, RunKind
from portal.sandbox import connectwise, demo_data, quickbooks
from portal.sandbox.common import SimClock
from portal.sandbox.quickbooks.switches import DEFAULTS
from portal.services import batches
from portal.services.batching.types import invoices

from _common import connected_company, login  # run as a script, next to this file

HERE = Path(__file__).resolve().parent
SECRET_KEY = "benchmark-secret-key"
STARTED = time.monotonic()
QBO_BATCH_SECONDS, QBO_CALL_SECONDS, CW_CALL_SECONDS = 1.0, 0.25, 0.2
QBO_IN_FLIGHT, QBO_BATCH_PER_MINUTE, QBO_PER_MINUTE, CW_IN_FLIGHT = 10, 40, 500, 4
PREP_SPEED = 60.0


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f} s] {text}", file=sys.stderr, flush=True)


@dataclass
class Env:
    """Both sandboxes, a connected portal and what a worker process needs to join it."""

    scale: int
    folder: str
    url: str
    key: str
    app: Any
    cw: Any
    qbo: Any
    cw_server: Any
    qbo_server: Any
    company_id: int
    realm: str
    clock: float

    def worker_env(self) -> dict[str, str]:
        """PORTAL_* only, the embedded Redis; portal's QuickBooks pacing at the real limits
        (scaled with a faster sandbox clock)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update({"PORTAL_SECRET_KEY": SECRET_KEY, "PORTAL_ENCRYPTION_KEY": self.key,
                    "PORTAL_INSTANCE_PATH": self.folder, "PORTAL_DATABASE_URL": self.url,
                    "PORTAL_LOG_LEVEL": "WARNING", "PORTAL_PASSWORD_HASH_MEMORY_KIB": "8",
                    "PORTAL_PASSWORD_HASH_TIME_COST": "1",
                    "PORTAL_PASSWORD_HASH_PARALLELISM": "1",
                    "PORTAL_LOOKUP_DELAY_SECONDS": str(5 / self.clock),
                    "PORTAL_QBO_MAX_RPM": str(int(QBO_PER_MINUTE * self.clock)),
                    "PORTAL_QBO_MAX_BATCH_RPM": str(int(QBO_BATCH_PER_MINUTE * self.clock)),
                    "PORTAL_QBO_MAX_CONCURRENT": str(QBO_IN_FLIGHT),
                    "PORTAL_CW_MAX_CONCURRENT": str(CW_IN_FLIGHT),
                    "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])})
        return env

    def stop(self) -> None:
        """Stop both sandboxes and the embedded Redis this script started, then remove
        the temporary folder."""
        self.cw_server.stop()
        self.qbo_server.stop()
        jobs.stop_embedded_redis(self.app)
        shutil.rmtree(self.folder, ignore_errors=True)  # the database, Redis, worker logs


def start(scale: int, clock: float, **extra: int) -> Env:
    """The QuickBooks sandbox starts on a fast clock for the preparation (the backlog's
    pre-flight and reference reads); `real_world` slows it to the measured speed. `extra`
    goes to the data set (`expenses=…`, `receipts=…`)."""
    say(f"generating the data set (scale={scale}, {extra}) and starting both sandboxes")
    data = demo_data.generate(scale=scale, **extra)
    cw = connectwise.ConnectWiseSandbox(data=data["connectwise"])
    lifetime = int(DEFAULTS["sim.qbo_access_token_seconds"] * PREP_SPEED)
    qbo = quickbooks.QuickBooksSandbox(data=data["quickbooks"], clock=SimClock(PREP_SPEED),
                                       switches={"sim.qbo_access_token_seconds": lifetime})
    del data
    cw_server, qbo_server = connectwise.serve(cw), quickbooks.serve(qbo)
    folder = tempfile.mkdtemp(prefix="portal-bench-batch-")
    url = f"sqlite:///{folder}/bench.db"
    migrate.upgrade(url)
    key = generate_key()
    os.environ["PORTAL_INSTANCE_PATH"] = folder  # the embedded Redis lives here
    app = create_app({"SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": key, "DATABASE_URL": url,
                      "REDIS_URL": None, "PASSWORD_HASH_TIME_COST": 1,
                      "PASSWORD_HASH_MEMORY_KIB": 8, "PASSWORD_HASH_PARALLELISM": 1,
                      "QBO_MAX_RPM": int(QBO_PER_MINUTE * PREP_SPEED),
                      "QBO_MAX_BATCH_RPM": int(QBO_BATCH_PER_MINUTE * PREP_SPEED)})
    company_id, realm = connected_company(app, cw, cw_server, qbo_server)
    return Env(scale, folder, url, key, app, cw, qbo, cw_server, qbo_server, company_id, realm,
               clock)


def unposted(env: Env) -> list[invoices.Record]:
    with env.app.app_context(), session_scope(env.app) as session:
        return invoices.unposted(clients.connectwise(session))


def submit(env: Env, rows: list[invoices.Record], summary: str) -> int:
    """As the batch page does: batches.submit, commit, then enqueue the run."""
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        batch = batches.submit(session, company, rows, user=None, options={"summary": summary})
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with env.app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id


def _preflight(env: Env, rows: list[invoices.Record], summary: str,
               kind: str = "invoice") -> Any:
    """The batch engine's own pre-flight over `rows` (of record type `kind`), in-process,
    writing nothing."""
    from portal.services import company_settings
    from portal.services.batching import preflight
    from portal.services.batching.engine import prefs_of
    from portal.services.batching.types import record_type
    from portal.services.batching.types.base import CompanyFacts, Context
    from portal.services.mapping import MappingSet

    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        settings = company_settings.get_settings(session, company)
        ctx = Context(CompanyFacts.of(company), settings,
                      MappingSet.load(session, company, prefs_of(settings)),
                      {"summary": summary})
        qbo = clients.quickbooks(session, company)
        check = preflight.Preflight(record_type(kind), ctx)
        return preflight.evaluate(check, clients.connectwise(session), rows, qbo.batch), ctx


def load_references(env: Env) -> None:
    """"Refresh" in Mappings, worked in-process: the reference lists pre-flight reads."""
    client = env.app.test_client()
    login(client)
    page = client.get("/mappings/").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    client.post(f"/mappings/refresh?company={env.company_id}",
                headers={"HX-Request": "true", "X-CSRFToken": token})
    jobs.make_worker(env.app).work(burst=True, with_scheduler=False,
                                   logging_level="WARNING")  # the reference lists


def clean_invoices(env: Env, summary: str) -> list[invoices.Record]:
    """The unposted invoices pre-flight finds nothing wrong with (references missing in
    QuickBooks are not wrong: a batch creates them)."""
    load_references(env)
    rows = unposted(env)
    say(f"pre-flight of the whole backlog ({len(rows)} unposted invoices), in-process")
    report, _ctx = _preflight(env, rows, summary)
    failing = report.failing()
    say(f"{len(rows) - len(failing)} clean invoices in the backlog")
    return [r for r in rows if r.key not in failing]


def create_references(env: Env, rows: list[invoices.Record], summary: str,
                      kind: str = "invoice") -> int:
    """What an admin does with "Create in QuickBooks" in Mappings before a monthly batch:
    the customers, items and terms these invoices need are created first (in-process, on
    the preparation's fast clock), so the measured batch is a steady-state one. Returns how
    many were created; `--first-batch` skips this and measures their creation too."""
    from portal.services import creation
    from portal.services.mapping import MappingSet

    report, ctx = _preflight(env, rows, summary, kind)
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        qbo = clients.quickbooks(session, company)
        return creation.ensure_all(
            session, company, qbo, lambda: MappingSet.load(session, company, ctx.mapping.prefs),
            list(report.needs.values()), lambda ops, rid: qbo.batch(ops, request_id=rid))


def sim(server: Any, path: str, **kwargs: Any) -> Any:
    method = kwargs.pop("method", "GET")
    answer = requests.request(method, f"{server.url}/_sim/{path}", timeout=60, **kwargs)
    answer.raise_for_status()
    return answer.json() if answer.content else None


def request_logs(env: Env) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The API calls each sandbox logged since its log was last emptied."""
    qbo_log = [e for e in sim(env.qbo_server, "requests", params={"entries": 1})["entries"]
               if e["path"].startswith(f"/v3/company/{env.realm}/")]
    cw_log = [e for e in sim(env.cw_server, "requests", params={"entries": 1})["entries"]
              if "apis/3.0/" in e["path"].lower()]
    return qbo_log, cw_log


def real_world(env: Env) -> None:
    """The sandboxes at the real latencies and limits (scaled by --clock), with empty
    windows: the preparation's calls leave no trace in QuickBooks' or portal's counters."""
    clock = env.clock
    sim(env.qbo_server, "clock", method="POST", json={"speed": clock, "advance": 3600})
    sim(env.qbo_server, "faults", method="POST", json=[
        {"kind": "latency", "path_regex": r"^/v3/company/[^/]+/batch$",
         "latency_ms": int(QBO_BATCH_SECONDS * 1000 / clock)},
        {"kind": "latency", "path_regex": r"^/v3/company/[^/]+/(?!batch$)",
         "latency_ms": int(QBO_CALL_SECONDS * 1000 / clock)}])
    sim(env.cw_server, "faults", method="POST", json={
        "kind": "latency", "path_regex": r"apis/3\.0/", "latency_ms": int(
            CW_CALL_SECONDS * 1000 / clock)})
    store = jobs.get_redis(env.app)
    for key in store.scan_iter(match="portal:qbo-pace:*"):
        store.delete(key)
    store.delete("portal:cw-inflight")
    for server in (env.qbo_server, env.cw_server):
        sim(server, "requests", method="DELETE")


@dataclass
class Usage:
    seconds: float
    cpu: float
    max_rss_kib: int
    code: int
    statements: int
    commits: int


# Linux carries a parent's RSS into its child's ru_maxrss, so a worker started straight
# from this big process would report this process's size: a small launcher forks the
# worker and reads the worker's own rusage with wait4().
LAUNCHER = """
import json, os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as handle:
    json.dump({"code": os.waitstatus_to_exitcode(status), "utime": usage.ru_utime,
               "stime": usage.ru_stime, "maxrss_kib": usage.ru_maxrss}, handle)
"""


def run_worker(env: Env, label: str, run_id: int | None = None) -> Usage:
    """`portal worker --burst` as its own process (benchmarks/_worker.py counts its SQL)."""
    folder = Path(env.folder)
    log_path, usage_path = folder / f"worker-{label}.log", folder / f"worker-{label}.json"
    sql_path = folder / f"worker-{label}-sql.json"
    with open(log_path, "w") as log:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(usage_path),
                                    sys.executable, str(HERE / "_worker.py"), str(sql_path)],
                                   env=env.worker_env(), stdout=log, stderr=subprocess.STDOUT)
        last = started
        while process.poll() is None:
            time.sleep(0.2)
            if run_id is not None and time.monotonic() - last >= 10:
                last = time.monotonic()
                with session_scope(env.app) as session:
                    run = session.get(JobRun, run_id)
                    say(f"  worker: {run.status.value} {run.phase or ''} {run.message or ''}")
        seconds = time.monotonic() - started
    usage = json.loads(usage_path.read_text())
    sql = json.loads(sql_path.read_text()) if sql_path.exists() else {}
    if usage["code"] != 0:
        say(f"worker exited with {usage['code']}; its log:\n" + log_path.read_text()[-4000:])
    return Usage(seconds, usage["utime"] + usage["stime"], usage["maxrss_kib"], usage["code"],
                 sql.get("statements", 0), sql.get("commits", 0))


def qbo_floor(batch_calls: int, other_calls: int) -> float:
    """The earliest the last QuickBooks call can end: calls at their latency, 10 in flight,
    at most 40 /batch and 500 requests starting in any 60 s (sliding windows from empty).
    /batch calls go first (they are the long ones); a greedy schedule of independent
    calls, which is optimal for these two call lengths within the window limits."""
    import heapq

    slots = [0.0] * QBO_IN_FLIGHT  # when each in-flight slot frees
    batch_starts: list[float] = []
    all_starts: list[float] = []
    end = 0.0
    for length, is_batch in [(QBO_BATCH_SECONDS, True)] * batch_calls + \
            [(QBO_CALL_SECONDS, False)] * other_calls:
        at = heapq.heappop(slots)
        if len(all_starts) >= QBO_PER_MINUTE:
            at = max(at, all_starts[-QBO_PER_MINUTE] + 60.0)
        if is_batch and len(batch_starts) >= QBO_BATCH_PER_MINUTE:
            at = max(at, batch_starts[-QBO_BATCH_PER_MINUTE] + 60.0)
        all_starts.append(at)
        if is_batch:
            batch_starts.append(at)
        heapq.heappush(slots, at + length)
        end = max(end, at + length)
    return end


def cw_floor(calls: int) -> float:
    return math.ceil(calls / CW_IN_FLIGHT) * CW_CALL_SECONDS


@dataclass
class Result:
    invoices: int
    states: Counter[str]
    colour: str
    message: str
    seconds: float
    qbo_batch: int
    qbo_other: int
    qbo_reads: int
    qbo_429: int
    cw_calls: int
    worker: Usage
    idle: Usage
    connections: int = 0

    @property
    def floor(self) -> float:
        return max(qbo_floor(self.qbo_batch, self.qbo_other), cw_floor(self.cw_calls))


def post_and_measure(env: Env, batch_id: int, run_id: int, n: int, idle: Usage,
                     documents: tuple[str, ...]) -> Result:
    """The batch run by a worker process in the real world; what it took and asked."""
    clock = env.clock
    real_world(env)
    opened = env.qbo_server.connections + env.cw_server.connections
    usage = run_worker(env, str(n), run_id)
    connections = env.qbo_server.connections + env.cw_server.connections - opened
    say(f"worker done in {usage.seconds:.1f} s (exit {usage.code})")
    qbo_log, cw_log = request_logs(env)
    with session_scope(env.app) as session:
        batch = session.get(Batch, batch_id)
        states = Counter(i.state.value for i in session.scalars(
            sa.select(BatchItem).where(BatchItem.batch_id == batch_id)))
        seconds = (batch.finished_at - batch.started_at).total_seconds() * clock
        colour, message = batch.colour, batch.message or ""
    batch_calls = sum(1 for e in qbo_log if e["path"].endswith("/batch"))
    kinds: Counter[str] = Counter()
    for entry in qbo_log:
        items = entry.get("batch_items") or {}
        kinds["429" if entry["status"] == 429 else "query" if "query" in items else
              "document" if set(documents) & set(items) else
              "reference" if items else entry["path"].rsplit("/", 1)[-1]] += 1
    say(f"QuickBooks requests by kind: {dict(kinds)}")
    first = min((e["at"] for e in qbo_log), default=0.0)
    say("QuickBooks throttled: " + ", ".join(
        f"{e['path'].rsplit('/', 1)[-1]} at +{e['at'] - first:.1f} s" for e in qbo_log
        if e["status"] == 429))
    reads = sum((e.get("batch_items") or {}).get("query", 0) for e in qbo_log) + sum(
        1 for e in qbo_log if e["method"] == "GET" or e["path"].endswith("/query"))
    if set(states) != {"done"}:
        say(f"WARNING: not every item is done: {dict(states)}; {message}; the worker's "
            "log:\n" + (Path(env.folder) / f"worker-{n}.log").read_text()[-4000:])
    return Result(n, states, colour, message, seconds, batch_calls,
                  len(qbo_log) - batch_calls, reads,
                  sum(1 for e in qbo_log if e["status"] == 429), len(cw_log), usage, idle,
                  connections)


def figures_of(run: Result, per: str, clock: float, first_batch: bool) -> dict[str, Any]:
    """The JSON figures of a run; `per` names the unit (`invoice`, `record`)."""
    n = run.invoices
    floor = run.floor
    cpu = run.worker.cpu - run.idle.cpu
    return {
        "seconds": round(run.seconds, 1), "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(run.seconds / floor, 3) if floor else None,
        f"qbo_requests_per_{per}": round((run.qbo_batch + run.qbo_other) / n, 4),
        f"qbo_metered_reads_per_{per}": round(run.qbo_reads / n, 4),
        f"cw_requests_per_{per}": round(run.cw_calls / n, 3),
        f"cpu_ms_per_{per}": round(cpu / n * 1000, 2),
        f"sql_statements_per_{per}": round(run.worker.statements / n, 2),
        f"commits_per_{per}": round(run.worker.commits / n, 3),
        "qbo_batch_requests": run.qbo_batch, "qbo_other_requests": run.qbo_other,
        "qbo_429": run.qbo_429, "cw_requests": run.cw_calls,
        "tcp_connections": run.connections,
        "qbo_floor_seconds": round(qbo_floor(run.qbo_batch, run.qbo_other), 1),
        "cw_floor_seconds": round(cw_floor(run.cw_calls), 1),
        "states": dict(run.states), "colour": run.colour, "clock": clock,
        "first_batch": first_batch, "peak_rss_mb": round(run.worker.max_rss_kib / 1024, 1)}


def measure(n: int, summary: str, clock: float, first_batch: bool = False) -> Result:
    """One fresh environment; the first n clean invoices posted by a worker process."""
    scale = math.ceil(n * 2.5)  # about 40% of the generated backlog is clean
    while True:
        env = start(scale, clock)
        try:
            clean = clean_invoices(env, summary)
        except BaseException:  # Ctrl+C too: leave nothing running or on disk
            env.stop()
            raise
        if len(clean) >= n:
            break
        env.stop()
        scale = math.ceil(scale * n / max(1, len(clean)) * 1.05) + 200
        say(f"not enough clean invoices; starting again with scale={scale}")
    try:
        say("idle worker (empty queue): start-up baseline")
        idle = run_worker(env, "idle")
        rows = clean[:n]
        if not first_batch:
            say(f"created {create_references(env, rows, summary)} reference(s) beforehand")
        batch_id = submit(env, rows, summary)
        with session_scope(env.app) as session:
            run_id = session.get(Batch, batch_id).run_id
        say(f"batch #{batch_id}: {n} invoices, worker process, real limits and latencies "
            f"at clock x{clock:g}")
        return post_and_measure(env, batch_id, run_id, n, idle, ("invoice", "creditmemo"))
    finally:
        env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1000, help="invoices in the batch")
    parser.add_argument("--memory", type=int, default=10000,
                        help="a second, larger batch for the memory ratio (0: skip)")
    parser.add_argument("--clock", type=float, default=1.0,
                        help="sandbox clock and latencies this many times faster than "
                             "real time (1 = real time, what the README quotes)")
    parser.add_argument("--memory-clock", type=float, default=60.0,
                        help="the same for the memory run")
    parser.add_argument("--summary", default="Default",
                        choices=("Default", "Condensed", "Detailed"))
    parser.add_argument("--first-batch", action="store_true",
                        help="let the measured batch create the customers, items and terms "
                             "its invoices need (by default they exist, as in a monthly run)")
    args = parser.parse_args()

    say(f"== {args.invoices} invoices ==")
    main_run = measure(args.invoices, args.summary, args.clock, args.first_batch)
    big = None
    if args.memory:
        say(f"== {args.memory} invoices (memory, clock x{args.memory_clock:g}) ==")
        big = measure(args.memory, args.summary, args.memory_clock, args.first_batch)
    figures = {"invoices": main_run.invoices,
               **figures_of(main_run, "invoice", args.clock, args.first_batch)}
    if big is not None:
        figures["rss_ratio_10k_to_1k"] = round(
            big.worker.max_rss_kib / main_run.worker.max_rss_kib, 3)
        figures["peak_rss_mb_large"] = round(big.worker.max_rss_kib / 1024, 1)
        figures["large_invoices"] = big.invoices
        figures["large_states"] = dict(big.states)
        figures["large_cpu_ms_per_invoice"] = round(
            (big.worker.cpu - big.idle.cpu) / big.invoices * 1000, 2)
    for name, value in figures.items():
        say(f"{name}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
