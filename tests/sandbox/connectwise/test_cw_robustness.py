"""Malformed requests get ConnectWise-shaped 4xx answers, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

BAD_QUERIES = [
    "conditions=(", "conditions=id%20%3D", "conditions=%22", "conditions=id%20in%20(",
    "conditions=nosuch%20%3D%201", "conditions=id%20like%201", "conditions=%5B2020", "conditions=%E2%80%99",
    "conditions=company%2Fid%20%3D%20%22x%22", "orderBy=id%20sideways", "orderBy=nosuch",
    "page=-1", "pageSize=x", "pageId=abc", "childConditions=communicationItems%2Fnosuch%3D1",
    "customFieldConditions=caption%3D%22x%22",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_queries_are_400(cw: Any, query: str) -> None:
    resp = cw.get(f"finance/accounting/unpostedinvoices?{query}")
    assert resp.status_code == 400, resp.text[:300]
    body = resp.json()
    assert set(body) <= {"code", "message", "errors"} and body["code"] and body["message"]


@pytest.mark.parametrize("method, path, body", [
    ("POST", "finance/accounting/batches", [1, 2]),
    ("POST", "finance/accounting/batches", {"processedRecordIds": "1,2",
                                            "exportInvoicesFlag": True}),
    ("POST", "finance/accounting/batches", {"processedRecordIds": [1], "exportInvoicesFlag": True,
                                            "batchIdentifier": "x" * 51}),
    ("POST", "finance/accounting/export", [1]),
    ("POST", "finance/accounting/export", {"exportInvoicesFlag": True,
                                           "includedInvoiceIds": "all"}),
    ("POST", "finance/accounting/export", {"exportInvoicesFlag": True, "thruDate": "soon"}),
    ("POST", "finance/invoices/30/payments", {"amount": "ten"}),
    ("POST", "finance/invoices/30/payments", {"amount": 1, "paymentDate": "yesterday"}),
    ("POST", "finance/invoices/30/payments", {"amount": 1, "credit": {"id": 30}}),
    ("POST", "finance/invoices/30/payments", {"amount": -5}),
    ("PATCH", "finance/invoices/30/payments/1", [{"op": "replace", "path": "amount",
                                                  "value": 1}]),
    ("GET", "finance/invoices/999999", None),
    ("GET", "finance/accounting/unpostedinvoices/1", None),
    ("DELETE", "finance/invoices/30/payments/77", None),
    ("POST", "procurement/purchaseorders/999/unbatch", None),
])
def test_bad_writes_are_4xx(cw: Any, method: str, path: str, body: Any) -> None:
    resp = cw.request(method, path, json=body)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert resp.json()["code"]


def test_patch_with_unknown_path_is_400(cw: Any) -> None:
    pay = cw.post("finance/invoices/30/payments", json={"amount": 5}).json()
    resp = cw.patch(f"finance/invoices/30/payments/{pay['id']}",
                    json=[{"op": "replace", "path": "invoice", "value": {"id": 2}}])
    assert resp.status_code == 400
