"""Pre-flight and mapping-editor figures: 1,000 invoices checked with 5,000 customers cached.

Runs both sandboxes on loopback (the data set at --scale invoices), a portal app on a
temporary SQLite database and the embedded Redis, connects them as an admin would, fills
the reference cache with extra customers up to --customers, then times the pre-flight of
every unposted invoice (the batch engine's own, `batching.preflight`), the backlog check as
a run, and the editor pages. Prints one line per figure and one JSON object on the last.

    .venv/bin/python benchmarks/mapping.py [--scale 1000] [--customers 5000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import event

from portal import create_app, jobs, migrate
from portal.crypto import generate_key
from portal.db import engine, session_scope
from portal.models import Company, QboRef, Role
from portal.sandbox import connectwise, demo_data, quickbooks
from portal.services import company_settings, mapping, reference, users
from portal.services.batching import preflight
from portal.services.batching.engine import prefs_of
from portal.services.batching.types.base import CompanyFacts, Context, Filters
from portal.services.batching.types.invoices import INVOICES

from _common import PASSWORD  # noqa: E402 - run as a script, next to this file
from _common import connect as _connect
from _common import login as _login
from _common import token as _token

def _pad_customers(app, company_id: int, target: int) -> int:  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc)
    with session_scope(app) as session:
        have = session.scalar(sa.select(sa.func.count()).select_from(QboRef).where(
            QboRef.company_id == company_id, QboRef.entity == "Customer")) or 0
        rows = [reference.qbo_row(company_id, "Customer", {
            "Id": f"9{n:06d}", "DisplayName": f"Benchmark Customer {n:05d} (BC{n:05d})",
            "Active": True}, now) for n in range(max(0, target - have))]
        if rows:
            session.execute(sa.insert(QboRef), rows)
        return have + len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1000, help="generated invoices")
    parser.add_argument("--customers", type=int, default=5000, help="cached QBO customers")
    args = parser.parse_args()

    data = demo_data.generate(scale=args.scale)
    cw = connectwise.ConnectWiseSandbox(data=data["connectwise"])
    qbo = quickbooks.QuickBooksSandbox(data=data["quickbooks"])
    cw_server, qbo_server = connectwise.serve(cw), quickbooks.serve(qbo)
    folder = tempfile.mkdtemp(prefix="portal-bench-")
    url = f"sqlite:///{folder}/bench.db"
    app = create_app({"SECRET_KEY": "benchmark-secret-key", "ENCRYPTION_KEY": generate_key(),
                      "DATABASE_URL": url, "REDIS_URL": None, "PASSWORD_HASH_TIME_COST": 1,
                      "PASSWORD_HASH_MEMORY_KIB": 8, "PASSWORD_HASH_PARALLELISM": 1})
    app.instance_path = folder
    try:
        migrate.upgrade(url)
        _measure(app, args, cw, cw_server.url, qbo_server.url)
    finally:  # Ctrl+C too: leave no server running and no temporary folder behind
        cw_server.stop()
        qbo_server.stop()
        jobs.stop_embedded_redis(app)
        shutil.rmtree(folder, ignore_errors=True)


def _measure(app, args, cw,  # type: ignore[no-untyped-def]
             cw_url: str, qbo_url: str) -> None:
    with app.app_context(), session_scope(app) as session:
        users.create(session, email="bench@example.test", name="Bench", role=Role.ADMIN,
                     password=PASSWORD)
    client = app.test_client()
    _login(client)
    _connect(client, cw, cw_url, qbo_url)
    with session_scope(app) as session:
        company_id = session.scalars(sa.select(Company.id)).one()
    token = _token(client, "/mappings/")
    client.post(f"/mappings/refresh?company={company_id}", headers={
        "HX-Request": "true", "X-CSRFToken": token})
    jobs.run_burst(app)
    customers = _pad_customers(app, company_id, args.customers)

    statements: list[str] = []
    event.listen(engine(app), "before_cursor_execute",
                 lambda *a: statements.append(a[2]) if a[2] not in ("BEGIN", "COMMIT") else None)
    with app.app_context(), session_scope(app) as session:
        company = session.get(Company, company_id)
        settings = company_settings.get_settings(session, company)
        started = time.perf_counter()
        mapping_set = mapping.MappingSet.load(session, company, prefs_of(settings))
        load_seconds = time.perf_counter() - started
        cw_client = __import__("portal.clients", fromlist=["connectwise"]).connectwise(session)
        records = INVOICES.list_unposted(cw_client, Filters())
        ctx = Context(CompanyFacts.of(company), settings, mapping_set, {})
        started = time.perf_counter()
        window = INVOICES.read(cw_client, records, ctx)
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        cpu_started = time.process_time()
        checked = preflight.Preflight(INVOICES, ctx).check(window, records)
        validate_seconds = time.perf_counter() - started
        validate_cpu = time.process_time() - cpu_started
        problems = [c.problems for c in checked]
    statements.clear()
    client.post(f"/mappings/scan?company={company_id}", headers={
        "HX-Request": "true", "X-CSRFToken": token})
    started = time.perf_counter()
    jobs.run_burst(app)
    scan_seconds = time.perf_counter() - started
    scan_queries = len(statements)

    figures: dict[str, object] = {
        "invoices": len(records), "customers_cached": customers,
        "mapping_set_load_ms": round(load_seconds * 1000, 1),
        "read_seconds": round(export_seconds, 2),
        "check_ms": round(validate_seconds * 1000, 1),
        "check_cpu_us_per_invoice": round(validate_cpu / max(1, len(records)) * 1e6),
        "records_with_problems": sum(1 for p in problems if p),
        "backlog_check_seconds": round(scan_seconds, 2),
        "backlog_check_sql_statements": scan_queries}
    print(f"invoices checked:                 {len(records)}")
    print(f"QuickBooks customers cached:      {customers}")
    print(f"mapping set load:                 {load_seconds * 1000:.1f} ms")
    print(f"ConnectWise reads ({len(records)} invoices, 50/export call): "
          f"{export_seconds:.2f} s")
    print(f"pre-flight of every invoice:      {validate_seconds * 1000:.1f} ms "
          f"({validate_cpu / max(1, len(records)) * 1e6:.0f} us CPU per invoice)")
    print(f"records with problems:            {sum(1 for p in problems if p)}")
    print(f"whole backlog check (job):        {scan_seconds:.2f} s, {scan_queries} SQL statements")
    for path in (f"/mappings/customer?company={company_id}",
                 f"/mappings/preflight?company={company_id}", f"/mappings/?company={company_id}"):
        client.get(path)
        timings = []
        for _ in range(20):
            statements.clear()
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200
        timings.sort()
        print(f"GET {path.split('?')[0]:<22} p50 {timings[10] * 1000:6.1f} ms  "
              f"p95 {timings[18] * 1000:6.1f} ms  {len(statements)} SQL statements")
        name = path.split("?")[0].strip("/").replace("/", "_") or "mappings"
        figures[f"p95_ms_{name}"] = round(timings[18] * 1000, 1)
        figures[f"sql_{name}"] = len(statements)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
