"""Re-authentication (SPEC 1.2): the password again before sensitive actions, once every
10 minutes, and the prompt sends the action on."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, Company, CompanyStatus, Role, User
from tests.conftest import PASSWORD, age_password
from tests.integration.connect import APP, save_connectwise

pytestmark = pytest.mark.integration


def _actions(app) -> list[tuple[str, str]]:
    with session_scope(app) as session:
        return [(e.action, e.result) for e in session.scalars(
            sa.select(AuditEvent).order_by(AuditEvent.id))]


def _user(app, user_id) -> User:
    with session_scope(app) as session:
        return session.get(User, user_id)


def _prompt_fields(body: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))


def test_role_change_asks_again_and_the_prompt_finishes_it(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("viewer")
    age_password(app)
    row_id = f"user-{other.id}"
    asked = client.hx("POST", f"/users/{other.id}/role", data={"role": "accountant"},
                      headers={"HX-Target": row_id}, token_from="/users/")
    assert asked.status_code == 200
    assert asked.headers["HX-Retarget"] == "#reauth-slot"
    prompt = asked.get_data(as_text=True)
    assert prompt.startswith("<dialog open") and 'id="reauth-prompt"' in prompt
    assert f'hx-post="/users/{other.id}/role"' in prompt
    assert f'hx-target="#{row_id}" hx-swap="outerHTML"' in prompt
    assert _prompt_fields(prompt)["role"] == "accountant"
    assert _user(app, other.id).role is Role.VIEWER  # nothing done yet

    wrong = client.hx("POST", f"/users/{other.id}/role", headers={"HX-Target": row_id},
                      data={"role": "accountant", "reauth_password": "not my password"})
    assert wrong.status_code == 422
    assert "That is not your password; try again." in wrong.get_data(as_text=True)
    assert _user(app, other.id).role is Role.VIEWER

    done = client.hx("POST", f"/users/{other.id}/role", headers={"HX-Target": row_id},
                     data={"role": "accountant", "reauth_password": PASSWORD})
    assert done.status_code == 200
    body = done.get_data(as_text=True)
    assert body.startswith(f'<tr id="{row_id}"')
    assert '<div id="reauth-slot" hx-swap-oob="true"></div>' in body  # the prompt closes
    assert _user(app, other.id).role is Role.ACCOUNTANT
    assert [a for a in _actions(app) if a[0] in ("auth.reauth", "user.role_change")] == [
        ("auth.reauth", "denied"), ("auth.reauth", "ok"), ("user.role_change", "ok")]

    # Entered just now: the next sensitive action goes through without asking.
    again = client.hx("POST", f"/users/{other.id}/role", data={"role": "viewer"})
    assert again.status_code == 200 and "reauth-prompt" not in again.get_data(as_text=True)
    assert _user(app, other.id).role is Role.VIEWER


def test_disabling_asks_again_enabling_does_not(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("accountant")
    age_password(app)
    asked = client.hx("POST", f"/users/{other.id}/active", data={"active": "0"})
    assert 'id="reauth-prompt"' in asked.get_data(as_text=True)
    assert _user(app, other.id).active
    client.hx("POST", f"/users/{other.id}/active",
              data={"active": "0", "reauth_password": PASSWORD})
    assert not _user(app, other.id).active
    age_password(app)
    enabled = client.hx("POST", f"/users/{other.id}/active", data={"active": "1"})
    assert "reauth-prompt" not in enabled.get_data(as_text=True)
    assert _user(app, other.id).active


def test_a_plain_form_gets_the_prompt_page_without_secrets(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("accountant")
    age_password(app)
    token = client.csrf_token("/users/")
    page = client.post(f"/users/{other.id}/active", data={
        "active": "0", "private_key": "do-not-echo-me", "csrf_token": token})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and 'id="reauth-prompt"' in body
    assert f'action="/users/{other.id}/active"' in body
    assert _prompt_fields(body).get("active") == "0"
    assert "do-not-echo-me" not in body  # a field that looks secret is never echoed
    assert client.post(f"/users/{other.id}/active", data={
        "active": "0", "reauth_password": PASSWORD, "csrf_token": token}).status_code == 200
    assert not _user(app, other.id).active


def test_wrong_passwords_at_the_prompt_count_toward_the_lockout(app, client, login_as,
                                                                make_user):
    admin = login_as("admin")
    other = make_user("viewer")
    age_password(app)
    for _ in range(10):
        client.hx("POST", f"/users/{other.id}/active",
                  data={"active": "0", "reauth_password": "guess guess guess"})
    locked = client.hx("POST", f"/users/{other.id}/active",
                       data={"active": "0", "reauth_password": PASSWORD})
    assert "Too many attempts; try again in 15 minutes." in locked.get_data(as_text=True)
    assert _user(app, other.id).active
    assert ("auth.lockout", "denied") in _actions(app)
    outsider = app.test_client()
    assert outsider.login(admin.email).status_code == 429  # the same account window


def test_connect_link_asks_then_continues_to_intuit(app, client, login_as, qbo_sandbox):
    from tests.integration.connect import save_app

    login_as("admin")
    _qbo, server = qbo_sandbox
    assert save_app(client, server).status_code == 303
    age_password(app)
    asked = client.get("/setup/quickbooks/connect")
    body = html.unescape(asked.get_data(as_text=True))
    assert asked.status_code == 200 and 'id="reauth-prompt"' in body
    assert 'action="/auth/confirm?next=/setup/quickbooks/connect"' in body
    token = client.csrf_token("/setup/quickbooks")
    wrong = client.post("/auth/confirm?next=/setup/quickbooks/connect",
                        data={"reauth_password": "nope nope nope", "csrf_token": token})
    assert wrong.status_code == 422
    confirmed = client.post("/auth/confirm?next=/setup/quickbooks/connect",
                            data={"reauth_password": PASSWORD, "csrf_token": token})
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"] == "/setup/quickbooks/connect"
    onward = client.get(confirmed.headers["Location"])
    assert onward.status_code == 302 and onward.headers["Location"].startswith(server.url)
    offsite = client.post("/auth/confirm?next=https://evil.example/",
                          data={"reauth_password": PASSWORD, "csrf_token": token})
    assert offsite.headers["Location"] == "/"


def test_disconnect_asks_again(app, client, connected):
    age_password(app)
    path = f"/setup/quickbooks/{connected.id}/disconnect"
    asked = client.hx("POST", path, token_from="/setup/quickbooks")
    assert 'id="reauth-prompt"' in asked.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.get(Company, connected.id).status is CompanyStatus.CONNECTED
    done = client.hx("POST", path, data={"reauth_password": PASSWORD})
    assert done.headers["HX-Redirect"] == "/setup/quickbooks"
    with session_scope(app) as session:
        assert session.get(Company, connected.id).status is CompanyStatus.DISCONNECTED


def test_connection_forms_ask_for_the_password_in_the_form(app, client, login_as, cw_sandbox,
                                                           qbo_sandbox):
    login_as("admin")
    cw, cw_server = cw_sandbox
    assert "reauth_password" not in client.get("/setup/connectwise").get_data(as_text=True)
    age_password(app)
    assert 'name="reauth_password"' in client.get("/setup/connectwise").get_data(as_text=True)
    refused = save_connectwise(client, cw_server, cw.credentials)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Enter your password to confirm." in page
    assert cw_server.url in page  # what was typed is kept...
    assert cw.credentials["private_key"] not in page  # ...but never the key
    wrong = save_connectwise(client, cw_server, cw.credentials, reauth_password="nope nope")
    assert "That is not your password; try again." in wrong.get_data(as_text=True)
    saved = save_connectwise(client, cw_server, cw.credentials, reauth_password=PASSWORD)
    assert saved.status_code == 303

    _qbo, qbo_server = qbo_sandbox
    age_password(app)
    form = {**APP, "environment": "custom", "api_base_url": qbo_server.url,
            "discovery_url": f"{qbo_server.url}/.well-known/openid_sandbox_configuration",
            "csrf_token": client.csrf_token("/setup/quickbooks")}
    refused = client.post("/setup/quickbooks/app", data=form)
    assert refused.status_code == 422
    assert APP["client_secret"] not in refused.get_data(as_text=True)
    assert client.post("/setup/quickbooks/app",
                       data={**form, "reauth_password": PASSWORD}).status_code == 303
    assert [a for a, _r in _actions(app) if a.startswith("connection.")] == [
        "connection.cw.update", "connection.qbo.app_update"]
