"""Intuit OAuth 2.0 against the sandbox, driven by the unchanged intuit-oauth AuthClient."""

from __future__ import annotations

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from conftest import APP, REALM, company, consent, sample
from portal.sandbox.common import SimClock


def _client(qbo) -> AuthClient:
    return AuthClient(APP["client_id"], APP["client_secret"], APP["redirect_uris"][0],
                      environment=qbo.sandbox.discovery_url())


def _connect(qbo) -> AuthClient:
    auth = _client(qbo)
    url = auth.get_authorization_url([Scopes.ACCOUNTING])
    params = consent(qbo.url, url, REALM)
    assert params["state"] == [auth.state_token] and params["realmId"] == [REALM]
    auth.get_bearer_token(params["code"][0], realm_id=params["realmId"][0])
    return auth


def test_discovery_document_points_back_here(launch):
    qbo = launch(company())
    doc = requests.get(qbo.sandbox.discovery_url(), timeout=5).json()
    for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert doc[key].startswith(qbo.url)
    assert doc["issuer"] == f"{qbo.url}/op/v1"


def test_full_flow_with_rotation_reuse_and_revoke(launch):
    qbo = launch(company(), switches={"sim.qbo_refresh_rotation": "every"})
    auth = _connect(qbo)
    assert auth.expires_in == 3600 and auth.x_refresh_token_expires_in > 8_000_000
    api = requests.get(qbo.path("companyinfo/" + REALM), timeout=5,
                       headers={"Authorization": f"Bearer {auth.access_token}", "Accept": "application/json"})
    assert api.status_code == 200 and api.json()["CompanyInfo"]["CompanyName"] == "Test Company"
    old_refresh, old_access = auth.refresh_token, auth.access_token
    auth.refresh()
    assert auth.refresh_token != old_refresh and auth.access_token != old_access
    with pytest.raises(AuthClientError) as failure:
        auth.refresh(refresh_token=old_refresh)
    assert failure.value.status_code == 400
    assert failure.value.content and requests.models.complexjson.loads(failure.value.content) == \
        sample("token_error_invalid_grant.json")
    assert auth.revoke() is True
    with pytest.raises(AuthClientError):
        auth.refresh()
    gone = requests.get(qbo.path("companyinfo/" + REALM), timeout=5,
                        headers={"Authorization": f"Bearer {auth.access_token}"})
    assert gone.status_code == 401


def test_deny_redirects_with_access_denied(launch):
    qbo = launch(company())
    auth = _client(qbo)
    url = auth.get_authorization_url([Scopes.ACCOUNTING], state_token="s-123")
    params = consent(qbo.url, url, REALM, decision="deny")
    assert params == {"error": ["access_denied"], "state": ["s-123"]}


def test_daily_rotation_grace_and_expiry(launch):
    clock = SimClock()
    clock.freeze()
    qbo = launch(company(), clock=clock, switches={"sim.qbo_old_refresh_token_grace_seconds": 60})
    auth = _connect(qbo)
    first = auth.refresh_token
    auth.refresh()
    assert auth.refresh_token == first, "daily rotation keeps the token within 24 h"
    clock.advance(86400)
    auth.refresh()
    assert auth.refresh_token != first
    auth.refresh(refresh_token=first)  # within the grace period
    clock.advance(61)
    with pytest.raises(AuthClientError):
        auth.refresh(refresh_token=first)
    clock.advance(3600)
    expired = requests.get(qbo.path("preferences"), headers={"Authorization": f"Bearer {auth.access_token}"},
                           timeout=5)
    assert expired.status_code == 401
    assert expired.json() == sample("fault_401_gateway_observed.json")


def test_hard_expiry_header_and_bad_client(launch):
    qbo = launch(company())
    auth = _connect(qbo)
    auth.include_refresh_token_hard_expires_in = True
    auth.refresh()
    assert auth.x_refresh_token_hard_expires_in > 100_000_000
    bad = AuthClient(APP["client_id"], "wrong", APP["redirect_uris"][0], environment=qbo.sandbox.discovery_url())
    with pytest.raises(AuthClientError) as failure:
        bad.refresh(refresh_token=auth.refresh_token)
    assert failure.value.status_code == 401


def test_consent_refuses_unregistered_redirect(launch):
    qbo = launch(company())
    page = requests.get(f"{qbo.url}/connect/oauth2", timeout=5,
                        params={"client_id": APP["client_id"], "redirect_uri": "http://evil.invalid/cb",
                                "response_type": "code", "scope": "com.intuit.quickbooks.accounting"})
    assert page.status_code == 400


def test_token_for_other_realm_is_forbidden(launch):
    qbo = launch(company(), company(realm="4620816365200000000", base=False))
    other = requests.get(f"{qbo.url}/v3/company/4620816365200000000/preferences",
                         headers=dict(qbo.session.headers), timeout=5)
    assert other.status_code == 403 and other.json()["fault"]["error"][0]["code"] == "3100"


def test_openid_scope_gets_a_verifiable_id_token(launch):
    qbo = launch(company())
    auth = _client(qbo)
    url = auth.get_authorization_url([Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL])
    params = consent(qbo.url, url, REALM)
    auth.get_bearer_token(params["code"][0], realm_id=REALM)
    assert auth.id_token and auth.id_token.count(".") == 2
    assert auth.get_user_info().json()["email"]


def test_default_demo_app_is_always_registered(launch):
    qbo = launch(company())
    assert "sandbox-client-id" in qbo.sandbox.oauth.state.apps and "test-client" in qbo.sandbox.oauth.state.apps
