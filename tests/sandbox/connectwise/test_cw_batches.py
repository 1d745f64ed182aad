"""GL export and accounting batches: records leave and return to the unposted lists."""

from __future__ import annotations

from typing import Any


def _export(cw: Any, invoice_id: int) -> dict[str, Any]:
    resp = cw.post("finance/accounting/export",
                   json={"exportInvoicesFlag": True, "includedInvoiceIds": [invoice_id]})
    assert resp.status_code == 200
    return resp.json()


def _unposted_ids(cw: Any) -> set[int]:
    rows = cw.get("finance/accounting/unpostedinvoices?pageSize=1000").json()
    return {row["billingLogId"] for row in rows}


def test_export_gives_gl_lines_and_entry_id_string(cw: Any) -> None:
    export = _export(cw, 30)
    tx = export["transactions"][0]
    assert tx["documentNumber"] == "10030" and tx["glTypeId"] == "AR"
    assert isinstance(tx["glEntryIds"], str) and "," in tx["glEntryIds"]
    assert tx["detail"] and {d["glTypeId"] for d in tx["detail"]} <= {"RP", "ST"}
    detail_ids = {d["id"] for d in tx["detail"]}
    assert not detail_ids & {int(i) for i in tx["glEntryIds"].split(",")}
    rp_total = sum(d["total"] for d in tx["detail"])
    assert round(rp_total + tx["total"], 2) == 0          # lines carry the opposite sign
    assert export["customers"][0]["accountNumber"] == tx["companyAccountNumber"]
    # read-only: still unposted afterwards
    assert 30 in _unposted_ids(cw)


def test_export_needs_a_flag(cw: Any) -> None:
    resp = cw.post("finance/accounting/export", json={})
    assert resp.status_code == 400
    assert resp.json()["code"] == "InvalidObject"


def test_batch_create_and_delete_round_trip(cw: Any) -> None:
    before = cw.get("finance/accounting/unpostedinvoices/count").json()["count"]
    tx = _export(cw, 31)["transactions"][0]
    gl_ids = [int(i) for i in tx["glEntryIds"].split(",")]
    resp = cw.post("finance/accounting/batches", json={
        "batchIdentifier": "2026-11-25-I10031", "processedRecordIds": gl_ids,
        "exportInvoicesFlag": True})
    assert resp.status_code == 201
    assert resp.json()["transactions"][0]["documentNumber"] == "10031"   # a GLExport body
    assert 31 not in _unposted_ids(cw)
    assert cw.get("finance/accounting/unpostedinvoices/count").json()["count"] == before - 1
    assert cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "includedInvoiceIds": [31]}).json()["transactions"] == []
    invoice = cw.get("finance/invoices/31").json()
    assert invoice["glBatch"]["name"] == "2026-11-25-I10031"
    entries = cw.get("finance/invoices/31/glEntries/").json()
    assert entries and all(e["isBatched"] for e in entries)

    found = cw.get("finance/accounting/batches",
                   params={"conditions": 'batchIdentifier="2026-11-25-I10031"'}).json()
    assert len(found) == 1
    batch_id = found[0]["id"]
    rows = cw.get(f"finance/accounting/batches/{batch_id}/entries").json()
    assert {r["id"] for r in rows} == set(gl_ids)
    assert all(r["invoice"]["id"] == 31 for r in rows)

    assert cw.delete(f"finance/accounting/batches/{batch_id}").status_code == 204
    assert 31 in _unposted_ids(cw)
    invoice = cw.get("finance/invoices/31").json()
    assert "glBatch" not in invoice
    assert invoice["unbatchedBatch"]["id"] == batch_id
    assert cw.get(f"finance/accounting/batches/{batch_id}").status_code == 404


def test_duplicate_identifier_is_refused(cw: Any) -> None:
    first = [int(i) for i in _export(cw, 32)["transactions"][0]["glEntryIds"].split(",")]
    second = [int(i) for i in _export(cw, 33)["transactions"][0]["glEntryIds"].split(",")]
    body = {"batchIdentifier": "DUP-1", "processedRecordIds": first, "exportInvoicesFlag": True}
    assert cw.post("finance/accounting/batches", json=body).status_code == 201
    resp = cw.post("finance/accounting/batches", json=dict(body, processedRecordIds=second))
    assert resp.status_code == 400
    error = resp.json()
    assert error["code"] == "InvalidObject"
    assert error["errors"][0]["code"] == "ObjectExists"
    assert error["errors"][0]["field"] == "batchIdentifier"
    assert 33 in _unposted_ids(cw)


def test_identifier_stays_reserved_after_delete(cw: Any) -> None:
    ids = [int(i) for i in _export(cw, 34)["transactions"][0]["glEntryIds"].split(",")]
    body = {"batchIdentifier": "REUSE-1", "processedRecordIds": ids, "exportInvoicesFlag": True}
    assert cw.post("finance/accounting/batches", json=body).status_code == 201
    batch = cw.get("finance/accounting/batches?conditions=batchIdentifier=\"REUSE-1\"").json()[0]
    assert cw.delete(f"finance/accounting/batches/{batch['id']}").status_code == 204
    again = cw.post("finance/accounting/batches", json=body)
    assert again.json()["errors"][0]["code"] == "ObjectExists"
    assert cw.post("finance/accounting/batches",
                   json=dict(body, batchIdentifier="REUSE-1-r2")).status_code == 201


