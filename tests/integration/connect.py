"""Helpers that connect the portal to the sandboxes the way an admin does, over HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

APP = {"client_id": "ABportalTestsClientId000000000000000000000001",
       "client_secret": "portal-tests-client-secret-0001"}
CALLBACK = "http://localhost/setup/quickbooks/callback"


def sim(server: Any, path: str, payload: Any) -> Any:
    """POST to a sandbox's /_sim/ control API."""
    answer = requests.post(f"{server.url}/_sim/{path}", json=payload, timeout=5)
    assert answer.status_code < 300, answer.text
    return answer.json()


def save_connectwise(client: Any, server: Any, creds: dict[str, str], **overrides: str) -> Any:
    """Submit the Set up ConnectWise form."""
    data = {"site": server.url, "company_id": creds["company_id"],
            "public_key": creds["public_key"], "private_key": creds["private_key"],
            "client_id": creds["client_id"], "verify_tls": "y",
            "csrf_token": client.csrf_token("/setup/connectwise")}
    data.update(overrides)
    return client.post("/setup/connectwise", data=data)


def save_app(client: Any, server: Any) -> Any:
    """Register the test app's redirect URI at the sandbox and save it in the portal."""
    sim(server, "apps", {**APP, "redirect_uris": [CALLBACK]})
    return client.post("/setup/quickbooks/app", data={
        **APP, "environment": "custom",
        "discovery_url": f"{server.url}/.well-known/openid_sandbox_configuration",
        "api_base_url": server.url, "csrf_token": client.csrf_token("/setup/quickbooks")})


def consent(client: Any, decision: str = "allow", realm: str | None = None) -> tuple[Any, dict]:
    """Click Connect, answer Intuit's consent page, follow the redirect back."""
    start = client.get("/setup/quickbooks/connect")
    assert start.status_code == 302, start.get_data(as_text=True)
    page = requests.get(start.headers["Location"], timeout=5)
    assert page.status_code == 200
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    realms = re.findall(r'<option value="([^"]+)"', page.text)
    answer = requests.post(start.headers["Location"].split("?")[0],
                           data={**fields, "realmId": realm or realms[0], "decision": decision},
                           allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}"), parse_qs(back.query)
