"""Injected faults: 429 with Retry-After, errors, drop-after-commit, and the control API."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests


def test_throttle_answers_429_with_retry_after(cw: Any) -> None:
    rule = cw.sim("POST", "faults", json={"target": "cw", "kind": "throttle", "count": 1,
                                          "path_regex": "unpostedinvoices"})
    assert rule.status_code == 201
    first = cw.get("finance/accounting/unpostedinvoices/count")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    assert first.json()["code"]
    assert cw.get("finance/accounting/unpostedinvoices/count").status_code == 200


def test_error_rule_uses_given_status(cw: Any) -> None:
    cw.sandbox.faults.add({"kind": "error", "status": 503, "count": 1, "method": "GET"})
    resp = cw.get("system/info")
    assert resp.status_code == 503 and resp.json()["message"]
    assert cw.get("system/info").status_code == 200


def test_drop_after_commit_keeps_the_write(cw: Any) -> None:
    tx = cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "includedInvoiceIds": [50]}).json()["transactions"][0]
    gl = [int(i) for i in tx["glEntryIds"].split(",")]
    cw.sandbox.faults.add({"kind": "drop_after_commit", "method": "POST", "count": 1,
                           "path_regex": "accounting/batches$"})
    with pytest.raises(requests.ConnectionError):
        cw.post("finance/accounting/batches", json={
            "batchIdentifier": "DROP-1", "processedRecordIds": gl, "exportInvoicesFlag": True})
    found = cw.get("finance/accounting/batches?conditions=batchIdentifier=\"DROP-1\"").json()
    assert len(found) == 1
    again = cw.post("finance/accounting/batches", json={
        "batchIdentifier": "DROP-1", "processedRecordIds": gl, "exportInvoicesFlag": True})
    assert again.json()["errors"][0]["code"] == "ObjectExists"


def test_timeout_hangs_without_writing(cw: Any) -> None:
    cw.sandbox.faults.add({"kind": "timeout", "count": 1, "latency_ms": 1500,
                           "path_regex": "payments"})
    with pytest.raises(requests.Timeout):
        cw.post("finance/invoices/60/payments", json={"amount": 1}, timeout=0.3)
    assert cw.get("finance/invoices/60/payments").json() == []


def test_latency_rule(cw: Any) -> None:
    cw.sandbox.faults.add({"kind": "latency", "latency_ms": 200, "count": 1})
    resp = cw.get("system/info")
    assert resp.status_code == 200 and resp.elapsed.total_seconds() >= 0.2


def test_queued_rule_writes_late(cw: Any) -> None:
    """A queued request is worked only after the delay: its row is not there meanwhile."""
    import threading

    cw.sandbox.faults.add({"kind": "queued", "latency_ms": 800, "count": 1, "method": "POST",
                           "path_regex": "payments"})
    answers: list[Any] = []
    sender = threading.Thread(target=lambda: answers.append(cw.post(
        "finance/invoices/60/payments", json={"amount": 1})))
    sender.start()
    time.sleep(0.3)
    assert cw.get("finance/invoices/60/payments").json() == []
    sender.join(timeout=10)
    assert answers[0].status_code == 201, answers[0].text
    assert [p["amount"] for p in cw.get("finance/invoices/60/payments").json()] == [1]


def test_control_endpoints(cw: Any) -> None:
    assert cw.sim("GET", "switches").json()["cw_cloud_mode"] is True
    assert cw.sim("POST", "switches", json={"sim.no_such": 1}).status_code == 400
    state = cw.sim("GET", "state").json()
    assert state["credentials"]["company_id"] == "northwind"
    assert state["unposted"]["invoices"] == 129
    role = cw.sim("GET", "role").json()
    assert role["system_level"] == 1 and role["name"] == "QuickBooks Sync"
    cw.get("system/info")
    assert cw.sim("GET", "requests").json()["total"] >= 1
    tx = cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "includedInvoiceIds": [51]}).json()["transactions"][0]
    cw.post("finance/accounting/batches", json={
        "processedRecordIds": [int(i) for i in tx["glEntryIds"].split(",")],
        "exportInvoicesFlag": True})
    assert cw.sim("GET", "state").json()["unposted"]["invoices"] == 128
    assert cw.sim("POST", "reset").status_code == 200
    assert cw.sim("GET", "state").json()["unposted"]["invoices"] == 129


def test_state_is_persisted_and_reloaded(tmp_path: Any, demo: dict) -> None:
    from portal.sandbox.connectwise import ConnectWiseSandbox
    path = tmp_path / "cw.json"
    first = ConnectWiseSandbox(data=demo["connectwise"], state_path=path)
    first.store.tables["invoices"][60]["reference"] = "changed"
    first.touch()
    first.close()
    second = ConnectWiseSandbox(state_path=path, data={"tables": {}})
    assert second.store.tables["invoices"][60]["reference"] == "changed"
    assert len(second.store.unposted["invoices"]) == 129


def test_faults_also_cover_company_info(cw: Any) -> None:
    cw.sandbox.faults.add({"kind": "error", "status": 502, "count": 1,
                           "path_regex": "companyinfo"})
    url = f"{cw.server.url}/login/companyinfo/northwind"
    assert requests.get(url, timeout=5).status_code == 502
    assert requests.get(url, timeout=5).json()["CompanyID"] == "northwind"