def test_batch_validation_errors(cw: Any) -> None:
    assert cw.post("finance/accounting/batches", json={}).json()["errors"][0]["code"] == \
        "MissingRequiredField"
    resp = cw.post("finance/accounting/batches",
                   json={"processedRecordIds": [999999], "exportInvoicesFlag": True})
    assert resp.status_code == 400
    posted = cw.get("finance/invoices/1").json()          # already batched in the demo
    assert posted["glBatch"]["name"].endswith("I10001")


def test_closed_batch_cannot_be_deleted(cw: Any) -> None:
    closed = cw.get("finance/accounting/batches?conditions=closedFlag=true").json()
    assert closed
    resp = cw.delete(f"finance/accounting/batches/{closed[0]['id']}")
    assert resp.status_code == 400
    assert cw.get(f"finance/accounting/batches/{closed[0]['id']}").status_code == 200


def test_invoice_without_gl_entries_is_listed_with_empty_ids(cw: Any) -> None:
    tx = _export(cw, 150)["transactions"][0]
    assert tx["glEntryIds"] == ""


def test_expense_export_and_batch(cw: Any) -> None:
    export = cw.post("finance/accounting/export",
                     json={"exportExpensesFlag": True, "includedExpenseIds": [1]}).json()
    expense = export["expenses"][0]
    assert expense["offset"]["total"] == -expense["total"]
    assert export["vendors"][0]["member"]["id"]
    gl_ids = [expense["id"], expense["offset"]["id"]]
    resp = cw.post("finance/accounting/batches", json={
        "batchIdentifier": "2026-11-25-E1", "processedRecordIds": gl_ids,
        "exportExpensesFlag": True})
    assert resp.status_code == 201
    rows = cw.get("finance/accounting/unpostedexpenses?conditions=expenseDetailId=1").json()
    assert rows == []


def test_sim_close_batch_and_reclose_invoice(cw: Any) -> None:
    tx = _export(cw, 35)["transactions"][0]
    old = [int(i) for i in tx["glEntryIds"].split(",")]
    changed = cw.sim("POST", "reclose", json={"invoice_id": 35}).json()
    assert changed["old_gl_entry_ids"] == old and not set(changed["gl_entry_ids"]) & set(old)
    assert _export(cw, 35)["transactions"][0]["glEntryIds"] == ",".join(
        str(i) for i in changed["gl_entry_ids"])
    stale = cw.post("finance/accounting/batches", json={
        "batchIdentifier": "STALE", "processedRecordIds": old, "exportInvoicesFlag": True})
    assert stale.status_code == 400
    assert cw.post("finance/accounting/batches", json={
        "batchIdentifier": "FRESH", "processedRecordIds": changed["gl_entry_ids"],
        "exportInvoicesFlag": True}).status_code == 201
    assert cw.sim("POST", "reclose", json={"invoice_id": 35}).status_code == 400
    closed = cw.sim("POST", "batches", json={"batchIdentifier": "FRESH", "closedFlag": True})
    assert closed.json()["closedFlag"] is True
    assert cw.delete(f"finance/accounting/batches/{closed.json()['id']}").status_code == 400


def _exported_numbers(cw: Any, ids: list[int]) -> list[str]:
    body = {"exportInvoicesFlag": True, "includedInvoiceIds": ids}
    answer = cw.post("finance/accounting/export", json=body)
    assert answer.status_code == 200, answer.text
    return [t["documentNumber"] for t in answer.json()["transactions"]]


def test_included_invoice_ids_take_both_id_kinds_by_default(cw: Any) -> None:
    """CW-REF §11: which id kind includedInvoiceIds takes is undocumented, so the sandbox
    accepts invoice ids (billingLogId) and unposted-row ids alike, and logs which matched."""
    unposted = cw.get("finance/accounting/unpostedinvoices?conditions=billingLogId=21").json()
    assert [row["id"] for row in unposted] == [870021]
    assert _exported_numbers(cw, [21]) == ["10021"]
    assert _exported_numbers(cw, [870021]) == ["10021"]
    assert _exported_numbers(cw, [21, 870022]) == ["10021", "10022"]
    assert _exported_numbers(cw, [21, 870021]) == ["10021"]  # one invoice, named twice
    logged = [r for r in cw.sim("GET", "requests?entries=1").json()["entries"]
              if r["path"].endswith("/finance/accounting/export")]
    assert logged[-1]["included_invoice_ids_matched"] == {"invoice_id": 1, "unposted_id": 0}
    assert logged[-2]["included_invoice_ids_matched"] == {"invoice_id": 1, "unposted_id": 1}


def test_included_invoice_id_kind_switch_limits_to_one_kind(cw: Any) -> None:
    cw.sim("POST", "switches", json={"sim.cw_export_invoice_id_kind": "invoice_id"})
    assert _exported_numbers(cw, [21]) == ["10021"] and _exported_numbers(cw, [870021]) == []
    cw.sim("POST", "switches", json={"sim.cw_export_invoice_id_kind": "unposted_id"})
    assert _exported_numbers(cw, [21]) == [] and _exported_numbers(cw, [870021]) == ["10021"]


def test_thru_date_and_location_limit_the_export(cw: Any) -> None:
    everything = cw.post("finance/accounting/export", json={"exportInvoicesFlag": True}).json()
    early = cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "thruDate": "2026-08-01T00:00:00Z"}).json()
    assert 0 < len(early["transactions"]) < len(everything["transactions"])
    assert all(t["documentDate"] <= "2026-08-01T00:00:00" for t in early["transactions"])
    west = cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "locationId": 3}).json()
    count = cw.get("finance/accounting/unpostedinvoices/count?conditions=locationId=3").json()
    assert len(west["transactions"]) == count["count"]
    assert {c["company"]["id"] for c in west["customers"]} == {
        t["company"]["id"] for t in west["transactions"]}
