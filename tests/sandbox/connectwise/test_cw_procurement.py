"""Procurement: receipts in the GL export, batching, and the PO unbatch / rebatch actions."""

from __future__ import annotations

from typing import Any


def test_procurement_export_and_po_unbatch_rebatch(cw: Any) -> None:
    rows = cw.get("finance/accounting/unpostedprocurement?pageSize=100").json()
    kinds = {r["procurementType"] for r in rows}
    assert kinds == {"Purchase", "Adjustment", "Transfer"}
    assert all(isinstance(r["unpostedProductId"], str) for r in rows)
    receipt = next(r for r in rows if r["purchaseOrder"]["name"] == "NW-PO-0007")
    export = cw.post("finance/accounting/export", json={
        "exportProductsFlag": True, "includedProductIds": [receipt["unpostedProductId"]]}).json()
    tx = export["purchaseTransactions"][0]
    assert tx["id"].startswith("PO #NW-PO-0007") and tx["freightAmount"] == 45.0
    assert all(d["quantity"] < 0 for d in tx["purchaseDetail"])
    po_id = receipt["purchaseOrder"]["id"]
    gl = [e["id"] for e in cw.sandbox.store.rows("gl_entries")
          if e["_kind"] == "receipt" and e["_owner"] == int(receipt["unpostedProductId"])]
    created = cw.post("finance/accounting/batches", json={
        "batchIdentifier": "2026-11-25-PNW-PO-0007", "processedRecordIds": gl,
        "exportProductsFlag": True})
    assert created.status_code == 201 and created.json()["purchaseTransactions"]
    lines = cw.get(f"procurement/purchaseorders/{po_id}/lineitems").json()
    assert all(line["batchedFlag"] for line in lines)
    batch = cw.get('finance/accounting/batches?conditions=batchIdentifier="2026-11-25-PNW-PO-0007"'
                   ).json()[0]
    entries = cw.get(f"finance/accounting/batches/{batch['id']}/entries").json()
    assert all(e["purchaseOrder"]["id"] == po_id for e in entries)

    out = cw.post(f"procurement/purchaseorders/{po_id}/unbatch")
    assert out.status_code == 200 and out.json()["success"] is True
    lines = cw.get(f"procurement/purchaseorders/{po_id}/lineitems").json()
    assert not any(line["batchedFlag"] for line in lines)
    assert all(line["unbatchedRecId"] == batch["id"] for line in lines)
    assert any(r["id"] == receipt["id"] for r in
               cw.get("finance/accounting/unpostedprocurement?pageSize=100").json())
    assert cw.post(f"procurement/purchaseorders/{po_id}/unbatch").json()["success"] is False

    back = cw.post(f"procurement/purchaseorders/{po_id}/rebatch")
    assert back.json()["success"] is True
    lines = cw.get(f"procurement/purchaseorders/{po_id}/lineitems").json()
    assert all(line["batchedFlag"] and "unbatchedRecId" not in line for line in lines)
    assert not any(r["id"] == receipt["id"] for r in
                   cw.get("finance/accounting/unpostedprocurement?pageSize=100").json())


def test_partial_receipt_has_two_receipts_with_one_vendor_invoice(cw: Any) -> None:
    rows = cw.get('finance/accounting/unpostedprocurement?conditions=purchaseOrder/name='
                  '"NW-PO-0003"').json()
    assert len(rows) == 2
    assert {r["vendorInvoiceNumber"] for r in rows} == {"INV-88003"}


def test_po_unbatch_needs_edit_permission(cw: Any) -> None:
    cw.sim("POST", "role", json={"revoke": {"Procurement.Purchase Orders": ["edit"]}})
    assert cw.post("procurement/purchaseorders/1/unbatch").status_code == 403


def test_purchase_tax_detail_lines_follow_the_schema_and_the_signs(cw: Any) -> None:
    """GLExportPurchaseTransactionDetailTax: one line per taxed product line and level, in
    the detail lines' sign; header total = product lines + tax; the unposted row agrees."""
    from portal.sandbox.demo_data import CURATED

    number = CURATED["connectwise"]["purchase_orders"]["purchase_tax_canada"]
    [row] = cw.get('finance/accounting/unpostedprocurement?conditions=purchaseOrder/name='
                   f'"{number}"').json()
    assert row["taxTotal"] > 0 and row["purchaseOrderTaxableFlag"] is True
    assert row["stateTaxXref"] == "HST ON" and row["stateTaxAmount"] == row["taxTotal"]
    export = cw.post("finance/accounting/export", json={
        "exportProductsFlag": True, "includedProductIds": [str(row["id"])]}).json()
    [tx] = export["purchaseTransactions"]
    assert tx["documentNumber"] == number and tx["purchaseHeaderTaxableFlag"] is True
    assert tx["taxCode"]["name"] == "ON" and tx["taxGroupRate"] == 0.13
    assert tx["taxLevels"] == [{"taxCodeXref": "HST ON", "taxLevel": 1}]
    assert tx["currency"]["currencyCode"] == "CAD"
    details, taxes = tx["purchaseDetail"], tx["purchaseDetailTax"]
    assert len(taxes) == len(details) == 2
    for detail, tax in zip(details, taxes):
        assert detail["taxable"] is True and detail["taxCodeXref"] == "HST ON"
        assert tax["lineNumber"] == detail["lineNumber"] and tax["item"] == detail["item"]
        assert tax["total"] < 0 and tax["total"] == round(detail["total"] * 0.13, 2)
        assert tax["taxRate"] == 0.13 and tax["taxRatePercent"] == 13.0
        assert isinstance(tax["id"], int) and tax["glTypeId"] == "PT"
    tax_total = -round(sum(t["total"] for t in taxes), 2)
    assert tax_total == row["taxTotal"]
    assert round(-sum(d["total"] for d in details) + tax_total, 2) == tx["total"] == row["total"]
    untaxed = cw.post("finance/accounting/export", json={
        "exportProductsFlag": True, "includedProductIds": ["7"]}).json()
    assert all(t["purchaseDetailTax"] == [] and t["purchaseHeaderTaxableFlag"] is False
               for t in untaxed["purchaseTransactions"])


def test_reclosing_a_po_moves_the_close_date_of_its_unbatched_receipts(cw: Any) -> None:
    rows = cw.get('finance/accounting/unpostedprocurement?conditions=purchaseOrder/name='
                  '"NW-PO-0003"').json()
    po_id = rows[0]["purchaseOrder"]["id"]
    answer = cw.sim("POST", "reclose_po", json={"po_id": po_id, "date": "2026-11-20"})
    assert answer.status_code == 200 and len(answer.json()["receipts"]) == 2
    rows = cw.get('finance/accounting/unpostedprocurement?conditions=purchaseOrder/name='
                  '"NW-PO-0003"').json()
    assert {r["dateClosed"] for r in rows} == {"2026-11-20T00:00:00Z"}
    assert cw.get(f"procurement/purchaseorders/{po_id}").json()["dateClosed"] == \
        "2026-11-20T00:00:00Z"
    export = cw.post("finance/accounting/export", json={
        "exportProductsFlag": True, "includedProductIds": [str(r["id"]) for r in rows]}).json()
    assert {t["documentDate"] for t in export["purchaseTransactions"]} == \
        {"2026-11-20T00:00:00"}
    assert cw.sim("POST", "reclose_po", json={"po_id": 99999, "date": "2026-11-20"}
                  ).status_code == 400
