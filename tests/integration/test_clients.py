"""The ConnectWise and QuickBooks clients over real HTTP against the sandboxes."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from portal.integrations import connectwise as cw
from portal.integrations import errors, qbo_auth
from portal.integrations.http import new_session
from portal.integrations.quickbooks import QuickBooksClient, escape

pytestmark = pytest.mark.integration
NO_SLEEP = {"sleep": lambda seconds: None}


@pytest.fixture()
def cw_client(cw_sandbox):  # type: ignore[no-untyped-def]
    sandbox, server = cw_sandbox
    creds = sandbox.credentials
    return cw.ConnectWiseClient(new_session(), site=server.url, company_id=creds["company_id"],
                                public_key=creds["public_key"],
                                private_key=creds["private_key"], client_id=creds["client_id"],
                                **NO_SLEEP), server


def test_conditions_builder_quotes_and_escapes():
    assert cw.cond("company/name", "=", 'O"Neil \\ Co') == 'company/name = "O\\"Neil \\\\ Co"'
    assert cw.cond("id", "in", [3, 4]) == "id in (3, 4)"
    assert cw.cond("closedFlag", "=", True) == "closedFlag = true"
    from datetime import date

    assert cw.cond("date", ">=", date(2026, 1, 31)) == "date >= [2026-01-31]"
    with pytest.raises(ValueError):
        cw.cond("name; drop", "=", "x")
    assert cw.all_of(cw.cond("a", "=", 1), "b = 2 or c = 3") == "a = 1 and (b = 2 or c = 3)"


def test_cloud_sites_map_to_their_api_host():
    assert cw.api_url("na.myconnectwise.net") == "https://api-na.myconnectwise.net"
    assert cw.api_url("https://eu.myconnectwise.net/") == "https://api-eu.myconnectwise.net"
    assert cw.api_url("psa.example.com") == "https://psa.example.com"


@pytest.mark.parametrize("forward_only", [False, True])
def test_paging_reaches_every_record(cw_client, forward_only):
    client, _server = cw_client
    every = list(client.iter_all("/company/companies", page_size=7, forward_only=forward_only))
    assert len(every) == client.count("/company/companies")
    assert len({c["id"] for c in every}) == len(every)


def test_conditions_reach_the_server_escaped(cw_client):
    client, _server = cw_client
    found = list(client.iter_all("/company/companies",
                                 conditions=cw.cond("name", "=", "O'Neil Dental")))
    assert [c["name"] for c in found] == ["O'Neil Dental"]


def test_429_is_retried_after_the_servers_delay(cw_client):
    client, server = cw_client
    requests.post(f"{server.url}/_sim/faults", json={"kind": "throttle", "count": 2,
                                                     "path_regex": "system/info"}, timeout=5)
    waits: list[float] = []
    client._sleep = waits.append
    assert client.system_info().version.startswith("v")
    assert waits == [1.0, 1.0]


def test_5xx_is_retried_for_reads_but_not_writes(cw_client):
    client, server = cw_client
    requests.post(f"{server.url}/_sim/faults", json={"kind": "error", "status": 503,
                                                     "count": 1, "path_regex": "system/info"},
                  timeout=5)
    assert client.system_info().is_cloud
    requests.post(f"{server.url}/_sim/faults", json={"kind": "error", "status": 500,
                                                     "count": 1, "method": "POST",
                                                     "path_regex": "accounting/batches"},
                  timeout=5)
    with pytest.raises(errors.Transient):
        client.request("POST", "/finance/accounting/batches", json={})


def test_validation_errors_name_the_field(cw_client):
    client, _server = cw_client
    with pytest.raises(errors.Invalid) as caught:
        client.request("POST", "/finance/accounting/batches", json={})
    assert caught.value.status == 400 and caught.value.code


# ---- QuickBooks ------------------------------------------------------------------------

class StaticTokens:
    """A TokenSource holding one token set, refreshing through intuit-oauth on request."""

    def __init__(self, app: qbo_auth.AppCredentials, tokens: qbo_auth.TokenSet) -> None:
        self.app, self.tokens, self.refreshes = app, tokens, 0

    def access_token(self) -> str:
        return self.tokens.access_token

    def force_refresh(self, rejected: str) -> str:
        self.tokens = qbo_auth.refresh(self.app, self.tokens.refresh_token)
        self.refreshes += 1
        return self.tokens.access_token


@pytest.fixture()
def qbo(qbo_sandbox):  # type: ignore[no-untyped-def]
    _sandbox, server = qbo_sandbox
    redirect = "http://localhost/callback"
    app = qbo_auth.AppCredentials("ABclientTestsApp0000000000000000000000000001", "secret-1",
                                  redirect,
                                  f"{server.url}/.well-known/openid_sandbox_configuration")
    requests.post(f"{server.url}/_sim/apps", json={"client_id": app.client_id,
                                                   "client_secret": app.client_secret,
                                                   "redirect_uris": [redirect]}, timeout=5)
    url = qbo_auth.authorization_url(app, "state-1")
    page = requests.get(url, timeout=5).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    realm = re.findall(r'<option value="([^"]+)"', page)[0]
    answer = requests.post(url.split("?")[0], data={**fields, "realmId": realm,
                                                    "decision": "allow"},
                           allow_redirects=False, timeout=5)
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    token_set = qbo_auth.exchange_code(app, query["code"][0], realm)
    tokens = StaticTokens(app, token_set)
    return QuickBooksClient(new_session(), server.url, realm, tokens, **NO_SLEEP), server


def test_query_escapes_and_pages(qbo):
    client, _server = qbo
    assert escape("O'Neil") == "'O\\'Neil'"
    name = "D'Angelo \\ Sons"
    client.create("Customer", {"DisplayName": name})
    rows = client.query("SELECT * FROM Customer WHERE DisplayName = " + escape(name))
    assert [c["DisplayName"] for c in rows["Customer"]] == [name]
    # QuickBooks' lexer refuses curly quotes (QBO-REF section 3): a clear 4000, not a crash.
    with pytest.raises(errors.Invalid) as curly:
        client.query(f"SELECT * FROM Customer WHERE DisplayName = {escape('O’Neil Dental')}")
    assert curly.value.code == "4000"
    every = list(client.query_all("Customer", page_size=7))
    total = client.query("SELECT count(*) FROM Customer")["totalCount"]
    assert len(every) == total and len({c["Id"] for c in every}) == total


def test_create_read_update_delete(qbo):
    client, _server = qbo
    created = client.create("Customer", {"DisplayName": "Client Test Co"})
    assert created["SyncToken"] == "0"
    read = client.read("Customer", created["Id"])
    updated = client.sparse_update("Customer", {"Id": read["Id"], "SyncToken": read["SyncToken"],
                                                "CompanyName": "Client Test Company"})
    assert updated["CompanyName"] == "Client Test Company" and updated["SyncToken"] == "1"
    with pytest.raises(errors.Invalid) as stale:
        client.sparse_update("Customer", {"Id": read["Id"], "SyncToken": "0",
                                          "CompanyName": "stale"})
    assert stale.value.code == "5010"


def test_requestid_replay_returns_the_first_answer(qbo):
    client, _server = qbo
    first = client.create("Customer", {"DisplayName": "Replay Once"}, request_id="rid-0001")
    again = client.create("Customer", {"DisplayName": "Replay Once"}, request_id="rid-0001")
    assert first["Id"] == again["Id"]
    with pytest.raises(errors.Invalid) as duplicate:
        client.create("Customer", {"DisplayName": "Replay Once"})
    assert duplicate.value.code == "6240"


def test_batch_returns_per_item_faults(qbo):
    client, _server = qbo
    answers = client.batch([
        {"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batch One"}},
        {"bId": "2", "operation": "create", "Customer": {"DisplayName": "Batch One"}}])
    by_id = {a["bId"]: a for a in answers}
    assert by_id["1"]["Customer"]["DisplayName"] == "Batch One"
    assert by_id["2"]["Fault"]["Error"][0]["code"] == "6240"
    with pytest.raises(ValueError):
        client.batch([{}] * 31)


def test_http_200_fault_is_raised(qbo):
    client, server = qbo
    bill = client.query("SELECT * FROM Bill MAXRESULTS 1").get("Bill")
    if not bill:
        vendor = client.query("SELECT * FROM Vendor MAXRESULTS 1")["Vendor"][0]
        account = client.query("SELECT * FROM Account WHERE AccountType = 'Expense' "
                               "MAXRESULTS 1")["Account"][0]
        bill = [client.create("Bill", {
            "VendorRef": {"value": vendor["Id"]},
            "Line": [{"Amount": 10, "DetailType": "AccountBasedExpenseLineDetail",
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}}}]})]
    with pytest.raises(errors.IntegrationError) as caught:
        client.void("Bill", bill[0]["Id"], bill[0]["SyncToken"])
    assert caught.value.status == 200  # HTTP 200 carrying a Fault


def test_429_waits_and_retries(qbo):
    client, server = qbo
    requests.post(f"{server.url}/_sim/faults", json={"kind": "throttle", "count": 2,
                                                     "path_regex": "/companyinfo/"}, timeout=5)
    waits: list[float] = []
    client._sleep = waits.append
    assert client.company_info()["CompanyName"] == "Northwind Managed IT"
    assert len(waits) == 2


def test_gateway_401_refreshes_once_then_gives_up(qbo):
    client, server = qbo
    requests.post(f"{server.url}/_sim/faults", json={"kind": "token_expire", "count": 1,
                                                     "path_regex": "/preferences"}, timeout=5)
    assert "AccountingInfoPrefs" in client.preferences()
    assert client.tokens.refreshes == 1
    requests.post(f"{server.url}/_sim/faults", json={"kind": "error", "status": 401,
                                                     "count": 2, "path_regex": "/preferences"},
                  timeout=5)
    with pytest.raises(errors.AuthError):
        client.preferences()
