"""Writes, validation, requestid, batch, throttling, faults, webhooks, PDF, deep links, persistence."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from conftest import REALM, company, sample
from portal.sandbox.common import LiveServer, SimClock
from portal.sandbox.quickbooks import QuickBooksSandbox
from portal.sandbox.quickbooks.webhooks import sign

LINE = [{"DetailType": "SalesItemLineDetail", "Amount": 100.0, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]


def _invoice(doc: str | None = None, **extra):
    body = {"CustomerRef": {"value": "1"}, "Line": LINE, **extra}
    if doc:
        body["DocNumber"] = doc
    return body


def _code(answer) -> str:
    return answer.json()["Fault"]["Error"][0]["code"]


def test_validation_codes(launch):
    qbo = launch(company({"Customer": [{"Id": "2", "DisplayName": "Old Customer", "Active": False}]}))
    assert _code(qbo.post("vendor", {"DisplayName": "amy's bird sanctuary"})) == "6240"
    assert _code(qbo.post("employee", {"GivenName": "Books", "FamilyName": "by Bessie",
                                       "DisplayName": "Books by Bessie"})) == "6240"
    assert qbo.post("invoice", _invoice("INV-1")).status_code == 200
    assert _code(qbo.post("invoice", _invoice("INV-1"))) == "6140"
    assert qbo.post("invoice?include=allowduplicatedocnum", _invoice("INV-1")).status_code == 200
    long = qbo.post("invoice", _invoice("X" * 22))
    assert _code(long) == "2050" and "Max:21" in long.json()["Fault"]["Error"][0]["Detail"]
    assert qbo.post("invoice", _invoice("X" * 21)).status_code == 200
    missing = qbo.post("invoice", {"Line": LINE})
    assert _code(missing) == "2020" and missing.json()["Fault"]["Error"][0]["element"] == "CustomerRef"
    assert _code(qbo.get("invoice/99999")) == "610"
    assert _code(qbo.post("invoice", {**_invoice(), "CustomerRef": {"value": "2"}})) == "610"
    bad_ref = qbo.post("invoice", {**_invoice(), "CustomerRef": {"value": "777"}})
    assert _code(bad_ref) == "2500"
    je = {"Line": [{"DetailType": "JournalEntryLineDetail", "Amount": 10.0,
                    "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "39"}}},
                   {"DetailType": "JournalEntryLineDetail", "Amount": 9.0,
                    "JournalEntryLineDetail": {"PostingType": "Credit", "AccountRef": {"value": "44"}}}]}
    unbalanced = qbo.post("journalentry", je)
    assert _code(unbalanced) == "6000" and unbalanced.status_code == 400
    assert _code(qbo.post("journalentry", {"Line": [{**je["Line"][0], "JournalEntryLineDetail": {
        "PostingType": "Debit", "AccountRef": {"value": "4040"}}}, je["Line"][1]]})) == "2500"
    qbo.sandbox.switches["sim.qbo_je_unbalanced_code"] = "2300"
    assert _code(qbo.post("journalentry", je)) == "2300"
    assert _code(qbo.post("invoice", {**_invoice(), "Line": [{**LINE[0], "SalesItemLineDetail": {
        "ItemRef": {"value": "1"}, "TaxCodeRef": {"value": "GST"}}}]})) == "6100"


def test_update_rules_sync_token_and_lines(launch):
    qbo = launch(company())
    inv = qbo.post("invoice", _invoice(Line=LINE + [{**LINE[0], "Amount": 50.0}])).json()["Invoice"]
    assert inv["TotalAmt"] == 150.0 and [l.get("Id") for l in inv["Line"]] == ["1", "2", None]
    assert _code(qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "7", "sparse": True})) == "5010"
    sparse = qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True,
                                  "Line": [inv["Line"][1]]}).json()["Invoice"]
    assert sparse["TotalAmt"] == 50.0 and sparse["SyncToken"] == "1" and sparse["Line"][0]["Id"] == "2"
    full = qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "1", "CustomerRef": {"value": "1"},
                                "Line": LINE}).json()["Invoice"]
    assert full["SyncToken"] == "2" and "CustomerMemo" not in full and full["Line"][0]["Id"] == "3"
    qbo.sandbox.faults.add({"kind": "stale", "count": 1, "path_regex": "/invoice$"})
    assert _code(qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "2", "sparse": True,
                                      "PrivateNote": "x"})) == "5010"
    acct = qbo.post("account", {"Id": "60", "SyncToken": "0", "sparse": True, "Active": False}).json()["Account"]
    assert acct["Name"] == "Office Expenses (deleted)"
    job = qbo.post("customer", {"DisplayName": "Site 2", "ParentRef": {"value": "1"}}).json()["Customer"]
    assert job["FullyQualifiedName"] == "Amy's Bird Sanctuary:Site 2" and job["Job"] is True
    found = qbo.query("select * from Customer where FullyQualifiedName = 'Amy''s Bird Sanctuary:Site 2'")
    assert found.status_code == 400
    found = qbo.query("select * from Customer where FullyQualifiedName = 'Amy\\'s Bird Sanctuary:Site 2'")
    assert found.json()["QueryResponse"]["Customer"][0]["Id"] == job["Id"]
    item = qbo.post("item", {"Name": "Laptop", "Type": "Inventory", "IncomeAccountRef": {"value": "1"},
                             "ExpenseAccountRef": {"value": "44"}})
    assert _code(item) == "2020"
    item = qbo.post("item", {"Name": "Laptop", "Type": "Inventory", "IncomeAccountRef": {"value": "1"},
                             "ExpenseAccountRef": {"value": "44"}, "AssetAccountRef": {"value": "2"},
                             "TrackQtyOnHand": True, "QtyOnHand": 5, "InvStartDate": "2024-01-01"})
    assert item.status_code == 200
    category = qbo.post("item", {"Name": "Hardware", "Type": "Category"}).json()["Item"]
    laptop = qbo.post("item", {"Name": "Laptop", "Type": "NonInventory", "IncomeAccountRef": {"value": "1"},
                               "ParentRef": {"value": category["Id"]}})
    assert _code(laptop) == "6240"
    sub = qbo.post("item", {"Name": "Tablet", "Type": "NonInventory", "IncomeAccountRef": {"value": "1"},
                            "ParentRef": {"value": category["Id"]}}).json()["Item"]
    assert sub["FullyQualifiedName"] == "Hardware:Tablet" and sub["SubItem"] is True


def test_requestid_replay_and_broken_switch(launch):
    qbo = launch(company(), switches={"sim.qbo_requestid_window_seconds": 100})
    first = qbo.post("invoice?requestid=abc-1", _invoice("R-1"))
    again = qbo.post("invoice?requestid=abc-1", _invoice("R-1"))
    assert again.json() == first.json()
    assert qbo.query("select count(*) from Invoice").json()["QueryResponse"]["totalCount"] == 1
    assert _code(qbo.post("invoice?requestid=" + "x" * 51, _invoice())) == "2130"
    qbo.sandbox.clock.advance(101)
    assert _code(qbo.post("invoice?requestid=abc-1", _invoice("R-1"))) == "6140"
    qbo.sandbox.switches["sim.qbo_requestid_broken"] = True
    qbo.post("invoice?requestid=abc-2", _invoice())
    qbo.post("invoice?requestid=abc-2", _invoice())
    assert qbo.query("select count(*) from Invoice").json()["QueryResponse"]["totalCount"] == 3


def test_drop_after_commit_leaves_the_object(launch):
    qbo = launch(company())
    qbo.sandbox.faults.add({"kind": "drop_after_commit", "count": 1, "method": "POST", "path_regex": "/invoice"})
    with pytest.raises(requests.ConnectionError):
        qbo.post("invoice?requestid=drop-1", _invoice("D-1"))
    rows = qbo.query("select * from Invoice where DocNumber = 'D-1'").json()["QueryResponse"]["Invoice"]
    assert len(rows) == 1
    replay = qbo.post("invoice?requestid=drop-1", _invoice("D-1"))
    assert replay.json()["Invoice"]["Id"] == rows[0]["Id"]


def test_a_queued_write_lands_late(launch):
    import threading

    qbo = launch(company())
    qbo.sandbox.faults.add({"kind": "queued", "count": 1, "latency_ms": 800, "method": "POST",
                            "path_regex": "/invoice"})
    sender = threading.Thread(target=lambda: qbo.post("invoice", _invoice("Q-1")))
    sender.start()
    time.sleep(0.3)
    assert qbo.query("select * from Invoice where DocNumber = 'Q-1'").json()["QueryResponse"] == {}
    sender.join(timeout=10)
    assert len(qbo.query("select * from Invoice where DocNumber = 'Q-1'").json()["QueryResponse"]["Invoice"]) == 1


def test_error_timeout_latency_and_token_faults(launch):
    qbo = launch(company())
    qbo.sandbox.faults.add({"kind": "error", "count": 1, "status": 503, "path_regex": "/preferences"})
    answer = qbo.get("preferences")
    assert answer.status_code == 503 and answer.json()["Fault"]["type"] == "SystemFault"
    qbo.sandbox.faults.add({"kind": "timeout", "count": 1, "latency_ms": 400, "path_regex": "/invoice"})
    with pytest.raises(requests.RequestException):
        qbo.session.post(qbo.path("invoice"), json=_invoice("T-1"), timeout=0.2)
    time.sleep(0.3)
    assert "QueryResponse" in qbo.query("select * from Invoice").json()
    assert qbo.query("select * from Invoice where DocNumber = 'T-1'").json()["QueryResponse"] == {}
    qbo.sandbox.faults.add({"kind": "latency", "count": 1, "latency_ms": 150})
    started = time.monotonic()
    qbo.get("preferences")
    assert time.monotonic() - started >= 0.15
    qbo.sandbox.faults.add({"kind": "token_expire", "count": 1})
    assert qbo.get("preferences").status_code == 401
    qbo.sandbox.faults.add({"kind": "revoke", "count": 1, "path_regex": "/preferences"})
    refreshed = requests.post(f"{qbo.url}/oauth2/v1/tokens/bearer", auth=("test-client", "test-secret"),
                              data={"grant_type": "refresh_token", "refresh_token": qbo.tokens["refresh_token"]},
                              timeout=5)
    assert refreshed.status_code == 200
    qbo.session.headers["Authorization"] = "Bearer " + refreshed.json()["access_token"]
    qbo.get("preferences")
    again = requests.post(f"{qbo.url}/oauth2/v1/tokens/bearer", auth=("test-client", "test-secret"),
                          data={"grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]},
                          timeout=5)
    assert again.json() == sample("token_error_invalid_grant.json")


def test_batch_mixed_faults_and_limits(launch):
    qbo = launch(company())
    qbo.sandbox.faults.add({"kind": "error", "count": 1, "path_regex": "/batch/item/customer$"})
    items = [{"bId": "1", "operation": "create", "Invoice": _invoice("B-1")},
             {"bId": "2", "operation": "create", "Invoice": _invoice("B-1")},
             {"bId": "3", "operation": "create", "Customer": {"DisplayName": "New One"}},
             {"bId": "4", "operation": "create", "Vendor": {"DisplayName": "Amy's Bird Sanctuary"}},
             {"bId": "5", "Query": "select * from Item"},
             {"bId": "6", "Query": "select * fro Item"}]
    answer = qbo.post("batch", {"BatchItemRequest": items})
    assert answer.status_code == 200
    by_bid = {item["bId"]: item for item in answer.json()["BatchItemResponse"]}
    assert by_bid["1"]["Invoice"]["DocNumber"] == "B-1"
    assert by_bid["2"]["Fault"]["Error"][0]["code"] == "6140"
    assert by_bid["3"]["Fault"]["type"] == "SystemFault"
    assert by_bid["4"]["Fault"]["Error"][0]["code"] == "6240"
    assert by_bid["5"]["QueryResponse"]["Item"][0]["Name"] == "Services"
    assert by_bid["6"]["Fault"]["Error"][0]["code"] == "4000"
    inv = by_bid["1"]["Invoice"]
    voided = qbo.post("batch", {"BatchItemRequest": [
        {"bId": "v", "operation": "update", "optionsData": "void", "Invoice": {"Id": inv["Id"], "SyncToken": "0"}},
        {"bId": "d", "operation": "delete", "Invoice": {"Id": "4242", "SyncToken": "0"}}]}).json()
    assert voided["BatchItemResponse"][0]["Invoice"]["PrivateNote"] == "Voided"
    assert voided["BatchItemResponse"][1]["Fault"]["Error"][0]["code"] == "610"
    too_many = qbo.post("batch", {"BatchItemRequest": [{"bId": str(i), "Query": "select * from Item"}
                                                       for i in range(31)]})
    assert too_many.status_code == 400 and _code(too_many) == "1040"


def test_throttling_on_a_fast_clock(launch):
    clock = SimClock(speed=1.0)
    clock.freeze()
    qbo = launch(company(), clock=clock, switches={"sim.qbo_retry_after_header": True})
    for _ in range(40):
        assert qbo.post("batch", {"BatchItemRequest": [{"bId": "1", "Query": "select * from Item"}]}).status_code == 200
    limited = qbo.post("batch", {"BatchItemRequest": [{"bId": "1", "Query": "select * from Item"}]})
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert limited.json() == sample("fault_429_throttle.json")
    for _ in range(460):
        assert qbo.get("preferences").status_code == 200
    assert qbo.get("preferences").status_code == 429
    clock.advance(61)
    assert qbo.get("preferences").status_code == 200
    qbo.sandbox.faults.add({"kind": "throttle", "count": 2})
    assert [qbo.get("preferences").status_code for _ in range(3)] == [429, 429, 200]
    qbo.sandbox.switches["sim.qbo_rate_per_second"] = 2
    clock.advance(61)
    assert [qbo.get("preferences").status_code for _ in range(3)] == [200, 200, 429]
    clock.advance(1.5)
    assert qbo.get("preferences").status_code == 200


def test_concurrency_limit(launch):
    qbo = launch(company())
    qbo.sandbox.faults.add({"kind": "latency", "latency_ms": 400, "path_regex": "/preferences"})
    results: list[int] = []

    def call() -> None:
        results.append(requests.get(qbo.path("preferences"), headers=dict(qbo.session.headers), timeout=5).status_code)
    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(429) >= 1 and results.count(200) >= 10


def test_ast_tax_and_non_us(launch):
    ny = {"Id": "3", "DisplayName": "NY Shop", "ShipAddr": {"Line1": "1 Main", "CountrySubDivisionCode": "NY"}}
    taxable = {"Id": "2", "Name": "Hardware", "Type": "NonInventory", "IncomeAccountRef": {"value": "1"},
               "Taxable": True}
    qbo = launch(company({"Customer": [ny], "Item": [taxable]}, ast=True))
    assert qbo.get("preferences").json()["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is True
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 200.0, "SalesItemLineDetail": {"ItemRef": {"value": "2"}}}]
    inv = qbo.post("invoice", {"CustomerRef": {"value": "3"}, "Line": line}).json()["Invoice"]
    assert inv["TxnTaxDetail"]["TotalTax"] == 17.75 and inv["TotalAmt"] == 217.75
    given = qbo.post("invoice", {"CustomerRef": {"value": "3"}, "Line": line,
                                 "TxnTaxDetail": {"TotalTax": 10.0}}).json()["Invoice"]
    assert given["TxnTaxDetail"]["TotalTax"] == 10.0 and given["TotalAmt"] == 210.0
    assert round(sum(t["Amount"] for t in given["TxnTaxDetail"]["TaxLine"]), 2) == 10.0


def test_non_us_line_tax(launch):
    ca = company({"TaxRate": [{"Id": "7", "Name": "GST", "RateValue": 5}, {"Id": "8", "Name": "PST", "RateValue": 7}],
                  "TaxCode": [{"Id": "9", "Name": "GST/PST", "SalesTaxRateList": {"TaxRateDetail": [
                      {"TaxRateRef": {"value": "7"}}, {"TaxRateRef": {"value": "8"}}]}}]},
                 country="CA", home_currency="CAD")
    qbo = launch(ca)
    assert qbo.get("companyinfo/" + REALM).json()["CompanyInfo"]["CompanyAddr"]["Country"] == "CAN"
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 100.0,
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "TaxCodeRef": {"value": "9"}}}]
    inv = qbo.post("invoice", {"CustomerRef": {"value": "1"}, "Line": line}).json()["Invoice"]
    assert inv["TxnTaxDetail"]["TotalTax"] == 12.0 and inv["TotalAmt"] == 112.0
    assert inv["CurrencyRef"]["value"] == "CAD"


@pytest.mark.parametrize("honours", [True, False])
def test_us_manual_tax_keeps_a_supplied_total_per_switch(launch, honours):
    rates = {"TaxRate": [{"Id": "7", "Name": "State", "RateValue": 4},
                         {"Id": "8", "Name": "City", "RateValue": 4.5}],
             "TaxCode": [{"Id": "9", "Name": "City Combined", "SalesTaxRateList": {
                 "TaxRateDetail": [{"TaxRateRef": {"value": "7"}}, {"TaxRateRef": {"value": "8"}}]}}],
             "Item": [{"Id": "2", "Name": "Hardware", "Type": "NonInventory",
                       "IncomeAccountRef": {"value": "1"}, "Taxable": True}]}
    qbo = launch(company(rates), switches={"sim.qbo_us_manual_honours_total_tax": honours})
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 100.0, "SalesItemLineDetail": {
        "ItemRef": {"value": "2"}, "TaxCodeRef": {"value": "TAX"}}}]
    inv = qbo.post("invoice", {"CustomerRef": {"value": "1"}, "Line": line, "TxnTaxDetail": {
        "TxnTaxCodeRef": {"value": "9"}, "TotalTax": 8.49}}).json()["Invoice"]
    assert inv["TxnTaxDetail"]["TotalTax"] == (8.49 if honours else 8.5)
    assert inv["TotalAmt"] == (108.49 if honours else 108.5)


@pytest.mark.parametrize("honours", [True, False])
def test_non_us_tax_lines_are_kept_per_switch(launch, honours):
    ca = company({"TaxRate": [{"Id": "7", "Name": "GST", "RateValue": 5}],
                  "TaxCode": [{"Id": "9", "Name": "GST", "SalesTaxRateList": {"TaxRateDetail": [
                      {"TaxRateRef": {"value": "7"}}]}}]}, country="CA", home_currency="CAD")
    qbo = launch(ca, switches={"sim.qbo_nonus_honours_tax_lines": honours})
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 100.0,
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "TaxCodeRef": {"value": "9"}}}]
    inv = qbo.post("invoice", {"CustomerRef": {"value": "1"}, "Line": line,
                               "GlobalTaxCalculation": "TaxExcluded", "TxnTaxDetail": {
                                   "TaxLine": [{"DetailType": "TaxLineDetail", "Amount": 4.99,
                                                "TaxLineDetail": {"TaxRateRef": {"value": "7"},
                                                                  "PercentBased": True,
                                                                  "NetAmountTaxable": 100.0}}]}}
                   ).json()["Invoice"]
    assert inv["TxnTaxDetail"]["TotalTax"] == (4.99 if honours else 5.0)


def test_webhooks_are_signed(launch):
    received: list[tuple[bytes, str]] = []

    def receiver(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        received.append((environ["wsgi.input"].read(length), environ.get("HTTP_INTUIT_SIGNATURE", "")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    hook = LiveServer(receiver).start()
    try:
        qbo = launch(company())
        requests.post(f"{qbo.url}/_sim/webhooks", json={"url": hook.url + "/hook", "verifier_token": "vt"}, timeout=5)
        inv = qbo.post("invoice", _invoice()).json()["Invoice"]
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        body, signature = received[0]
        assert sign(body, "vt") == signature
        events = json.loads(body)
        assert events[0]["type"] == "qbo.invoice.created.v1" and events[0]["intuitentityid"] == inv["Id"]
        assert set(events[0]) == set(sample("webhook_cloudevents_payload.json")[0])
        qbo.sandbox.switches["sim.qbo_webhook_format"] = "legacy"
        fired = requests.post(f"{qbo.url}/_sim/webhooks/fire", json={"entity": "Payment", "id": "5",
                                                                      "operation": "Create"}, timeout=5)
        assert fired.status_code == 200
        legacy = json.loads(received[-1][0])
        assert legacy["eventNotifications"][0]["dataChangeEvent"]["entities"][0]["name"] == "Payment"
        assert set(legacy["eventNotifications"][0]) == set(sample("webhook_legacy_payload.json")["eventNotifications"][0])
    finally:
        hook.stop()


@pytest.mark.parametrize("vector", sample("webhook_signature_vectors_computed.json")["vectors"]
                         + [sample("webhook_signature_vector.json")])
def test_signature_vectors(vector):
    valid = sign(vector["raw_body"].encode(), vector["verifier_token"]) == vector["intuit-signature"]
    assert valid is vector.get("expect_valid", True)


def test_send_pdf_deep_link_cdc_and_outbox(launch):
    qbo = launch(company({"Customer": [{"Id": "1", "DisplayName": "Amy's Bird Sanctuary",
                                        "PrimaryEmailAddr": {"Address": "amy@example.com"}}]}))
    inv = qbo.post("invoice", _invoice("P-1")).json()["Invoice"]
    for _ in range(2):
        assert qbo.post(f"invoice/{inv['Id']}/send").json()["Invoice"]["EmailStatus"] == "EmailSent"
    outbox = requests.get(f"{qbo.url}/_sim/outbox", timeout=5).json()["messages"]
    assert [m["to"] for m in outbox] == ["amy@example.com"] * 2
    pdf = qbo.get(f"invoice/{inv['Id']}/pdf", headers={"Accept": "application/pdf"})
    assert pdf.headers["Content-Type"] == "application/pdf"
    data = pdf.content
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[xref:xref + 4] == b"xref"
    page = requests.get(f"{qbo.url}/app/invoice", params={"txnId": inv["Id"]}, timeout=5)
    assert page.status_code == 200 and "P-1" in page.text and "<pre>" in page.text
    assert requests.get(f"{qbo.url}/app/invoice", params={"txnId": "999"}, timeout=5).status_code == 404
    cdc = qbo.get("cdc", params={"entities": "Invoice,Payment", "changedSince": "2020-01-01T00:00:00-07:00"}).json()
    assert cdc["CDCResponse"][0]["QueryResponse"][0]["Invoice"][0]["Id"] == inv["Id"]
    qbo.sandbox.clock.advance(10)
    since = qbo.sandbox.clock.utcnow().isoformat()
    empty = qbo.get("cdc", params={"entities": "Invoice", "changedSince": since}).json()
    assert empty["CDCResponse"] == sample("cdc_empty_response.json")["CDCResponse"]
    qbo.sandbox.clock.advance(1)
    qbo.post("invoice?operation=delete", {"Id": inv["Id"], "SyncToken": inv["SyncToken"]})
    gone = qbo.get("cdc", params={"entities": "Invoice", "changedSince": since}).json()
    assert gone["CDCResponse"][0]["QueryResponse"][0]["Invoice"][0]["status"] == "Deleted"


def test_control_switches_state_reset_and_persistence(launch, tmp_path):
    qbo = launch(company())
    base = f"{qbo.url}/_sim"
    assert requests.get(base + "/", timeout=5).status_code == 200
    assert requests.post(base + "/switches", json={"sim.qbo_refresh_rotation": "every"}, timeout=5).json()[
        "sim.qbo_refresh_rotation"] == "every"
    assert requests.post(base + "/switches", json={"sim.nope": 1}, timeout=5).status_code == 400
    qbo.post("invoice", _invoice("S-1"))
    state = requests.get(base + "/state", params={"realmId": REALM}, timeout=5).json()
    assert any(i.get("DocNumber") == "S-1" for i in state["companies"][0]["entities"]["Invoice"])
    requests.post(base + "/reset", timeout=5)
    assert qbo.sandbox.realms[REALM].count("Invoice") == 0
    path = tmp_path / "qbo.json"
    first = QuickBooksSandbox(data={"companies": [company()]}, state_path=path,
                              switches={"sim.qbo_save_debounce_seconds": 0.01})
    with first.lock:
        ctx = first.context(first.realms[REALM])
        from portal.sandbox.quickbooks import entities
        created = entities.create(ctx, "Invoice", _invoice("KEEP"))
    first.after_write(ctx)
    time.sleep(0.3)
    second = QuickBooksSandbox(data={"companies": [company()]}, state_path=path)
    kept = second.realms[REALM].get("Invoice", created["Id"])
    assert kept["DocNumber"] == "KEEP" and second.realms[REALM].new_id() != created["Id"]


def test_dump_and_load_round_trip_keeps_balances():
    data = {"companies": [company({"Customer": [{"Id": "1", "DisplayName": "Amy's Bird Sanctuary", "Balance": 7}],
                                   "Invoice": [{"Id": "10", "CustomerRef": {"value": "1"}, "Line": LINE}],
                                   "Payment": [{"Id": "11", "CustomerRef": {"value": "1"}, "TotalAmt": 30,
                                                "Line": [{"Amount": 30, "LinkedTxn": [{"TxnId": "10",
                                                                                       "TxnType": "Invoice"}]}]}]})]}
    first = QuickBooksSandbox(data=data)
    realm = first.realms[REALM]
    assert realm.get("Customer", "1")["Balance"] == 77.0
    assert realm.get("Invoice", "10")["Balance"] == 70.0 and realm.get("Invoice", "10")["SyncToken"] == "0"
    second = QuickBooksSandbox(data=first.dump())
    again = second.realms[REALM]
    assert again.get("Customer", "1")["Balance"] == 77.0
    assert again.get("Invoice", "10") == realm.get("Invoice", "10")
    assert int(again.new_id()) > 11


def test_vendor_credit_is_a_bill_without_terms(launch):
    """SPEC §8.2/§9.2 post refunds and returns as VendorCredit: like a Bill (DocNumber per
    vendor, full updates only), no DueDate; delete yes, void no (QBO-REF §5)."""
    qbo = launch(company({"Vendor": [{"Id": "51", "DisplayName": "Second Vendor"}]}))
    line = [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 12.5,
             "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "60"}}}]
    body = {"VendorRef": {"value": "50"}, "Line": line, "DocNumber": "RMA-1",
            "TxnDate": "2026-02-03"}
    credit = qbo.post("vendorcredit", body).json()["VendorCredit"]
    assert (credit["TotalAmt"], credit["Balance"], credit["VendorRef"]["name"]) == (
        12.5, 12.5, "Books by Bessie")
    assert "DueDate" not in credit and credit["Line"][0]["Id"] == "1"
    assert _code(qbo.post("vendorcredit", body)) == "6140"
    other = qbo.post("vendorcredit", {**body, "VendorRef": {"value": "51"}})
    assert other.status_code == 200
    found = qbo.query("select * from VendorCredit where DocNumber = 'RMA-1'").json()
    assert len(found["QueryResponse"]["VendorCredit"]) == 2
    assert _code(qbo.post("vendorcredit", {"Line": line})) == "2020"
    assert qbo.post("vendorcredit?operation=void", {"Id": credit["Id"],
                                                   "SyncToken": "0"}).status_code == 400
    deleted = qbo.post("vendorcredit?operation=delete", {"Id": credit["Id"], "SyncToken": "0"})
    assert deleted.json()["VendorCredit"]["status"] == "Deleted"


def test_invoice_link_only_with_online_payment_an_email_and_the_switch(launch):
    """[QBO-REF] 14.1: InvoiceLink is read-only, answered with ?include=invoiceLink only when
    online payment is on for the invoice and the customer has an email."""
    customers = {"Customer": [{"Id": "1", "DisplayName": "Amy's Bird Sanctuary",
                               "PrimaryEmailAddr": {"Address": "amy@example.com"}},
                              {"Id": "2", "DisplayName": "No Mail Ltd"}]}
    qbo = launch(company(customers))
    paid_online = qbo.post("invoice", _invoice("L-1", AllowOnlineCreditCardPayment=True)) \
        .json()["Invoice"]
    offline = qbo.post("invoice", _invoice("L-2")).json()["Invoice"]
    no_mail = qbo.post("invoice", {**_invoice("L-3", AllowOnlineACHPayment=True),
                                   "CustomerRef": {"value": "2"}}).json()["Invoice"]
    with_link = qbo.get(f"invoice/{paid_online['Id']}", params={"include": "invoiceLink"})
    assert with_link.json()["Invoice"]["InvoiceLink"].startswith("https://connect.intuit.com/")
    assert "InvoiceLink" not in qbo.get(f"invoice/{paid_online['Id']}").json()["Invoice"]
    for doc in (offline, no_mail):
        answer = qbo.get(f"invoice/{doc['Id']}", params={"include": "invoiceLink"}).json()
        assert "InvoiceLink" not in answer["Invoice"]
    requests.post(f"{qbo.url}/_sim/switches", json={"sim.qbo_invoice_link": False}, timeout=5)
    answer = qbo.get(f"invoice/{paid_online['Id']}", params={"include": "invoiceLink"}).json()
    assert "InvoiceLink" not in answer["Invoice"]


def test_the_mailbox_page_shows_what_the_smtp_sink_received(launch):
    import smtplib
    from email.message import EmailMessage

    from portal.sandbox.mailbox import Mailbox

    qbo = launch(company())
    assert "No SMTP sink" in requests.get(f"{qbo.url}/_sim/mailbox", timeout=5).text
    box = Mailbox().start()
    try:
        qbo.sandbox.mailbox = box
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.test", "b@y.test", "Hi <there>"
        message.set_content("Body text")
        message.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf",
                               filename="Invoice-1.pdf")
        with smtplib.SMTP(box.host, box.port, timeout=5) as server:
            server.send_message(message)
        page = requests.get(f"{qbo.url}/_sim/mailbox", timeout=5).text
        assert "Hi &lt;there&gt;" in page and "Invoice-1.pdf (application/pdf" in page
        listed = requests.get(f"{qbo.url}/_sim/mailbox.json", timeout=5).json()["messages"]
        assert listed[0]["envelope_to"] == ["b@y.test"] and listed[0]["text"].strip() == "Body text"
        assert requests.delete(f"{qbo.url}/_sim/mailbox", timeout=5).status_code == 204
        assert box.messages() == []
    finally:
        box.stop()
