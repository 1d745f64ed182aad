"""GET never writes: every GET route, as a page and as a fragment, signed in as an admin on a
connected company with batches, runs and a backlog check, leaves every table as it was.

Two witnesses: no INSERT, UPDATE or DELETE is sent while the request runs, and each table's
row count and checksum are the same afterwards. The session store is infrastructure and is
left out of both: `user_session` gets its `last_seen_at` touched (at most every 30 s) and
the QuickBooks sign-in keeps its OAuth state in the session's data; its row count must stay
the same (no session created or ended by a GET).

The one GET allowed to write is the OAuth redirect Intuit sends the browser back to
(`setup.quickbooks_callback`, a GET by RFC 6749): it stores the connection, and records a
rejected callback in the audit log. It is checked for exactly that.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.db import Base, engine, session_scope
from portal.models import (AuditEvent, Batch, BatchItem, Company, JobRun, MappingValue, Role,
                           SettingsVersion, StoredSettings, User)
from portal.services import company_settings, passwords, users
from portal.services.mapping import ENTITIES
from tests.conftest import PASSWORD, run_jobs
from tests.integration import scale
from tests.integration.test_fragments import HTMX_ROUTES, PAGE_ONLY

pytestmark = pytest.mark.integration

INFRASTRUCTURE = "user_session"
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
CALLBACK = "setup.quickbooks_callback"

# endpoint -> URLs (format fields from `ids`); together with HTMX_ROUTES, every GET route
PAGE_URLS = {
    "dashboard.index": ["/"],
    "auth.login": ["/auth/login"],
    "auth.forgot": ["/auth/forgot"],
    "auth.reset": ["/auth/reset/{reset}", "/auth/reset/not-a-token"],
    "setup.connectwise": ["/setup/connectwise"],
    "setup.quickbooks": ["/setup/quickbooks"],
    "setup.quickbooks_connect": ["/setup/quickbooks/connect"],
    "setup.quickbooks_reconnect": ["/setup/quickbooks/reconnect"],
    "mappings.index": ["/mappings/", "/mappings/?company={company}"],
    "unbatch.clear": ["/batches/clear", "/batches/clear?cut_off=2026-08-10&type=invoice"],
    "unbatch.clear_csv": ["/batches/clear.csv?cut_off=2026-08-10&type=invoice"],
    "email.index": ["/email/"],
    "email.company": ["/email/{company}", "/email/{company}?status=unsent&number=1"],
    "email.resend_confirm": ["/email/{company}/invoices/1/resend"],
    "autosync.rerun": ["/autosync/{company}/rerun/{batch}"],
    "audit.export": ["/audit/export.csv"],
    "health.healthz": ["/healthz"],
    "health.readyz": ["/readyz"],
    "static": ["/static/css/portal.css"],
    "settings.index": ["/setup/quickbooks/{company}/settings"],
    "settings.tab": ["/setup/quickbooks/{company}/settings/{tab}"],
    "mappings.editor": ["/mappings/{kind}?company={company}"],
    "mappings.options": ["/mappings/customer/options?company={company}&qbo_name=a"],
    "mappings.preflight": ["/mappings/preflight?company={company}"],
    "mappings.tax_codes": ["/mappings/tax-codes?company={company}"],
    "mappings.create_preview": ["/mappings/{create_kind}/create?company={company}"
                                "&cw_value={create_value}"],
    "mappings.item_types_page": ["/mappings/item-types?company={company}"],
    "mappings.currencies": ["/mappings/currencies?company={company}"],
    "batches.export": ["/batches/export.csv"],
    "batches.export_items": ["/batches/{batch}.csv"],
    "batches.show": ["/batches/{batch}", "/batches/{queued}"],
    "batches.progress": ["/batches/{batch}/progress", "/batches/{queued}/progress"],
    "batches.items": ["/batches/{batch}/items", "/batches/{batch}/items?after={after}",
                      "/batches/{batch}/items?state=failed&colour=red"],
    "batches.events": ["/batches/{batch}/items/{item}/events"],
    "unbatch.preview": ["/batches/{batch}/unbatch?item={item}"],
    "unbatch.validation_view": ["/batches/{batch}/validate"],
    "unbatch.validation_csv": ["/batches/{batch}/validate.csv"],
    "unbatch.range_view": ["/batches/validation"],
    "unbatch.report_csv": ["/batches/validation/1.csv"],
    "unbatch.handled": ["/batches/clear/record?company={company}&type=invoice&record=1"],
    "payments.index": ["/payments/"],
    "payments.sync_page": ["/payments/{company}/sync"],
    "payments.rerun": ["/payments/{company}/rerun?since=2026-11-01T08:00&batch={payment}"],
    "payments.batch": ["/payments/batches/{payment}"],
    "payments.progress": ["/payments/batches/{payment}/progress"],
    "payments.items": ["/payments/batches/{payment}/items?status=done",
                       "/payments/batches/{payment}/items?after=1"],
    "payments.export_items": ["/payments/batches/{payment}.csv"],
    "payments.webhook_settings": ["/payments/webhooks"],
    CALLBACK: [],  # checked on its own below
}
MORE_URLS = {  # HTMX_ROUTES' URLs assume ids and selections of their own tests
    "runs.show": ["/runs/{run}"],
    "batches.new": ["/batches/new/invoices?company={company}&filtered=1&from=&to="
                    "&record={record}"],
    "batches.validate": ["/batches/new/invoices/validate?company={company}&filtered=1"
                         "&from=&to=&record={record}"],
}


def _urls(ids: dict[str, object]) -> list[tuple[str, str]]:
    urls = [(endpoint, url) for endpoint, url, _root in HTMX_ROUTES]
    for table in (PAGE_URLS, MORE_URLS):
        for endpoint, templates in table.items():
            for template in templates:
                for fields in ids["variants"].get(endpoint, [{}]):  # type: ignore[attr-defined]
                    urls.append((endpoint, template.format(**{**ids, **fields})))
    return urls


def _snapshot(app) -> dict[str, tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Row count and a checksum of every table but the session store."""
    out = {}
    with engine(app).connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name == INFRASTRUCTURE:
                out[table.name] = (connection.scalar(
                    sa.select(sa.func.count()).select_from(table)), "")
                continue
            digest = hashlib.sha256()
            rows = connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            count = 0
            for row in rows:
                digest.update(repr(tuple(row)).encode())
                count += 1
            out[table.name] = (count, digest.hexdigest())
    return out


