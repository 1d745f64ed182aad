"""Authentication, clientId, company info, security-role permissions and System Level."""

from __future__ import annotations

from typing import Any

import requests


def test_company_info(cw: Any) -> None:
    known = requests.get(f"{cw.server.url}/login/companyinfo/NORTHWIND", timeout=5)
    assert known.status_code == 200
    body = known.json()
    assert body["Codebase"].endswith("/") and body["CompanyID"] == "northwind"
    unknown = requests.get(f"{cw.server.url}/login/companyinfo/nobody", timeout=5)
    assert unknown.status_code == 200 and unknown.text == "null"


def test_missing_and_wrong_keys_cloud_mode_is_404(cw: Any) -> None:
    no_auth = cw.get("system/info", headers={"clientId": cw.creds["client_id"]})
    assert no_auth.status_code == 404
    wrong = dict(cw.auth_headers("northwind", cw.creds["public_key"], "nope"),
                 clientId=cw.creds["client_id"])
    assert cw.get("system/info", headers=wrong).status_code == 404


def test_wrong_keys_on_premise_is_401_user_not_authenticated(cw: Any, sandbox: Any) -> None:
    cw.sim("POST", "switches", json={"sim.cw_cloud_mode": False})
    wrong_company = dict(cw.auth_headers("other", cw.creds["public_key"],
                                         cw.creds["private_key"]),
                         clientId=cw.creds["client_id"])
    resp = cw.get("system/info", headers=wrong_company)
    assert resp.status_code == 401
    assert resp.json() == {"code": "ConnectWiseApi", "message": "UserNotAuthenticated"}
    assert cw.get("system/info", headers={"clientId": cw.creds["client_id"],
                                          "Authorization": "Basic !!!"}).status_code == 401


def test_client_id_required(cw: Any) -> None:
    headers = {k: v for k, v in cw.headers.items() if k != "clientId"}
    missing = cw.get("system/info", headers=headers)
    assert missing.status_code == 401 and "clientId" in missing.json()["message"]
    unknown = cw.get("system/info", headers=dict(headers, clientId="not-registered"))
    assert unknown.status_code == 401
    cw.sim("POST", "switches", json={"cw_require_client_id": False})
    assert cw.get("system/info", headers=headers).status_code == 200


def test_permission_probe_semantics(cw: Any) -> None:
    assert cw.post("finance/accounting/batches", json={}).status_code == 400
    assert cw.delete("finance/accounting/batches/0").status_code == 404
    assert cw.post("finance/invoices/0/payments", json={}).status_code == 404
    assert cw.patch("finance/invoices/0/payments/0", json=[]).status_code == 404


def test_role_without_accounting_add_is_refused(cw: Any) -> None:
    role = cw.sim("POST", "role", json={"revoke": {"Finance.Accounting Interface": ["add"]}})
    assert "add" not in role.json()["permissions"]["Finance.Accounting Interface"]
    resp = cw.post("finance/accounting/batches", json={})
    assert resp.status_code == 403
    assert resp.json()["code"] and resp.json()["message"]
    ids = cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "includedInvoiceIds": [40]}).json()
    gl = [int(i) for i in ids["transactions"][0]["glEntryIds"].split(",")]
    refused = cw.post("finance/accounting/batches", json={
        "batchIdentifier": "X-1", "processedRecordIds": gl, "exportInvoicesFlag": True})
    assert refused.status_code == 403
    assert cw.get("finance/accounting/unpostedinvoices/count").status_code == 200
    assert cw.get("finance/accounting/batches?conditions=batchIdentifier=\"X-1\"").json() == []


def test_validation_before_permission_switch(cw: Any) -> None:
    cw.sim("POST", "role", json={"permissions": {"Finance.Accounting Interface": ["inquire"]}})
    assert cw.post("finance/accounting/batches", json={}).status_code == 403
    cw.sim("POST", "switches", json={"cw_permission_before_validation": False})
    assert cw.post("finance/accounting/batches", json={}).status_code == 400
    assert cw.get("company/companies?pageSize=1").status_code == 403


def test_system_level_hides_other_locations(cw: Any) -> None:
    everything = cw.get("finance/accounting/unpostedinvoices/count").json()["count"]
    east = cw.get("finance/accounting/unpostedinvoices/count?conditions=locationId=2").json()
    cw.sim("POST", "role", json={"system_level": 2, "location_id": 2})
    seen = cw.get("finance/accounting/unpostedinvoices?pageSize=1000").json()
    assert len(seen) == east["count"] < everything
    assert {row["locationId"] for row in seen} == {2}
    west_invoice = next(i for i in cw.sandbox.store.rows("invoices") if i["locationId"] == 3)
    assert cw.get(f"finance/invoices/{west_invoice['id']}").status_code == 404
    export = cw.post("finance/accounting/export", json={"exportInvoicesFlag": True}).json()
    assert len(export["transactions"]) == east["count"]
    cw.sim("POST", "role", json={"system_level": 1})
    assert cw.get("finance/accounting/unpostedinvoices/count").json()["count"] == everything


def test_paths_ignore_case_and_trailing_slash(cw: Any) -> None:
    a = cw.get("finance/accounting/unpostedInvoices/count/").json()
    b = cw.get("FINANCE/ACCOUNTING/UNPOSTEDINVOICES/COUNT").json()
    assert a == b
    assert cw.get("finance/nothing-here").json()["code"] == "NotFound"
    assert cw.request("PUT", "finance/accounting/batches").status_code == 405
