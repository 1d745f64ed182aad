"""Invoice batch figures: QuickBooks requests per invoice, projected wall time at the real
QuickBooks limits, portal CPU per invoice and the worker's peak memory (SPEC 6.7).

For each size it starts both sandboxes on loopback (`demo_data.generate(scale=...)`), a
portal app on a temporary SQLite database and the embedded Redis, and connects them as an
admin would. The whole backlog is submitted once and run in-process: pre-flight blocks it
on the curated problem invoices and writes nothing, and its `skipped` items are the clean
ones. The first N clean invoices are then submitted as one batch, enqueued, and worked by
a separate `portal worker --burst` process (same SQLite file, same embedded Redis), whose
peak RSS and user+sys CPU come from wait4(). The QuickBooks sandbox enforces its default
limits (which mirror QuickBooks) on its own clock, run --clock-speed times faster than
wall time (60: a one-minute window passes in a second), so nothing waits on them; the
projected wall time adds what the limits would impose in real time. Prints one line per
figure; progress goes to stderr.

    .venv/bin/python benchmarks/invoice_batch.py [--invoices 1000] [--memory-sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from portal import clients, create_app, jobs, migrate
from portal.crypto import generate_key
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, Company, ItemState, JobRun, Role, RunKind
from portal.sandbox import connectwise, demo_data, quickbooks
from portal.sandbox.common import SimClock
from portal.sandbox.quickbooks.switches import DEFAULTS
from portal.services import batches, cw_invoices, users

from _common import EMAIL, PASSWORD, connect, login  # run as a script, next to this file

PORTAL = str(Path(sys.executable).parent / "portal")
SECRET_KEY = "benchmark-secret-key"
STARTED = time.monotonic()


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
    pacing: dict[str, int]

    def worker_env(self) -> dict[str, str]:
        """Like tests/integration/test_cli.py `_env`: PORTAL_* only, embedded Redis."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update({"PORTAL_SECRET_KEY": SECRET_KEY, "PORTAL_ENCRYPTION_KEY": self.key,
                    "PORTAL_INSTANCE_PATH": self.folder, "PORTAL_DATABASE_URL": self.url,
                    "PORTAL_LOG_LEVEL": "WARNING", "PORTAL_PASSWORD_HASH_MEMORY_KIB": "8",
                    "PORTAL_PASSWORD_HASH_TIME_COST": "1",
                    "PORTAL_PASSWORD_HASH_PARALLELISM": "1"})
        env.update({f"PORTAL_{k}": str(v) for k, v in self.pacing.items()})
        return env

    def stop(self) -> None:
        """Stop both sandboxes and the embedded Redis this script started, then remove
        the temporary folder."""
        self.cw_server.stop()
        self.qbo_server.stop()
        jobs.stop_embedded_redis(self.app)
        shutil.rmtree(self.folder, ignore_errors=True)  # the database, Redis, worker logs


def start(scale: int, speed: float) -> Env:
    """The QuickBooks sandbox runs on a clock `speed` times faster than wall time from the
    start (the backlog's pre-flight sends a /batch per window, too many a minute otherwise).
    Its limits stay at their defaults; only the access-token lifetime is scaled by `speed`,
    so the token still lasts an hour of wall time and the run sees no extra 401s."""
    say(f"generating the data set (scale={scale}) and starting both sandboxes")
    data = demo_data.generate(scale=scale)
    cw = connectwise.ConnectWiseSandbox(data=data["connectwise"])
    lifetime = int(DEFAULTS["sim.qbo_access_token_seconds"] * speed)
    qbo = quickbooks.QuickBooksSandbox(data=data["quickbooks"], clock=SimClock(speed),
                                       switches={"sim.qbo_access_token_seconds": lifetime})
    del data
    cw_server, qbo_server = connectwise.serve(cw), quickbooks.serve(qbo)
    folder = tempfile.mkdtemp(prefix="portal-bench-batch-")
    url = f"sqlite:///{folder}/bench.db"
    migrate.upgrade(url)
    key = generate_key()
    os.environ["PORTAL_INSTANCE_PATH"] = folder  # the embedded Redis lives here
    # portal paces itself in wall time: its ceilings run `speed` times faster too
    pacing = {"QBO_MAX_RPM": int(450 * speed), "QBO_MAX_BATCH_RPM": int(35 * speed),
              "QBO_MAX_CONCURRENT": 4}
    app = create_app({"SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": key, "DATABASE_URL": url,
                      "REDIS_URL": None, "PASSWORD_HASH_TIME_COST": 1,
                      "PASSWORD_HASH_MEMORY_KIB": 8, "PASSWORD_HASH_PARALLELISM": 1,
                      **pacing})
    assert app.instance_path == folder
    with app.app_context(), session_scope(app) as session:
        users.create(session, email=EMAIL, name="Bench", role=Role.ADMIN, password=PASSWORD)
    client = app.test_client()
    login(client)
    connect(client, cw, cw_server.url, qbo_server.url)
    with session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        company_id, realm = company.id, company.realm_id
    return Env(scale, folder, url, key, app, cw, qbo, cw_server, qbo_server, company_id, realm,
               pacing)


