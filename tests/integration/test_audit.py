"""The audit helper writes who/what/before/after without secrets; the page filters and pages."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent
from portal.models.types import utcnow
from portal.services import audit

pytestmark = pytest.mark.integration


def test_record_stores_changes_and_masks_secrets(app):
    secret = "sk-live-VERY-secret-123456"
    with app.test_request_context("/x", environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        from flask import g

        g.request_id = "req-123"
        with session_scope(app) as session:
            audit.record(session, "settings.connectwise.update", target_type="connection",
                         target_id=1, company_id=4,
                         before={"site": "old.example", "private_key": "old-secret-value",
                                 "client_id": "same"},
                         after={"site": "new.example", "private_key": secret,
                                "client_id": "same"})
    with session_scope(app) as session:
        event = session.scalar(sa.select(AuditEvent))
        assert event.actor == "cli" and event.ip == "10.1.2.3" and event.request_id == "req-123"
        assert event.company_id == 4 and event.target_id == "1"
        assert event.before == {"site": "old.example",
                                "private_key": {"secret": True, "changed": True}}
        assert event.after == {"site": "new.example",
                               "private_key": {"secret": True, "changed": True}}
        dump = json.dumps([event.before, event.after])
        assert secret not in dump and "old-secret-value" not in dump


def test_audit_rows_cannot_be_changed_on_postgresql(app):
    from portal.db import engine

    with session_scope(app) as session:
        audit.record(session, "test.event")
    with engine(app).connect() as connection:
        if connection.dialect.name != "postgresql":
            # SQLite has no role grants: only the code path (no update/delete anywhere).
            assert "audit_event_append_only" not in str(connection.execute(sa.text(
                "SELECT group_concat(name) FROM sqlite_master WHERE type='trigger'")).scalar())
            return
    for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
        with engine(app).connect() as connection:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                connection.execute(sa.text(statement))


def _seed(app, count):
    with session_scope(app) as session:
        for number in range(count):
            session.add(AuditEvent(actor="cli", action=f"test.event{number % 3}",
                                   at=utcnow() - timedelta(days=number)))


def test_page_filters_by_action_user_and_date(app, client, login_as):
    admin = login_as("admin")  # writes an auth.login event for this admin
    _seed(app, 9)
    page = client.get("/audit/?action=test.event1").get_data(as_text=True)
    assert "3 event(s)" in page
    mine = client.get(f"/audit/?user={admin.id}").get_data(as_text=True)
    assert "1 event(s)" in mine and "auth.login" in mine
    today = utcnow().date()
    recent = client.hx("GET", f"/audit/?since={today - timedelta(days=2)}&until={today}&user=cli")
    text = recent.get_data(as_text=True)
    assert "3 event(s)" in text and "<html" not in text


def test_bad_date_gets_a_message_not_a_500(client, login_as):
    login_as("accountant")
    response = client.get("/audit/?since=yesterday")
    assert response.status_code == 422
    assert "From: &#39;yesterday&#39; is not a date; use YYYY-MM-DD." in response.get_data(
        as_text=True)


def test_page_is_paged(app, client, login_as):
    login_as("admin")
    _seed(app, 120)
    first = client.get("/audit/").get_data(as_text=True)
    assert "Page 1 of 3" in first
    third = client.hx("GET", "/audit/?page=3").get_data(as_text=True)
    assert "Page 3 of 3" in third and third.count('<tr id="audit-') == 21


def test_csv_export_follows_the_filters(app, client, login_as):
    login_as("admin")
    _seed(app, 6)
    response = client.get("/audit/export.csv?action=test.event2")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["action"] for row in rows] == ["test.event2", "test.event2"]


def test_viewer_cannot_read_the_log(client, login_as):
    login_as("viewer")
    assert client.get("/audit/").status_code == 403
