"""Connect QuickBooks companies through the sandbox's consent page; tokens and refresh."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, Company, CompanyStatus, QboToken
from portal.models.types import utcnow
from portal.services import qbo_setup
from portal.services.tokens import ReconnectNeeded
from tests.integration.connect import APP, consent, save_app, sim

pytestmark = pytest.mark.integration


def _sim(server, path, payload):  # noqa: ANN001 - short alias used throughout
    return sim(server, path, payload)


@pytest.fixture()
def qbo_app(client, login_as, qbo_sandbox):  # type: ignore[no-untyped-def]
    """An admin signed in, the Intuit app saved, its redirect URI registered at Intuit."""
    login_as("admin")
    sandbox, server = qbo_sandbox
    response = save_app(client, server)
    assert response.status_code == 303, response.get_data(as_text=True)
    return sandbox, server


def _company(app, realm=None) -> Company:
    with session_scope(app) as session:
        query = sa.select(Company)
        if realm:
            query = query.where(Company.realm_id == realm)
        return session.scalars(query).first()


def test_connect_stores_the_company_its_settings_and_sealed_tokens(app, client, qbo_app):
    response, params = consent(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    company = _company(app)
    assert company.realm_id == params["realmId"][0]
    assert company.qbo_name == "Northwind Managed IT"
    assert company.status is CompanyStatus.CONNECTED and company.is_default
    assert company.is_us and company.class_tracking != "none" and company.track_locations
    assert company.account_numbers and not company.ast_enabled
    page = client.get("/setup/quickbooks").get_data(as_text=True)
    assert "Connected to QuickBooks company Northwind Managed IT." in page
    assert "Automated Sales Tax: off" in page and "Account numbers: on" in page
    with session_scope(app) as session:
        token = session.get(QboToken, company.id)
        assert token.access_expires_at > utcnow() + timedelta(minutes=50)
        assert token.refresh_hard_expires_at is not None
        assert token.access_token_enc.startswith("gAAAA")  # a Fernet token, not the value
    assert "Connected to QuickBooks company" in page
    dashboard = client.get("/").get_data(as_text=True)
    assert 'class="step step-done" id="step-3"' in dashboard


def test_second_company_is_not_default_until_chosen(app, client, qbo_app):
    _sandbox, server = qbo_app
    consent(client)
    page = requests.get(client.get("/setup/quickbooks/connect").headers["Location"], timeout=5)
    second = re.findall(r'<option value="([^"]+)"', page.text)[1]
    consent(client, realm=second)
    canada = _company(app, second)
    assert canada.qbo_name == "Northwind Canada" and not canada.is_default
    assert not canada.is_us
    client.post(f"/setup/quickbooks/{canada.id}/default",
                data={"csrf_token": client.csrf_token("/setup/quickbooks")})
    assert _company(app, second).is_default
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Company).where(
            Company.is_default.is_(True))) == 1


def test_denial_shows_a_clear_message(app, client, qbo_app):
    response, params = consent(client, decision="deny")
    assert params["error"] == ["access_denied"]
    assert response.status_code == 400
    assert "QuickBooks access was not granted." in response.get_data(as_text=True)
    assert _company(app) is None


def test_callback_without_a_started_sign_in_is_refused(app, client, qbo_app):
    response = client.get("/setup/quickbooks/callback?code=abc&state=forged&realmId=123")
    assert response.status_code == 400
    assert "expired or was not started here" in response.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalar(sa.select(AuditEvent.result).where(
            AuditEvent.action == "connection.qbo.callback_rejected")) == "denied"


def test_state_is_single_use(app, client, qbo_app):
    response, params = consent(client)
    assert response.status_code == 303
    replay = client.get("/setup/quickbooks/callback?" + "&".join(
        f"{k}={v[0]}" for k, v in params.items()))
    assert replay.status_code == 400


def _expire_access(app, company_id):
    with session_scope(app) as session:
        session.get(QboToken, company_id).access_expires_at = utcnow() + timedelta(seconds=10)


def _token_calls(server) -> int:
    counts = requests.get(f"{server.url}/_sim/requests", timeout=5).json()["counts"]
    return sum(n for key, n in counts.items() if "tokens/bearer" in key)


def test_refresh_rotates_and_stores_the_new_refresh_token(app, client, qbo_app):
    _sandbox, server = qbo_app
    _sim(server, "switches", {"sim.qbo_refresh_rotation": "every"})
    consent(client)
    company = _company(app)
    with session_scope(app) as session:
        before = session.get(QboToken, company.id)
        old_refresh, old_version = before.refresh_token_enc, before.version
    _expire_access(app, company.id)
    with app.test_request_context():
        with session_scope(app) as session:
            info = qbo_setup.client_for(session, session.get(Company, company.id)).company_info()
    assert info["CompanyName"] == "Northwind Managed IT"
    with session_scope(app) as session:
        after = session.get(QboToken, company.id)
        assert after.version == old_version + 1
        assert after.refresh_token_enc != old_refresh
        assert after.access_expires_at > utcnow() + timedelta(minutes=50)


def test_two_concurrent_refreshers_refresh_once(app, client, qbo_app):
    _sandbox, server = qbo_app
    _sim(server, "switches", {"sim.qbo_refresh_rotation": "every"})
    consent(client)
    company = _company(app)
    _expire_access(app, company.id)
    requests.delete(f"{server.url}/_sim/requests", timeout=5)
    results: list[object] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        with app.test_request_context():
            with session_scope(app) as session:
                qbo = qbo_setup.client_for(session, session.get(Company, company.id))
            barrier.wait()
            try:
                results.append(qbo.company_info()["CompanyName"])
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["Northwind Managed IT", "Northwind Managed IT"]
    assert _token_calls(server) == 1
    assert _company(app).status is CompanyStatus.CONNECTED


def test_dead_refresh_token_marks_reconnect_needed_with_a_banner(app, client, qbo_app):
    _sandbox, server = qbo_app
    consent(client)
    company = _company(app)
    _sim(server, "faults", {"kind": "revoke", "path_regex": "tokens/bearer", "count": 1})
    _expire_access(app, company.id)
    with app.test_request_context():
        with session_scope(app) as session:
            qbo = qbo_setup.client_for(session, session.get(Company, company.id))
        with pytest.raises(ReconnectNeeded, match="needs to be reconnected by an admin"):
            qbo.company_info()
    assert _company(app).status is CompanyStatus.RECONNECT_NEEDED
    for path in ("/", "/users/", "/setup/quickbooks"):
        assert "QuickBooks connection for Northwind Managed IT needs to be reconnected" in \
            client.get(path).get_data(as_text=True)
    assert 'class="step step-warning" id="step-3"' in client.get("/").get_data(as_text=True)
    # Reconnecting the same realm clears the flag.
    response, _params = consent(client)
    assert response.status_code == 303
    assert _company(app).status is CompanyStatus.CONNECTED
    assert "needs to be reconnected" not in client.get("/").get_data(as_text=True)


def test_401_mid_request_refreshes_and_replays_with_the_same_requestid(app, client, qbo_app):
    _sandbox, server = qbo_app
    consent(client)
    company = _company(app)
    _sim(server, "faults", {"kind": "token_expire", "method": "POST",
                            "path_regex": "/customer$", "count": 1})
    requests.delete(f"{server.url}/_sim/requests", timeout=5)
    with app.test_request_context():
        with session_scope(app) as session:
            qbo = qbo_setup.client_for(session, session.get(Company, company.id))
        created = qbo.create("Customer", {"DisplayName": "Replay Test Customer"},
                             request_id="replay-test-0001")
    assert created["DisplayName"] == "Replay Test Customer"
    log = requests.get(f"{server.url}/_sim/requests?entries=1", timeout=5).json()["entries"]
    posts = [e for e in log if e["method"] == "POST" and e["path"].endswith("/customer")]
    assert [e["status"] for e in posts] == [401, 200]
    assert _token_calls(server) == 1
    with app.test_request_context():
        found = qbo.query("SELECT * FROM Customer WHERE DisplayName = 'Replay Test Customer'")
    assert len(found["Customer"]) == 1


def test_disconnect_revokes_and_keeps_the_company(app, client, qbo_app):
    _sandbox, server = qbo_app
    consent(client)
    company = _company(app)
    response = client.hx("POST", f"/setup/quickbooks/{company.id}/disconnect",
                         token_from="/setup/quickbooks")
    assert response.headers["HX-Redirect"] == "/setup/quickbooks"
    assert _company(app).status is CompanyStatus.DISCONNECTED
    with session_scope(app) as session:
        assert session.get(QboToken, company.id) is None
    log = requests.get(f"{server.url}/_sim/requests?entries=1", timeout=5).json()["entries"]
    assert any("revoke" in e["path"] and e["status"] == 200 for e in log)
    page = client.get("/setup/quickbooks").get_data(as_text=True)
    assert "is disconnected; its settings and history remain." in page


def test_app_form_validates_custom_urls(client, login_as, qbo_sandbox):
    login_as("admin")
    response = client.post("/setup/quickbooks/app", data={
        **APP, "environment": "custom", "discovery_url": "ftp://nope", "api_base_url": "",
        "csrf_token": client.csrf_token("/setup/quickbooks")})
    assert response.status_code == 422
    assert "Enter an http(s) URL" in response.get_data(as_text=True)


def test_connect_without_app_credentials_explains(client, login_as):
    login_as("admin")
    response = client.get("/setup/quickbooks/connect")
    assert response.status_code == 303
    page = client.get("/setup/quickbooks").get_data(as_text=True)
    assert "Enter the Intuit app&#39;s client id and secret first." in page
