"""What unbatching relies on (QBO-REF §5, §14.6): void and delete refused while payments or
credit are linked, a voided invoice keeping its DocNumber, a payment's full Line
replacement leaving unapplied credit, and a deposited payment refusing every change (6540)."""

from __future__ import annotations

from conftest import company
from test_qbo_behaviour import _code, _invoice


def _paid_invoice(qbo):  # type: ignore[no-untyped-def]
    invoice = qbo.post("invoice", _invoice("U-1")).json()["Invoice"]
    payment = qbo.post("payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 40,
                                   "PaymentRefNum": "CHK-7", "Line": [
                                       {"Amount": 40, "LinkedTxn": [
                                           {"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})
    assert payment.status_code == 200, payment.text
    return qbo.get(f"invoice/{invoice['Id']}").json()["Invoice"], payment.json()["Payment"]


def test_void_and_delete_refused_while_paid_then_allowed_after_unlinking(launch):
    qbo = launch(company())
    invoice, payment = _paid_invoice(qbo)
    assert invoice["Balance"] == 60 and {"TxnId": payment["Id"], "TxnType": "Payment"} in \
        invoice["LinkedTxn"]
    for operation in ("void", "delete"):
        refused = qbo.post(f"invoice?operation={operation}",
                           {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]})
        assert refused.status_code == 400 and _code(refused) == "6000"
        assert "linked" in refused.json()["Fault"]["Error"][0]["Detail"]
    # full Line replacement without the invoice: the money stays as unapplied credit
    body = {k: v for k, v in payment.items() if k not in ("MetaData", "domain", "sparse")}
    unlinked = qbo.post("payment", {**body, "Line": []})
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["Payment"]["UnappliedAmt"] == 40
    invoice = qbo.get(f"invoice/{invoice['Id']}").json()["Invoice"]
    assert invoice["Balance"] == invoice["TotalAmt"] == 100
    assert not [t for t in invoice.get("LinkedTxn") or [] if t["TxnType"] == "Payment"]
    voided = qbo.post("invoice?operation=void", {"Id": invoice["Id"],
                                                "SyncToken": invoice["SyncToken"]})
    assert voided.status_code == 200
    doc = voided.json()["Invoice"]
    assert doc["DocNumber"] == "U-1" and doc["PrivateNote"] == "Voided" and doc["TotalAmt"] == 0
    again = qbo.post("invoice", _invoice("U-1"))
    assert _code(again) == "6140"  # the voided invoice still holds the number
    assert qbo.post("invoice?include=allowduplicatedocnum", _invoice("U-1")).status_code == 200


def test_a_deposited_payment_cannot_change_until_the_deposit_is_deleted(launch):
    qbo = launch(company())
    invoice, payment = _paid_invoice(qbo)
    missing = qbo.post("deposit", {"DepositToAccountRef": {"value": "1"}, "Line": [
        {"Amount": 40, "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment"}]}]})
    assert missing.status_code == 400  # TxnLineId is required for Deposit links
    deposit = qbo.post("deposit", {"DepositToAccountRef": {"value": "1"}, "Line": [
        {"Amount": 40, "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment",
                                      "TxnLineId": "0"}]}]})
    assert deposit.status_code == 200, deposit.text
    deposit = deposit.json()["Deposit"]
    shown = qbo.get(f"payment/{payment['Id']}").json()["Payment"]
    assert shown["LinkedTxn"] == [{"TxnId": deposit["Id"], "TxnType": "Deposit"}]
    body = {k: v for k, v in shown.items() if k not in ("MetaData", "domain", "sparse",
                                                         "LinkedTxn")}
    for path, sent in (("payment", {**body, "Line": []}),
                       ("payment?operation=delete", {"Id": shown["Id"],
                                                     "SyncToken": shown["SyncToken"]})):
        refused = qbo.post(path, sent)
        assert refused.status_code == 400 and _code(refused) == "6540", refused.text
    gone = qbo.post("deposit?operation=delete", {"Id": deposit["Id"],
                                                 "SyncToken": deposit["SyncToken"]})
    assert gone.status_code == 200
    assert "LinkedTxn" not in qbo.get(f"payment/{payment['Id']}").json()["Payment"]
    assert qbo.post("payment", {**body, "Line": []}).status_code == 200