def unposted(env: Env) -> list[cw_invoices.Unposted]:
    with env.app.app_context(), session_scope(env.app) as session:
        return cw_invoices.unposted(clients.connectwise(session))


def submit(env: Env, rows: list[cw_invoices.Unposted], summary: str) -> int:
    """As the batch page does: batches.submit, commit, then enqueue the run."""
    with env.app.app_context(), session_scope(env.app) as session:
        company = session.get(Company, env.company_id)
        batch = batches.submit(session, company, rows, user=None, options={"summary": summary})
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with env.app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id


def clean_invoices(env: Env, summary: str) -> list[cw_invoices.Unposted]:
    """Submit the whole backlog; pre-flight blocks it and its skipped items are clean."""
    rows = unposted(env)
    say(f"pre-flight of the whole backlog ({len(rows)} unposted invoices), in-process")
    batch_id = submit(env, rows, summary)
    jobs.make_worker(env.app).work(burst=True, with_scheduler=False,
                                   logging_level="WARNING")
    with session_scope(env.app) as session:
        batch = session.get(Batch, batch_id)
        assert batch.preflight, f"the backlog was not blocked: {batch.message}"
        states = Counter(i.state.value for i in session.scalars(
            sa.select(BatchItem).where(BatchItem.batch_id == batch_id)))
        clean = set(session.scalars(sa.select(BatchItem.cw_number).where(
            BatchItem.batch_id == batch_id, BatchItem.state == ItemState.SKIPPED)))
    say(f"backlog: {dict(states)}; {len(clean)} clean invoices")
    return [r for r in rows if r.number in clean]


@dataclass
class Usage:
    seconds: float
    cpu: float
    max_rss_kib: int
    code: int


# Linux carries a parent's RSS into its child's ru_maxrss (fork copies the high-water mark,
# and exec after vfork records the parent's), so a worker started straight from this big
# process would report this process's size. A small launcher forks the worker and reads
# the worker's own rusage with wait4().
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
    """`portal worker --burst` as its own process, with its own CPU time and peak RSS."""
    log_path = Path(env.folder) / f"worker-{label}.log"
    usage_path = Path(env.folder) / f"worker-{label}.json"
    with open(log_path, "w") as log:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(usage_path),
                                    PORTAL, "worker", "--burst"], env=env.worker_env(),
                                   stdout=log, stderr=subprocess.STDOUT)
        last = started
        while process.poll() is None:
            time.sleep(0.2)
            if run_id is not None and time.monotonic() - last >= 10:
                last = time.monotonic()
                with session_scope(env.app) as session:
                    run = session.get(JobRun, run_id)
                    say(f"  worker: {run.status.value} {run.done}/{run.total or '?'} "
                        f"{run.message or ''}")
        seconds = time.monotonic() - started
    usage = json.loads(usage_path.read_text())
    if usage["code"] != 0:
        say(f"worker exited with {usage['code']}; its log:\n" + log_path.read_text()[-4000:])
    return Usage(seconds, usage["utime"] + usage["stime"], usage["maxrss_kib"], usage["code"])


def sim(env: Env, path: str, **kwargs: Any) -> Any:
    method = kwargs.pop("method", "GET")
    answer = requests.request(method, f"{env.qbo_server.url}/_sim/{path}", timeout=60,
                              **kwargs)
    answer.raise_for_status()
    return answer.json() if answer.content else None


@dataclass
class Result:
    invoices: int
    scale: int
    clean: int
    states: Counter[str]
    colour: str
    message: str
    qbo_requests: int
    cw_requests: int
    throttled_seconds: float
    run_seconds: float
    lines: float
    gl_lines: float
    worker: Usage
    idle: Usage
    log: list[dict[str, Any]] = field(default_factory=list)
    oauth_requests: int = 0
    clock_speed: float = 1.0
    realm: str = ""
    posting_batches: int = 0