@pytest.fixture()
def world(app, client, connected, make_user):  # type: ignore[no-untyped-def]
    """Reference data fetched, the backlog checked, a finished batch and a queued one, a
    reset link for another user: every GET route has something to show."""
    for path in ("/mappings/refresh", "/mappings/scan"):
        response = client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        assert response.status_code == 202, response.get_data(as_text=True)
        run_jobs(app)
    from tests.integration.test_batch_pages import _unposted

    records = _unposted(app)
    with session_scope(app) as session:
        company = session.get(Company, connected.id)
        snapshot = company_settings.as_json(company_settings.get_settings(session, company))
        batch = scale.add_batch(session, company.id, items=150, snapshot=snapshot)
        scale.recount(session, batch)
        first, after = session.execute(sa.select(BatchItem.id, BatchItem.position).where(
            BatchItem.batch_id == batch).order_by(BatchItem.position).offset(99).limit(1)
        ).one()
        item = session.scalar(sa.select(sa.func.min(BatchItem.id)).where(
            BatchItem.batch_id == batch))
        run = session.scalar(sa.select(sa.func.min(JobRun.id)))
        value = session.scalars(sa.select(MappingValue).where(
            MappingValue.kind == "customer").order_by(MappingValue.id)).first()
        tabs = [t.slug for t in company_settings.visible_tabs(company)]
    from tests.integration.payments import run_sync

    payment = run_sync(app)  # a finished payment sync
    # a queued batch of one record, submitted as a person does
    form = {"filtered": "1", "company": str(connected.id), "from": "", "to": "",
            "record": [str(records[1].cw_id)], "csrf_token": client.csrf_token(
                "/batches/new/invoices")}
    submitted = client.post("/batches/new/invoices", data=form)
    assert submitted.status_code == 303, submitted.get_data(as_text=True)
    queued = int(submitted.headers["Location"].rsplit("/", 1)[1])
    hasher = passwords.hasher_for(app.config)
    with session_scope(app) as session:
        other = User(email="reset@example.test", name="Reset", role=Role.VIEWER,
                     password_hash=hasher.hash(PASSWORD), active=True)
        session.add(other)
        session.flush()
        reset = users.create_reset(session, other, by=None)
    return {"company": connected.id, "batch": batch, "queued": queued, "item": item,
            "after": f"{after}:{first}", "run": run, "record": records[0].cw_id,
            "reset": reset, "create_kind": value.kind, "create_value": value.cw_value,
            "tab": tabs[0], "kind": "customer", "payment": payment,
            "variants": {"settings.tab": [{"tab": t} for t in tabs],
                         "mappings.editor": [{"kind": k} for k in ENTITIES]}}


