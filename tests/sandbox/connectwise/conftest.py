"""Fixtures for the ConnectWise sandbox tests: the demo data, a live sandbox, and a small client."""

from __future__ import annotations

import base64
from typing import Any, Iterator

import pytest
import requests

from portal.sandbox.common import LiveServer
from portal.sandbox.connectwise import ConnectWiseSandbox, serve
from portal.sandbox.connectwise import switches as sim_switches
from portal.sandbox.demo_data import generate


@pytest.fixture(scope="session")
def demo() -> dict[str, Any]:
    """The default demo data set, generated once (loading copies it)."""
    return generate()


class Client:
    """requests against the live sandbox, with the demo member's credentials by default."""

    def __init__(self, server: LiveServer, sandbox: ConnectWiseSandbox) -> None:
        self.server = server
        self.sandbox = sandbox
        creds = sandbox.credentials
        self.base = f"{server.url}/v4_6_release/apis/3.0/"
        self.creds = creds
        self.session = requests.Session()
        self.headers = self.auth_headers(creds["company_id"], creds["public_key"],
                                         creds["private_key"])
        self.headers["clientId"] = creds["client_id"]

    @staticmethod
    def auth_headers(company: str, public: str, private: str) -> dict[str, str]:
        token = base64.b64encode(f"{company}+{public}:{private}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                **kwargs: Any) -> requests.Response:
        merged = dict(self.headers) if headers is None else headers
        kwargs.setdefault("timeout", 10)
        url = path if path.startswith("http") else self.base + path.lstrip("/")
        return self.session.request(method, url, headers=merged, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def sim(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.server.url}/_sim/{path}", timeout=10,
                                    **kwargs)


@pytest.fixture(scope="session")
def _live(demo: dict[str, Any]) -> Iterator[tuple[ConnectWiseSandbox, LiveServer]]:
    """One live sandbox for the session; each test gets it reset (starting servers is slow)."""
    sandbox = ConnectWiseSandbox(data=demo["connectwise"], seed=7)
    server = serve(sandbox)
    yield sandbox, server
    server.stop()
    sandbox.close()


@pytest.fixture
def sandbox(_live: tuple[ConnectWiseSandbox, LiveServer]) -> ConnectWiseSandbox:
    """The live sandbox, back at the demo data with default switches and no faults."""
    sandbox = _live[0]
    sandbox.reset()
    sandbox.switches.clear()
    sandbox.switches.update(sim_switches.DEFAULTS)
    sandbox.faults.clear(seed=7)
    sandbox.log.clear()
    return sandbox


@pytest.fixture
def cw(sandbox: ConnectWiseSandbox, _live: tuple[ConnectWiseSandbox, LiveServer]) -> Iterator[Client]:
    """A client for the live sandbox over real HTTP."""
    client = Client(_live[1], sandbox)
    try:
        yield client
    finally:
        client.session.close()


@pytest.fixture(scope="session")
def client_cls() -> type[Client]:
    """The client class, for fixtures that start their own sandbox."""
    return Client
