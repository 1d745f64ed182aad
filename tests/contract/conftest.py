"""Fixtures of the contract tests: the live ConnectWise sandbox behind a signed-in client."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests


@pytest.fixture()
def api(cw_sandbox):  # type: ignore[no-untyped-def]
    sandbox, server = cw_sandbox
    creds = sandbox.credentials
    token = base64.b64encode(f"{creds['company_id']}+{creds['public_key']}:"
                             f"{creds['private_key']}".encode()).decode()
    http = requests.Session()
    http.headers.update({"Authorization": f"Basic {token}", "clientId": creds["client_id"]})
    base = f"{server.url}/v4_6_release/apis/3.0"

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return http.request(method, base + path, timeout=10, **kwargs)

    return call
