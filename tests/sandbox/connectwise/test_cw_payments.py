"""Invoice payments: create, update, delete, credits, and the one-payment-per-invoice switch."""

from __future__ import annotations

from typing import Any


def _invoice(cw: Any, iid: int) -> dict[str, Any]:
    return cw.get(f"finance/invoices/{iid}").json()


def _open_invoice(cw: Any) -> dict[str, Any]:
    return next(i for i in (_invoice(cw, n) for n in range(21, 60))
                if i["type"] != "CreditMemo" and i["total"] > 100)


def test_payment_lifecycle(cw: Any) -> None:
    inv = _open_invoice(cw)
    path = f"finance/invoices/{inv['id']}/payments"
    created = cw.post(path, json={"invoice": {"id": inv["id"]}, "amount": 100,
                                  "paymentDate": "2026-11-01T00:00:00Z"})
    assert created.status_code == 201
    pay = created.json()
    assert pay["invoice"]["identifier"] == inv["invoiceNumber"] and pay["amount"] == 100
    assert _invoice(cw, inv["id"])["balance"] == round(inv["total"] - 100, 2)

    second = cw.post(path, json={"amount": 10})
    assert second.status_code == 400
    assert second.json()["code"] == "InvalidObject"

    patched = cw.patch(f"{path}/{pay['id']}",
                       json=[{"op": "replace", "path": "amount", "value": 60}])
    assert patched.status_code == 200 and patched.json()["amount"] == 60
    assert _invoice(cw, inv["id"])["payments"] == 60
    put = cw.request("PUT", f"{path}/{pay['id']}", json={"amount": 70,
                                                         "paymentDate": "2026-11-05"})
    assert put.json()["paymentDate"] == "2026-11-05T00:00:00Z"

    assert cw.delete(f"{path}/{pay['id']}").status_code == 204
    assert _invoice(cw, inv["id"])["balance"] == inv["total"]
    assert cw.get(path).json() == []


def test_one_payment_switch_off_allows_two(cw: Any) -> None:
    inv = _open_invoice(cw)
    path = f"finance/invoices/{inv['id']}/payments"
    cw.sim("POST", "switches", json={"sim.cw_single_payment_per_invoice": False})
    assert cw.post(path, json={"amount": 10}).status_code == 201
    assert cw.post(path, json={"amount": 15}).status_code == 201
    assert cw.get(f"{path}/count").json() == {"count": 2}
    assert _invoice(cw, inv["id"])["payments"] == 25


def test_overpayment_and_bad_bodies_refused(cw: Any) -> None:
    inv = _open_invoice(cw)
    path = f"finance/invoices/{inv['id']}/payments"
    assert cw.post(path, json={"amount": inv["total"] + 1}).status_code == 400
    assert cw.post(path, json={}).json()["errors"][0]["code"] == "MissingRequiredField"
    assert cw.post(path, data="{not json", headers=dict(
        cw.headers, **{"Content-Type": "application/json"})).status_code == 400


def test_credit_memo_applied_as_credit(cw: Any) -> None:
    memo = _invoice(cw, 141)
    assert memo["type"] == "CreditMemo" and memo["total"] < 0
    target = _invoice(cw, 19)
    path = f"finance/invoices/{target['id']}/payments"
    cash = cw.post(path, json={"amount": 100})
    credit = cw.post(path, json={"amount": 50, "credit": {"id": 141}})
    assert cash.status_code == 201 and credit.status_code == 201
    assert credit.json()["credit"]["identifier"] == memo["invoiceNumber"]
    after = _invoice(cw, target["id"])
    assert after["payments"] == 100 and after["credits"] == 50
    assert after["balance"] == round(target["total"] - 150, 2)
    assert _invoice(cw, 141)["balance"] == round(memo["total"] + 50, 2)
    too_much = cw.post(path, json={"amount": -memo["total"], "credit": {"id": 141}})
    assert too_much.status_code == 400


def test_credit_references_follow_their_switch(cw: Any) -> None:
    path = "finance/invoices/19/payments"  # invoice 19 and credit memo 141 share a customer
    cw.sim("POST", "switches", json={"sim.cw_credit_via_credit_ref": False})
    refused = cw.post(path, json={"amount": 10, "credit": {"id": 141}})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "credit"
    cw.sim("POST", "switches", json={"sim.cw_credit_via_credit_ref": True})
    assert cw.post(path, json={"amount": 10, "credit": {"id": 141}}).status_code == 201


def test_the_demo_wisepay_payment(cw: Any) -> None:
    from portal.sandbox.demo_data import CURATED

    number = CURATED["quickbooks"]["wisepay_invoice_number"]
    [inv] = cw.get("finance/invoices", params={"conditions": f'invoiceNumber="{number}"'}).json()
    [row] = cw.get(f"finance/invoices/{inv['id']}/payments").json()
    assert row["wisePayPayment"]["wisePayReference"] == f"WP-{number}"
    assert row["amount"] == inv["total"] and inv["balance"] == 0
    unposted = cw.get("finance/accounting/unpostedpayments").json()
    assert any(p["id"] == row["id"] and p["wisePayPayment"] for p in unposted)