def measure(n: int, summary: str, speed: float) -> Result:
    """One fresh environment; the first n clean invoices posted by a worker process."""
    scale = n + max(200, n // 5)
    while True:
        env = start(scale, speed)
        try:
            clean = clean_invoices(env, summary)
        except BaseException:  # Ctrl+C too: leave nothing running or on disk
            env.stop()
            raise
        if len(clean) >= n:
            break
        env.stop()
        scale = math.ceil(scale * n / max(1, len(clean))) + 100
        say(f"not enough clean invoices; starting again with scale={scale}")
    try:
        say("idle worker (empty queue): start-up baseline")
        idle = run_worker(env, "idle")
        rows = clean[:n]
        batch_id = submit(env, rows, summary)
        with session_scope(env.app) as session:
            run_id = session.get(Batch, batch_id).run_id
        sim(env, "requests", method="DELETE")
        say(f"batch #{batch_id}: {n} invoices, worker process, sandbox clock x{speed:g}")
        usage = run_worker(env, str(n), run_id)
        say(f"worker done in {usage.seconds:.1f} s (exit {usage.code})")
        entries = sim(env, "requests", params={"entries": 1})["entries"]
        with session_scope(env.app) as session:
            batch = session.get(Batch, batch_id)
            items = list(session.scalars(sa.select(BatchItem).where(
                BatchItem.batch_id == batch_id)))
            states = Counter(i.state.value for i in items)
            posting = len({i.qbo_batch_request_id for i in items if i.qbo_batch_request_id})
            lines = [sum(1 for ln in (i.payload or {}).get("Line", [])
                         if ln.get("DetailType") == "SalesItemLineDetail") for i in items]
            run_seconds = (batch.finished_at - batch.started_at).total_seconds() \
                if batch.finished_at and batch.started_at else float("nan")
            result = Result(n, env.scale, len(clean), states, batch.colour,
                            batch.message or "", batch.qbo_requests, batch.cw_requests,
                            batch.throttled_seconds, run_seconds,
                            sum(lines) / max(1, len(lines)), 0.0, usage, idle)
        numbers = {r.number for r in rows}
        with env.cw.store.lock:
            gl = [len(inv["_lines"])
                  for inv in env.cw.store.tables["invoices"].values()
                  if inv["invoiceNumber"] in numbers]
        result.gl_lines = sum(gl) / max(1, len(gl))
        prefix = f"/v3/company/{env.realm}/"
        result.log = [e for e in entries if e["path"].startswith(prefix)]
        result.oauth_requests = sum(1 for e in entries if "/oauth2/" in e["path"])
        result.clock_speed = speed
        result.realm = env.realm
        result.posting_batches = posting
        if set(states) != {"done"}:
            say(f"WARNING: not every item is done: {dict(states)}; {batch.message}")
        return result
    finally:
        env.stop()


def mb(kib: int) -> float:
    return kib / 1024


def floors(n_batch: int, n_all: int, batch_rpm: int, rpm: int) -> tuple[float, float]:
    """Seconds the per-minute limits impose on n_batch /batch and n_all requests in all:
    sustained (every request paced at the limit rate) and, for sliding one-minute windows
    starting empty, the earliest the last request may go (a full window's worth at once)."""
    steady = 60.0 * max(n_batch / batch_rpm, n_all / rpm)
    window = 60.0 * max((n_batch - 1) // batch_rpm if n_batch else 0,
                        (n_all - 1) // rpm if n_all else 0)
    return steady, window


def report(main: Result, memory: dict[int, Result]) -> None:
    n = main.invoices
    rpm = int(DEFAULTS["sim.qbo_rate_per_minute"])
    batch_rpm = int(DEFAULTS["sim.qbo_batch_per_minute"])
    kinds: Counter[str] = Counter()
    for entry in main.log:
        tail = entry["path"].split("/v3/company/", 1)[1].split("/", 1)
        kinds[f"{entry['method']} {tail[1] if len(tail) > 1 else ''}"] += 1
    logged = len(main.log)
    n_batch = sum(1 for e in main.log if e["method"] == "POST" and e["path"].endswith("/batch"))
    references = sum(1 for e in main.log if e["method"] == "POST" and e["path"].rsplit(
        "/", 1)[1] not in ("batch", "query", "invoice", "creditmemo"))
    statuses = Counter(e["status"] for e in main.log)
    steady, window = floors(n_batch, logged, batch_rpm, rpm)
    portal_steady, _ = floors(n_batch, logged, 35, 450)  # SPEC 6.7 PORTAL_QBO_MAX_*
    cpu = main.worker.cpu - main.idle.cpu

    print(f"invoices {n} (data set scale={main.scale}; {main.clean} clean of the backlog; "
          f"batch {dict(main.states)}, colour {main.colour}: {main.message})")
    print(f"lines_per_invoice {main.lines:.2f} (QuickBooks SalesItemLineDetail lines per "
          f"document; {main.gl_lines:.2f} ConnectWise GL detail lines incl. tax)")
    print(f"qbo_requests_per_invoice {main.qbo_requests / n:.3f} ({main.qbo_requests} "
          f"counted on the batch row; the sandbox logged {logged} on /v3/company/{main.realm}/"
          f": {n_batch} POST /batch ({main.posting_batches} posting documents, "
          f"{n_batch - main.posting_batches} DocNumber checks and reference-creation rounds), "
          + ", ".join(f"{k} {v}" for k, v in kinds.most_common() if k != "POST batch") + ")")
    print(f"qbo_requests_per_invoice_without_reference_creation "
          f"{(logged - references) / n:.3f} ({references} of the {logged} requests create "
          "customers, items, terms...: once per new name, not per invoice)")
    print(f"qbo_http_status {dict(sorted(statuses.items()))} (429 = throttled; the batch's "
          f"throttled_seconds {main.throttled_seconds:g}; OAuth token calls "
          f"{main.oauth_requests})")
    print(f"cw_requests_per_invoice {main.cw_requests / n:.2f} ({main.cw_requests})")
    print(f"projected_wall_seconds_{n} {steady + main.run_seconds:.1f} (= 60 s x max("
          f"{n_batch} /batch / {batch_rpm} per min, {logged} requests / {rpm} per min) "
          f"= {steady:.1f} s at the sandbox's default QuickBooks limits, sustained, "
          f"+ {main.run_seconds:.1f} s measured run (batch started_at..finished_at, the "
          f"sandbox answering on loopback, clock x{main.clock_speed:g}); sliding one-minute "
          f"windows from empty would allow {window:.0f} s + {main.run_seconds:.1f} s)")
    print(f"projected_wall_seconds_{n}_portal_limits {portal_steady + main.run_seconds:.1f} "
          f"(the same, sustained, at SPEC 6.7's own ceilings: 35 /batch and 450 requests "
          "per min)")
    print(f"cpu_ms_per_invoice {cpu / n * 1000:.2f} (worker user+sys {main.worker.cpu:.2f} s "
          f"minus {main.idle.cpu:.2f} s for an idle worker's start-up, over {n} invoices)")
    for size, result in sorted(memory.items()):
        print(f"peak_rss_mb_{size} {mb(result.worker.max_rss_kib):.1f} (idle worker "
              f"{mb(result.idle.max_rss_kib):.1f}; worker ran {result.worker.seconds:.1f} s, "
              f"{(result.worker.cpu - result.idle.cpu) / size * 1000:.2f} ms CPU and "
              f"{result.qbo_requests / size:.3f} QBO requests per invoice, batch "
              f"{dict(result.states)})")
    sizes = sorted(memory)
    if len(sizes) >= 2:
        low, high = memory[sizes[0]], memory[sizes[-1]]
        ratio = high.worker.max_rss_kib / low.worker.max_rss_kib
        growth_low = low.worker.max_rss_kib - low.idle.max_rss_kib
        growth_high = high.worker.max_rss_kib - high.idle.max_rss_kib
        print(f"rss_ratio_{sizes[-1]}_to_{sizes[0]} {ratio:.2f} (above the idle worker: "
              f"{mb(growth_high):.1f} MB vs {mb(growth_low):.1f} MB, "
              f"{growth_high / max(1, growth_low):.2f}x for {sizes[-1] / sizes[0]:g}x the "
              f"invoices)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1000,
                        help="invoices in the measured batch")
    parser.add_argument("--memory-sizes", default="1000,10000",
                        help="batch sizes whose worker peak memory is compared")
    parser.add_argument("--clock-speed", type=float, default=60.0,
                        help="QuickBooks sandbox clock speed during the run")
    parser.add_argument("--summary", default="Default",
                        choices=("Default", "Condensed", "Detailed"),
                        help="invoice summary level of the batches")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.memory_sizes.split(",") if s.strip()})

    results: dict[int, Result] = {}
    for size in sorted({args.invoices, *sizes}):
        say(f"== {size} invoices ==")
        results[size] = measure(size, args.summary, args.clock_speed)
    report(results[args.invoices], {s: results[s] for s in sizes})


if __name__ == "__main__":
    main()
