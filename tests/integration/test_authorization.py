"""Every route declares its roles; anonymous users and the wrong roles are refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent

pytestmark = pytest.mark.integration

PUBLIC = {"static", "auth.login", "auth.forgot", "auth.reset", "health.healthz",
          "health.readyz", "webhooks.receive"}  # the receiver checks Intuit's signature
SAMPLE_ARGS = {"run_id": 1, "user_id": 1, "kind": "invoices", "token": "x", "filename": "x",
               "session_id": 1, "company_id": 1,
               "tab": "company", "batch_id": 1, "item_id": 1, "qbo_id": "1", "report_id": 1}


def _routes(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        yield rule, view


def _url(app, rule):
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{a: SAMPLE_ARGS[a] for a in rule.arguments})


def test_every_endpoint_declares_who_may_use_it(app):
    undeclared = [rule.endpoint for rule, view in _routes(app)
                  if not getattr(view, "_portal_roles", None)
                  and not getattr(view, "_portal_public", False)]
    assert undeclared == []
    public = {rule.endpoint for rule, view in _routes(app) if getattr(view, "_portal_public", False)}
    assert public == PUBLIC


def test_every_protected_route_refuses_anonymous_users(app, client):
    checked = 0
    for rule, view in _routes(app):
        if rule.endpoint in PUBLIC:
            continue
        url = _url(app, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            headers = {}
            if method != "GET":
                headers["X-CSRFToken"] = client.csrf_token()
            response = client.open(url, method=method, headers=headers)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response.headers["Location"].startswith("/auth/login")
            hx = client.open(url, method=method, headers={**headers, "HX-Request": "true"})
            assert hx.status_code == 401 and "HX-Redirect" in hx.headers, (method, url)
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize("role", ["accountant", "viewer"])
def test_admin_only_routes_refuse_other_roles(app, client, login_as, role):
    login_as(role)
    refused = 0
    for rule, view in _routes(app):
        if "admin" not in getattr(view, "_portal_roles", ()) or role in view._portal_roles:
            continue
        url = _url(app, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            headers = {"X-CSRFToken": client.csrf_token("/")} if method != "GET" else {}
            response = client.open(url, method=method, headers=headers)
            assert response.status_code == 403, (role, method, url, response.status_code)
            refused += 1
    assert refused >= 6
    with session_scope(app) as session:
        denied = session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "authz.denied")).all()
    assert len(denied) == refused
    assert all(e.result == "denied" and e.actor == f"{role}@example.test" for e in denied)


def test_sidebar_shows_only_what_the_role_may_open(client, login_as):
    login_as("viewer")
    page = client.get("/").get_data(as_text=True)
    assert "Review batches" in page and "Dashboard" in page
    for hidden in ("Users", "Audit log", "Set up ConnectWise", "Mappings", "Invoices"):
        assert f">{hidden}</a>" not in page
