"""Page timings at the scale of SPEC 16.1, served by `portal serve` (gunicorn) on PostgreSQL.

Creates a fresh PostgreSQL database (dropped at the end), starts both sandboxes on loopback
(the demo data set, `--scale` more invoices), connects them as an admin would, then writes
one finished batch of `--items` items, `--batches` batches in all, and `--customers`
cached QuickBooks customers checked by the backlog check (rows written with SQLAlchemy
core, as the page tests do). `portal serve` then runs as a subprocess with PORTAL_* only,
and a signed-in `requests` session asks each page `--requests` times, the pages taken in
turn, while the gunicorn workers' CPU time is read around each request. Then the items
CSV is downloaded, the first time this server serves it, while the RSS of every worker
is sampled: the growth is the largest peak over its RSS before the download (then the
best of three more downloads).

Redis is the embedded one by default; `--redis-url redis://127.0.0.1:6379/9` uses a server.
Prints progress to stderr and one JSON object on its last line. Targets: every p95 under
100 ms; the CSV under 2 s with under 20 MB growth.

    .venv/bin/python benchmarks/pages.py [--items 10000] [--batches 300] [--customers 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests
import sqlalchemy as sa

from portal import create_app, jobs, migrate
from portal.crypto import generate_key
from portal.db import engine, session_scope
from portal.models import Company, Role
from portal.services import company_settings, users

from _common import EMAIL, PASSWORD, connect, login, sandboxes  # run as a script, beside this

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.integration import scale  # noqa: E402 - the page tests' rows, shared

SECRET_KEY = "benchmark-secret-key"
STARTED = time.monotonic()
TARGET_MS, CSV_SECONDS, CSV_GROWTH_MB = 100.0, 2.0, 20.0
# Sign-in throttling counts in Redis: a server's counters outlive a run, and runs sign in
# from one address as one account.
LIMITS = {"LOGIN_LIMIT_ACCOUNT": "1000/minute", "LOGIN_LIMIT_IP": "1000/minute"}


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f} s] {text}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _admin_engine(base: str) -> sa.Engine:
    return sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")


def seed(app: Any, args: argparse.Namespace, company_id: int) -> dict[str, int]:
    """The batch, the other batches, the cache and the backlog check's customers."""
    with session_scope(app) as session:
        company = session.get(Company, company_id)
        version = company_settings.current_version(session, company)
        snapshot = company_settings.as_json(company_settings.get_settings(session, company))
        snapshot["invoice_export_detail"] = "Detailed"  # one setting differs from now
        big = scale.add_batch(session, company_id, items=args.items, snapshot=snapshot,
                              version_id=version.id)
        scale.recount(session, big)
        scale.add_batches(session, company_id, args.batches - 1)
        customers = scale.add_customers(session, company_id, args.customers)
        scan = scale.latest_scan(session, company_id)
        scale.add_customer_values(session, scan, 0, args.customers)
    with engine(app).connect() as connection:  # fresh planner statistics, as autovacuum would
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    return {"batch": big, "customers": customers}


def prepare(args: argparse.Namespace, folder: str, url: str, key: str,
            cw: Any, cw_url: str, qbo_url: str) -> tuple[Any, dict[str, int]]:
    """Migrate, connect both sandboxes as an admin, fetch the lists, check the backlog,
    then write the rows."""
    say("migrating the database")
    migrate.upgrade(url)
    app = create_app({"SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": key, "DATABASE_URL": url,
                      "REDIS_URL": args.redis_url, "PASSWORD_HASH_TIME_COST": 1,
                      "PASSWORD_HASH_MEMORY_KIB": 8, "PASSWORD_HASH_PARALLELISM": 1,
                      **LIMITS})
    app.instance_path = folder
    with app.app_context(), session_scope(app) as session:
        users.create(session, email=EMAIL, name="Bench", role=Role.ADMIN, password=PASSWORD)
    client = app.test_client()
    login(client)
    say("connecting ConnectWise and QuickBooks")
    connect(client, cw, cw_url, qbo_url)
    with session_scope(app) as session:
        company_id = session.scalars(sa.select(Company.id)).one()
    page = client.get("/mappings/").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    for path in ("/mappings/refresh", "/mappings/scan"):
        say(f"POST {path} and its run")
        client.post(f"{path}?company={company_id}",
                    headers={"HX-Request": "true", "X-CSRFToken": token})
        jobs.run_burst(app)
    say(f"writing {args.items} items, {args.batches} batches, {args.customers} customers")
    ids = seed(app, args, company_id)
    ids["company"] = company_id
    return app, ids


