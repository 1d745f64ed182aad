"""Set up ConnectWise against the sandbox over HTTP: save, test each outcome, probe."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, CwConnection, PermissionProbe
from tests.integration.connect import save_connectwise

pytestmark = pytest.mark.integration


def _form(client, server, creds, **overrides):  # type: ignore[no-untyped-def]
    return save_connectwise(client, server, creds, **overrides)


@pytest.fixture()
def connected(app, client, login_as, cw_sandbox):  # type: ignore[no-untyped-def]
    login_as("admin")
    sandbox, server = cw_sandbox
    response = _form(client, server, sandbox.credentials)
    assert response.status_code == 303, response.get_data(as_text=True)
    return sandbox, server


def test_save_looks_up_the_company_and_seals_the_key(app, client, connected):
    sandbox, _server = connected
    page = client.get("/setup/connectwise").get_data(as_text=True)
    assert "Northwind Managed IT" in page and "codebase <code>v4_6_release/</code>" in page
    private = sandbox.credentials["private_key"]
    assert private not in page  # write-only
    assert "Leave empty to keep it" in page
    with session_scope(app) as session:
        row = session.get(CwConnection, 1)
        assert row.private_key_enc and private not in row.private_key_enc
        event = session.scalar(sa.select(AuditEvent).where(
            AuditEvent.action == "connection.cw.update"))
        assert event.after["private_key"] == {"secret": True, "changed": True}


def test_saving_without_a_new_private_key_keeps_the_old_one(app, client, connected):
    sandbox, server = connected
    with session_scope(app) as session:
        before = session.get(CwConnection, 1).private_key_enc
    assert _form(client, server, sandbox.credentials, private_key="").status_code == 303
    with session_scope(app) as session:
        assert session.get(CwConnection, 1).private_key_enc == before
    result = client.hx("POST", "/setup/connectwise/test", token_from="/setup/connectwise")
    assert "Connected." in result.get_data(as_text=True)


def test_connection_test_success(app, client, connected):
    response = client.hx("POST", "/setup/connectwise/test", token_from="/setup/connectwise")
    text = response.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="cw-test"')
    assert "Connected to Northwind Managed IT on ConnectWise v2025.1" in text
    assert "(cloud), server time zone Eastern Standard Time." in text
    steps = client.get("/").get_data(as_text=True)
    assert "Connected to Northwind Managed IT." in steps


def test_bad_keys_are_reported(app, client, connected):
    sandbox, server = connected
    _form(client, server, sandbox.credentials, private_key="not-the-right-private-key")
    text = client.hx("POST", "/setup/connectwise/test",
                     token_from="/setup/connectwise").get_data(as_text=True)
    # The sandbox runs in cloud mode, where ConnectWise answers 404 to bad keys.
    assert "ConnectWise answered &#39;not found&#39;. On cloud this usually means wrong keys" \
        in text
    assert "The last connection test failed" not in text
    dashboard = client.get("/").get_data(as_text=True)
    assert 'class="step step-warning" id="step-2"' in dashboard


def test_bad_keys_on_premise_say_the_keys_were_rejected(app, client, connected):
    sandbox, server = connected
    requests.post(f"{server.url}/_sim/switches", json={"cw_cloud_mode": False}, timeout=5)
    _form(client, server, sandbox.credentials, private_key="not-the-right-private-key")
    text = client.hx("POST", "/setup/connectwise/test",
                     token_from="/setup/connectwise").get_data(as_text=True)
    assert "ConnectWise rejected the API keys." in text
    assert "Re-enter both keys" in text


def test_unknown_company_is_refused_at_save(app, client, login_as, cw_sandbox):
    login_as("admin")
    sandbox, server = cw_sandbox
    response = _form(client, server, sandbox.credentials, company_id="southwind")
    assert response.status_code == 422
    assert "ConnectWise does not know company id &#39;southwind&#39;" in response.get_data(
        as_text=True)
    with session_scope(app) as session:
        assert session.get(CwConnection, 1) is None


def test_wrong_client_id_is_reported(app, client, connected):
    sandbox, server = connected
    _form(client, server, sandbox.credentials,
          client_id="00000000-0000-4000-8000-000000000000")
    text = client.hx("POST", "/setup/connectwise/test",
                     token_from="/setup/connectwise").get_data(as_text=True)
    assert "ConnectWise refused the clientId." in text


def test_malformed_client_id_is_refused_by_the_form(client, login_as, cw_sandbox):
    login_as("admin")
    sandbox, server = cw_sandbox
    response = _form(client, server, sandbox.credentials, client_id="not a guid")
    assert response.status_code == 422
    assert "The clientId is a GUID" in response.get_data(as_text=True)


def test_unreachable_site(client, login_as, cw_sandbox):
    login_as("admin")
    sandbox, _server = cw_sandbox
    response = _form(client, None or type("S", (), {"url": "http://127.0.0.1:9"})(),
                     sandbox.credentials)
    assert response.status_code == 422
    assert "Cannot reach 127.0.0.1:9: connection refused." in response.get_data(as_text=True)


def test_probe_with_the_full_role(app, client, connected):
    text = client.hx("POST", "/setup/connectwise/probe",
                     token_from="/setup/connectwise").get_data(as_text=True)
    assert "every permission is granted" in text
    assert text.count("✓ granted") == 13
    with session_scope(app) as session:
        probe = session.scalar(sa.select(PermissionProbe))
        assert (probe.missing, probe.unknown) == (0, 0)


def test_probe_finds_accounting_interface_add_missing(app, client, connected):
    _sandbox, server = connected
    answer = requests.post(f"{server.url}/_sim/role", json={
        "revoke": {"Finance.Accounting Interface": ["add"]}}, timeout=5)
    assert answer.status_code == 200, answer.text
    text = client.hx("POST", "/setup/connectwise/probe",
                     token_from="/setup/connectwise").get_data(as_text=True)
    assert "1 permission(s) missing" in text
    assert "Finance &gt; Accounting Interface: Add, Edit, Delete, Inquire All" in text
    dashboard = client.get("/").get_data(as_text=True)
    assert "The latest probe: 1 missing, 0 unknown permission(s)." in dashboard


def test_system_level_confirmation_completes_step_one(app, client, connected):
    client.hx("POST", "/setup/connectwise/probe", token_from="/setup/connectwise")
    assert "Set the API member's System Level to Level 1" in client.get(
        "/setup/connectwise").get_data(as_text=True)
    response = client.post("/setup/connectwise/system-level", data={
        "confirmed": "1", "csrf_token": client.csrf_token("/setup/connectwise")})
    assert response.status_code == 303
    assert "Set the API member's System Level" not in client.get(
        "/setup/connectwise").get_data(as_text=True)
    dashboard = client.get("/").get_data(as_text=True)
    assert 'class="step step-done" id="step-1"' in dashboard
