"""What the benchmark scripts share: start both sandboxes on a generated data set, log in,
read a CSRF token, connect both sandboxes the way an admin does (ConnectWise keys, then the
QuickBooks app and its consent screen)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import Company, Role
from portal.sandbox import connectwise, demo_data, quickbooks
from portal.services import users

PASSWORD = "benchmark passphrase 2026"
EMAIL = "bench@example.test"


def sandboxes(scale: int):  # type: ignore[no-untyped-def]
    """Both sandboxes on the generated data set, served on loopback:
    (cw, qbo, cw_server, qbo_server)."""
    data = demo_data.generate(scale=scale)
    cw = connectwise.ConnectWiseSandbox(data=data["connectwise"])
    qbo = quickbooks.QuickBooksSandbox(data=data["quickbooks"])
    del data
    return cw, qbo, connectwise.serve(cw), quickbooks.serve(qbo)


def login(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD,
                                     "csrf_token": token})


def token(client, path: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(path).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def connect(client, cw, cw_url: str, qbo_url: str) -> None:  # type: ignore[no-untyped-def]
    creds = cw.credentials
    client.post("/setup/connectwise", data={
        "site": cw_url, "company_id": creds["company_id"], "public_key": creds["public_key"],
        "private_key": creds["private_key"], "client_id": creds["client_id"],
        "verify_tls": "y", "csrf_token": token(client, "/setup/connectwise")})
    app_creds = {"client_id": "ABbenchmarkClient00000000000000000000000001",
                 "client_secret": "benchmark-secret"}
    requests.post(f"{qbo_url}/_sim/apps", json={
        **app_creds, "redirect_uris": ["http://localhost/setup/quickbooks/callback"]}, timeout=5)
    client.post("/setup/quickbooks/app", data={
        **app_creds, "environment": "custom",
        "discovery_url": f"{qbo_url}/.well-known/openid_sandbox_configuration",
        "api_base_url": qbo_url, "csrf_token": token(client, "/setup/quickbooks")})
    start = client.get("/setup/quickbooks/connect").headers["Location"]
    page = requests.get(start, timeout=5).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    realm = re.findall(r'<option value="([^"]+)"', page)[0]
    answer = requests.post(start.split("?")[0], data={**fields, "realmId": realm,
                                                      "decision": "allow"},
                           allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    client.get(f"{back.path}?{back.query}")
    assert parse_qs(back.query).get("code")


def connected_company(app, cw, cw_server, qbo_server  # type: ignore[no-untyped-def]
                      ) -> tuple[int, str]:
    """Create the admin, sign in and connect both sandboxes: (company id, realm id)."""
    with app.app_context(), session_scope(app) as session:
        users.create(session, email=EMAIL, name="Bench", role=Role.ADMIN,
                     password=PASSWORD)
    client = app.test_client()
    login(client)
    connect(client, cw, cw_server.url, qbo_server.url)
    with session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        return company.id, company.realm_id
