"""Company settings per realm as Preferences and CompanyInfo show them, and the CLI command."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from conftest import REALM, company


def test_settings_are_reflected_in_preferences_and_company_info(launch):
    qbo = launch(company(class_tracking=True, location_tracking=True, account_numbers=True,
                         multicurrency=True, home_currency="USD"))
    prefs = qbo.get("preferences").json()["Preferences"]
    assert prefs["AccountingInfoPrefs"]["ClassTrackingPerTxnLine"] is True
    assert prefs["AccountingInfoPrefs"]["TrackDepartments"] is True
    assert prefs["AccountingInfoPrefs"]["UseAccountNumbers"] is True
    assert prefs["CurrencyPrefs"] == {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": "USD"}}
    assert prefs["TaxPrefs"]["PartnerTaxEnabled"] is False and prefs["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    info = qbo.get(f"companyinfo/{REALM}").json()["CompanyInfo"]
    assert info["Country"] == "US" and info["CompanyAddr"]["Country"] == "USA" and "Lat" not in info["CompanyAddr"]
    assert qbo.query("select * from CompanyInfo").json()["QueryResponse"]["CompanyInfo"][0]["Id"] == "1"
    updated = qbo.post("companyinfo", {"Id": "1", "SyncToken": info["SyncToken"], "sparse": True,
                                       "LegalName": "Test Company LLC"}).json()["CompanyInfo"]
    assert updated["LegalName"] == "Test Company LLC" and updated["SyncToken"] == "1"
    changed = qbo.post("preferences", {"Id": "1", "SyncToken": prefs["SyncToken"], "sparse": True,
                                       "AccountingInfoPrefs": {"UseAccountNumbers": False}}).json()["Preferences"]
    assert changed["AccountingInfoPrefs"]["UseAccountNumbers"] is False
    assert "AcctNum" not in qbo.post("account", {"Name": "Numbered", "AccountType": "Expense",
                                                 "AcctNum": "6100"}).json()["Account"]
    requests.post(f"{qbo.url}/_sim/settings", params={"realmId": REALM}, json={"ast": True}, timeout=5)
    assert qbo.get("preferences").json()["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is True


def test_payment_delete_restores_the_invoice(launch):
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 80.0, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
    qbo = launch(company({"Invoice": [{"Id": "10", "CustomerRef": {"value": "1"}, "Line": line}]}))
    payment = qbo.post("payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 80,
                                   "Line": [{"Amount": 80, "LinkedTxn": [{"TxnId": "10", "TxnType": "Invoice"}]}]})
    payment = payment.json()["Payment"]
    assert qbo.get("invoice/10").json()["Invoice"]["Balance"] == 0
    blocked = qbo.post("invoice?operation=delete", {"Id": "10", "SyncToken": "1"})
    assert blocked.json()["Fault"]["Error"][0]["code"] == "6000"
    qbo.post("payment?operation=delete", {"Id": payment["Id"], "SyncToken": "0"})
    invoice = qbo.get("invoice/10").json()["Invoice"]
    assert invoice["Balance"] == 80.0 and invoice["LinkedTxn"] == []


def test_cli_serves_and_prints_its_urls(tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"companies": [company()]}))
    code = "from portal.sandbox.quickbooks.cli import quickbooks; quickbooks()"
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", "0", "--data", str(data),
                             "--switch", "qbo_refresh_rotation=every", "--speed", "60",
                             "--fault", json.dumps({"kind": "latency", "latency_ms": 1})],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        url = first.rsplit(" ", 1)[1]
        assert first.startswith("QuickBooks sandbox on http://127.0.0.1:")
        assert proc.stdout.readline().strip().endswith("/.well-known/openid_sandbox_configuration")
        doc = requests.get(url + "/.well-known/openid_sandbox_configuration", timeout=5).json()
        assert doc["token_endpoint"] == url + "/oauth2/v1/tokens/bearer"
        switches = requests.get(url + "/_sim/switches", timeout=5).json()
        assert switches["sim.qbo_refresh_rotation"] == "every"
        assert requests.get(url + "/_sim/clock", timeout=5).json()["speed"] == 60
        assert requests.get(url + "/_sim/faults", timeout=5).json()["rules"][0]["kind"] == "latency"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
