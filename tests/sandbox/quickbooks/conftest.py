"""Fixtures for the QuickBooks sandbox tests: live servers, an OAuth-connected client, sample files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from portal.sandbox.common import SimClock
from portal.sandbox.quickbooks import QuickBooksSandbox, serve

DATA = Path(__file__).parent / "data"
REALM = "9130355377384946"
APP = {"client_id": "test-client", "client_secret": "test-secret",
       "redirect_uris": ["http://127.0.0.1:5000/setup/quickbooks/callback"]}
BASE_ENTITIES: dict[str, list[dict[str, Any]]] = {
    "Account": [{"Id": "1", "Name": "Services", "AccountType": "Income"},
                {"Id": "2", "Name": "Undeposited Funds", "AccountType": "Other Current Asset",
                 "AccountSubType": "UndepositedFunds"},
                {"Id": "3", "Name": "Accounts Receivable (A/R)", "AccountType": "Accounts Receivable"},
                {"Id": "35", "Name": "Checking", "AccountType": "Bank"},
                {"Id": "39", "Name": "Opening Bal Equity", "AccountType": "Equity"},
                {"Id": "44", "Name": "Notes Payable", "AccountType": "Long Term Liability"},
                {"Id": "60", "Name": "Office Expenses", "AccountType": "Expense"}],
    "Term": [{"Id": "3", "Name": "Net 30", "DueDays": 30}],
    "Item": [{"Id": "1", "Name": "Services", "Type": "Service", "IncomeAccountRef": {"value": "1"}}],
    "Customer": [{"Id": "1", "DisplayName": "Amy's Bird Sanctuary"}],
    "Vendor": [{"Id": "50", "DisplayName": "Books by Bessie"}],
}


def sample(name: str) -> Any:
    """A reference sample with its `_` annotations removed."""
    data = json.loads((DATA / name).read_text())
    return strip_notes(data)


def strip_notes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_notes(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [strip_notes(v) for v in value]
    return value


def company(entities: dict[str, list[dict[str, Any]]] | None = None, *, base: bool = True,
            realm: str = REALM, **settings: Any) -> dict[str, Any]:
    """A company for a data set: the base lists plus the given entities."""
    merged_entities = {k: [dict(o) for o in v] for k, v in (BASE_ENTITIES.items() if base else [])}
    for name, objs in (entities or {}).items():
        known = {o["Id"] for o in merged_entities.get(name, [])}
        merged_entities.setdefault(name, []).extend(o for o in objs if o["Id"] not in known)
        replaced = {o["Id"]: o for o in objs}
        merged_entities[name] = [replaced.get(o["Id"], o) for o in merged_entities[name]]
    return {"realmId": realm, "settings": {"country": "US", "ast": False, **settings},
            "CompanyInfo": {"CompanyName": "Test Company"}, "entities": merged_entities}


class Client:
    """A connected QBO client over real HTTP: bearer token, realm, JSON helpers."""

    def __init__(self, sandbox: QuickBooksSandbox, url: str, realm: str) -> None:
        self.sandbox, self.url, self.realm = sandbox, url, realm
        self.session = requests.Session()
        self.tokens = connect(url, realm)
        self.session.headers.update({"Authorization": f"Bearer {self.tokens['access_token']}",
                                     "Accept": "application/json"})

    def path(self, rest: str) -> str:
        return f"{self.url}/v3/company/{self.realm}/{rest}"

    def get(self, rest: str, **kw: Any) -> requests.Response:
        return self.session.get(self.path(rest), timeout=10, **kw)

    def post(self, rest: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(self.path(rest), json=body, timeout=10, **kw)

    def query(self, text: str) -> requests.Response:
        return self.get("query", params={"query": text, "minorversion": "75"})


def consent(url: str, auth_url: str, realm: str, decision: str = "allow") -> dict[str, list[str]]:
    """Do what a person does on the consent page: pick the company and click a button."""
    page = requests.get(auth_url, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields.update({"realmId": realm, "decision": decision})
    answer = requests.post(auth_url, data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return parse_qs(urlparse(answer.headers["Location"]).query)


def connect(url: str, realm: str) -> dict[str, Any]:
    redirect = APP["redirect_uris"][0]
    auth = (f"{url}/connect/oauth2?client_id={APP['client_id']}&response_type=code"
            f"&scope=com.intuit.quickbooks.accounting&redirect_uri={redirect}&state=xyz")
    params = consent(url, auth, realm)
    answer = requests.post(f"{url}/oauth2/v1/tokens/bearer", timeout=10,
                           auth=(APP["client_id"], APP["client_secret"]),
                           data={"grant_type": "authorization_code", "code": params["code"][0],
                                 "redirect_uri": redirect})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def launch() -> Iterator[Callable[..., Client]]:
    """Start sandboxes on live ports; returns a connected client for the first company."""
    servers = []

    def start(*companies: dict[str, Any], switches: dict[str, Any] | None = None,
              clock: SimClock | None = None, **kw: Any) -> Client:
        data = {"apps": [APP], "companies": list(companies) or [company()]}
        sandbox = QuickBooksSandbox(data=data, switches=switches, clock=clock, **kw)
        server = serve(sandbox)
        servers.append(server)
        return Client(sandbox, server.url, data["companies"][0]["realmId"])

    yield start
    for server in servers:
        server.stop()


def compare(actual: Any, expected: Any, *, ignore: set[str] = frozenset(), extra_ok: set[str] = frozenset(),
            subset: bool = False, path: str = "") -> None:
    """Field-for-field: same keys (or a subset for excerpts) and equal values, except `ignore` paths.

    `ignore` names paths (dotted, list positions as *) whose value is per-run; `extra_ok` names keys
    newer API versions add that the old sample lacks.
    """
    here = path or "<root>"
    if path in ignore:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{here}: expected an object, got {actual!r}"
        for key, value in expected.items():
            child = f"{path}.{key}" if path else key
            if child in ignore:
                continue
            assert key in actual, f"{child} missing"
            compare(actual[key], value, ignore=ignore, extra_ok=extra_ok, subset=subset, path=child)
        if not subset:
            extra = {k for k in actual if k not in expected and k not in extra_ok
                     and (f"{path}.{k}" if path else k) not in ignore}
            assert not extra, f"{here}: unexpected keys {sorted(extra)}"
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), \
            f"{here}: expected {len(expected)} items, got {actual!r}"
        for item_actual, item_expected in zip(actual, expected):
            compare(item_actual, item_expected, ignore=ignore, extra_ok=extra_ok, subset=subset,
                    path=f"{path}.*")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert isinstance(actual, (int, float)) and abs(actual - expected) < 1e-9, \
            f"{here}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{here}: {actual!r} != {expected!r}"