def serve(args: argparse.Namespace, folder: str, url: str, key: str,
          port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update({"PORTAL_SECRET_KEY": SECRET_KEY, "PORTAL_ENCRYPTION_KEY": key,
                "PORTAL_DATABASE_URL": url, "PORTAL_INSTANCE_PATH": folder,
                "PORTAL_ENV": "development",  # plain HTTP: the cookie is not Secure
                "PORTAL_BIND": f"127.0.0.1:{port}", "PORTAL_WEB_WORKERS": str(args.workers),
                "PORTAL_LOG_LEVEL": "WARNING", "PORTAL_PASSWORD_HASH_TIME_COST": "1",
                "PORTAL_PASSWORD_HASH_MEMORY_KIB": "8",
                "PORTAL_PASSWORD_HASH_PARALLELISM": "1",
                **{f"PORTAL_{k}": v for k, v in LIMITS.items()}})
    if args.redis_url:
        env["PORTAL_REDIS_URL"] = args.redis_url
    log = open(Path(folder) / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    portal = shutil.which("portal", path=str(Path(sys.executable).parent)) or "portal"
    process = subprocess.Popen([portal, "serve"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    answered = False
    try:
        for _ in range(300):
            try:
                answered = requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening, or still booting
                pass
            if answered:
                return process
            if process.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        if not answered:  # the caller never gets it (Ctrl+C too): stop it here
            stop(process)
    raise RuntimeError("portal serve did not answer; its log:\n" +
                       (Path(folder) / "serve.log").read_text()[-3000:])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn (its master stops the workers)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def signed_in(base: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base}/auth/login", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = http.post(f"{base}/auth/login", data={"email": EMAIL, "password": PASSWORD,
                                                   "csrf_token": token},
                       allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text[:500]
    return http


def pages(http: requests.Session, base: str, ids: dict[str, int]
          ) -> dict[str, tuple[str, bool]]:
    """name -> (path, asked by htmx); the cursors come from the pages themselves."""
    big = ids["batch"]
    first = http.get(f"{base}/batches/{big}", timeout=30).text
    after = re.search(rf'hx-get="/batches/{big}/items\?after=(\d+:\d+)"', first).group(1)
    return {"dashboard": ("/", False),
            "review list": ("/batches/", False),
            "batch detail first page": (f"/batches/{big}", False),
            "batch detail later page": (f"/batches/{big}/items?after={after}", True),
            "items fragment": (f"/batches/{big}/items", True),
            "mapping editor": (f"/mappings/customer?company={ids['company']}", False),
            "selection screen": ("/batches/new/invoices", False)}


def _cpu_seconds(workers: list[psutil.Process]) -> float:
    return sum(sum(w.cpu_times()[:2]) for w in workers)


def time_pages(http: requests.Session, base: str, wanted: dict[str, tuple[str, bool]],
               rounds: int, workers: list[psutil.Process]
               ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Wall times in ms per page, and the gunicorn workers' CPU time per request (the
    clock ticks at 10 ms: only the mean over many requests means something)."""
    timings: dict[str, list[float]] = {name: [] for name in wanted}
    cpu = dict.fromkeys(wanted, 0.0)
    for name, (path, hx) in wanted.items():  # warm every worker's caches
        for _ in range(4):
            http.get(base + path, headers={"HX-Request": "true"} if hx else {}, timeout=30)
    for round_ in range(rounds):
        for name, (path, hx) in wanted.items():
            used = _cpu_seconds(workers)
            started = time.perf_counter()
            answer = http.get(base + path, headers={"HX-Request": "true"} if hx else {},
                              timeout=30)
            timings[name].append((time.perf_counter() - started) * 1000)
            cpu[name] += _cpu_seconds(workers) - used
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {answer.status_code}")
        if (round_ + 1) % 25 == 0:
            say(f"  {round_ + 1} of {rounds} rounds")
    return timings, {name: seconds * 1000 / rounds for name, seconds in cpu.items()}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


class RssWatch:
    """Samples the RSS of every gunicorn worker every 5 ms; `growth` is the largest rise
    of a worker's peak over its RSS when the watch started."""

    def __init__(self, master: psutil.Process) -> None:
        self.workers = master.children()
        self.start = {w.pid: w.memory_info().rss for w in self.workers}
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for worker in self.workers:
                rss = worker.memory_info().rss
                self.peak[worker.pid] = max(self.peak[worker.pid], rss)
            time.sleep(0.005)

    def stop(self) -> tuple[int, float]:
        """The worker that grew most and its growth in MB."""
        self._stop.set()
        self._thread.join()
        pid = max(self.peak, key=lambda p: self.peak[p] - self.start[p])
        return pid, (self.peak[pid] - self.start[pid]) / 2**20


def download(http: requests.Session, url: str) -> tuple[float, int, int]:
    """Seconds, bytes and lines of one CSV download, read as it streams."""
    started = time.perf_counter()
    size = lines = 0
    with http.get(url, stream=True, timeout=60) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_content(chunk_size=65536):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return time.perf_counter() - started, size, lines


def measure(args: argparse.Namespace, process: subprocess.Popen[bytes], base: str,
            ids: dict[str, int]) -> dict[str, Any]:
    http = signed_in(base)
    wanted = pages(http, base, ids)
    say(f"timing {len(wanted)} pages, {args.requests} requests each")
    master = psutil.Process(process.pid)
    load = os.getloadavg()[0]
    timings, cpu_ms = time_pages(http, base, wanted, args.requests, master.children())
    load = max(load, os.getloadavg()[0])
    csv_url = f"{base}/batches/{ids['batch']}.csv"
    watch = RssWatch(master)  # the first download this server serves
    seconds, size, lines = download(http, csv_url)
    pid, growth = watch.stop()
    assert lines == args.items + 1, lines
    repeat = min(download(http, csv_url)[0] for _ in range(3))
    say(f"CSV: {lines - 1} rows, {size / 2**20:.1f} MB in {seconds:.2f} s; "
        f"worker {pid} grew {growth:.1f} MB")
    return {
        "p95_ms": {name: round(p95(values), 1) for name, values in timings.items()},
        "p50_ms": {name: round(statistics.median(values), 1)
                   for name, values in timings.items()},
        "worker_cpu_ms_mean": {name: round(value, 1) for name, value in cpu_ms.items()},
        "requests_per_page": args.requests, "load_average_1m": round(load, 2),
        "csv_10k_seconds": round(seconds, 3), "csv_10k_rss_growth_mb": round(growth, 1),
        "csv_10k_seconds_repeat_best": round(repeat, 3),
        "csv_bytes": size, "items": args.items, "batches": args.batches,
        "customers": ids["customers"], "gunicorn_workers": args.workers,
        "database": "postgresql",
        "redis": args.redis_url.rsplit("@", 1)[-1] if args.redis_url else "embedded"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100, help="per page")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--scale", type=int, default=0, help="extra ConnectWise invoices")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432",
                        help="a server where this script may create and drop a database")
    parser.add_argument("--redis-url", default=None, help="default: the embedded Redis")
    args = parser.parse_args()

    say(f"generating the data set (scale={args.scale}) and starting both sandboxes")
    cw, qbo, cw_server, qbo_server = sandboxes(args.scale)
    folder = tempfile.mkdtemp(prefix="portal-bench-pages-")
    name = f"portal_bench_pages_{os.getpid()}"
    admin = _admin_engine(args.postgres)
    url = f"{args.postgres}/{name}"
    key = generate_key()
    os.environ["PORTAL_INSTANCE_PATH"] = folder  # the embedded Redis lives here
    app = process = None
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        say(f"database {name} created")
        app, ids = prepare(args, folder, url, key, cw, cw_server.url, qbo_server.url)
        engine(app).dispose()
        port = _free_port()
        say(f"starting portal serve on 127.0.0.1:{port} ({args.workers} workers)")
        process = serve(args, folder, url, key, port)
        result = measure(args, process, f"http://127.0.0.1:{port}", ids)
    finally:  # Ctrl+C too: leave no server, database or folder behind
        if process is not None:
            stop(process)
        cw_server.stop()
        qbo_server.stop()
        if app is not None:
            engine(app).dispose()
            jobs.stop_embedded_redis(app)
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    worst = max(result["p95_ms"].values())
    result["targets_met"] = bool(worst < TARGET_MS and result["csv_10k_seconds"] < CSV_SECONDS
                                 and result["csv_10k_rss_growth_mb"] < CSV_GROWTH_MB)
    for page, value in result["p95_ms"].items():
        say(f"p95 {page:<26} {value:7.1f} ms (p50 {result['p50_ms'][page]:.1f}, "
            f"worker CPU {result['worker_cpu_ms_mean'][page]:.1f} ms)")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