def test_every_get_route_is_walked(app, world):
    walked = {endpoint for endpoint, _url in _urls(world)}
    gets = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert gets - walked == {CALLBACK}  # walked by the last test
    assert walked - gets == set()
    assert set(PAGE_URLS) == PAGE_ONLY


def test_no_get_route_writes(app, client, world):
    writes: list[str] = []

    def listen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if WRITE.match(statement) and INFRASTRUCTURE not in statement.split("(")[0]:
            writes.append(statement)

    before = _snapshot(app)
    failures = []
    event.listen(engine(app), "before_cursor_execute", listen)
    try:
        for endpoint, url in _urls(world):
            for hx in (False, True):
                writes.clear()
                response = client.hx("GET", url) if hx else client.get(url)
                if response.is_streamed:
                    response.get_data()
                assert response.status_code != 500, url  # /readyz is 503 without a worker
                if writes:
                    failures.append((endpoint, url, hx, [" ".join(w.split())[:120]
                                                         for w in writes]))
    finally:
        event.remove(engine(app), "before_cursor_execute", listen)
    assert failures == []
    assert _snapshot(app) == before


def test_the_oauth_callback_writes_only_its_audit_record(app, client, world):
    """Intuit's redirect is a GET by protocol; without a state this session started it
    stores nothing but the audit record of the rejected callback."""
    before = _snapshot(app)
    response = client.get("/setup/quickbooks/callback?code=x&realmId=1&state=forged")
    assert response.status_code == 400
    after = _snapshot(app)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"audit_event"}
    with session_scope(app) as session:
        newest = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert newest.action == "connection.qbo.callback_rejected"
    assert after["audit_event"][0] == before["audit_event"][0] + 1


def test_a_company_without_settings_is_read_not_written(app, client, world):
    """A company connected before settings existed (an upgraded install) has no settings
    row: its pages show the defaults and leave storing them to the first save or batch."""
    with session_scope(app) as session:
        session.execute(sa.update(Batch).values(settings_version_id=None))
        session.execute(sa.delete(SettingsVersion))
        session.execute(sa.delete(StoredSettings))
    before = _snapshot(app)
    company = world["company"]
    tabs = world["variants"]["settings.tab"]  # type: ignore[index]
    for url in ["/", f"/batches/{world['batch']}", "/batches/new/invoices",
                *[f"/setup/quickbooks/{company}/settings/{t['tab']}" for t in tabs]]:
        response = client.get(url)
        assert response.status_code == 200, url
    text = client.get(f"/setup/quickbooks/{company}/settings/company").get_data(as_text=True)
    assert "Version 0 · defaults, not saved yet" in text
    assert _snapshot(app) == before
