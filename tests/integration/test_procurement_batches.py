"""Procurement batches end to end (SPEC 9): both sandboxes over HTTP, a real RQ worker, real
stores. The QuickBooks documents must equal what ConnectWise holds, and ConnectWise's
unposted list must shrink by exactly the records posted."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import BatchStatus, BatchType, Company, ItemState, RunKind
from portal.services import batches
from portal.services import company_settings as cs
from portal.services.batching.types.base import Filters, Record
from portal.sandbox.demo_data import CURATED
from portal.services.batching.types.procurement import PROCUREMENT
from tests.conftest import run_jobs
from tests.integration.test_batch_pages import _refresh_references
from tests.integration.test_settings_tabs import _current_form
from tests.integration.batching import (
    batch_of,
    clear_faults,
    cw_batches,
    fault,
    qbo_state,
    states,
)

pytestmark = pytest.mark.integration
DOCUMENTS = ("Bill", "VendorCredit", "JournalEntry")


# ---- helpers ------------------------------------------------------------------------------

def unposted(app: Any) -> list[Record]:
    with app.app_context(), session_scope(app) as session:
        return PROCUREMENT.list_unposted(clients.connectwise(session), Filters())


def submit(app: Any, keys: set[str] | None = None, options: dict[str, Any] | None = None
           ) -> int:
    """Submit the unposted procurement records (all, or those keyed) and enqueue."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).first()
        rows = [r for r in PROCUREMENT.list_unposted(clients.connectwise(session), Filters())
                if keys is None or r.key in keys]
        batch = batches.submit(session, company, rows, user=None, options=options or {},
                               batch_type=BatchType.INVENTORY)
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    return batch_id


def configure(app: Any, company_id: int, tab: str, **changes: Any) -> None:
    """Save one settings tab as a browser would, with `changes` applied."""
    data = _current_form(app, company_id, tab)
    for name, value in changes.items():
        data[name] = ["", "y"] if value is True else [""] if value is False else value
    with app.app_context(), session_scope(app) as session:
        saved = cs.save_tab(session, session.get(Company, company_id), tab, data, None)
        assert not isinstance(saved, list), saved
        session.commit()


def documents(server: Any, realm: str) -> list[dict[str, Any]]:
    entities = qbo_state(server, realm)
    return [dict(d, _entity=e) for e in DOCUMENTS for d in entities.get(e, [])]


def cw_tables(cw_sandbox: Any) -> dict[str, dict[Any, dict[str, Any]]]:
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return {name: {k: dict(v) for k, v in sandbox.store.tables[name].items()}
                for name in ("receipts", "purchase_orders", "po_lines", "catalog",
                             "adjustments", "transfers", "companies")}


def marks(cw_sandbox: Any) -> Counter[str]:
    """Accounting batches by identifier without its date: P<PO>, A<id>, T<id> (and -2 …)."""
    return Counter(b["batchIdentifier"][11:] for b in cw_batches(cw_sandbox)
                   if b["batchIdentifier"][11:12] in "PAT")


def no_duplicates(server: Any, realm: str) -> None:
    """No record posted twice: one document per marker, per DocNumber and type."""
    docs = documents(server, realm)
    markers = Counter(d["PrivateNote"].rsplit("portal:", 1)[-1] for d in docs
                      if "portal:" in d.get("PrivateNote", ""))
    assert all(n == 1 for n in markers.values()), markers
    numbers = Counter((d["_entity"], d.get("DocNumber"), (d.get("VendorRef") or {}).get(
        "value")) for d in docs if d.get("DocNumber"))
    assert all(n == 1 for n in numbers.values()), numbers


def blocked_then_clean(app: Any, qbo_sandbox: Any, cw_sandbox: Any, company: Any
                       ) -> tuple[set[str], set[str]]:
    """The whole backlog: the second partial receipt blocks it (Refuse), nothing is written
    anywhere. Returns (skipped keys, failed keys)."""
    _qbo, server = qbo_sandbox
    before_docs = documents(server, company.realm_id)
    before_refs = {e: len(v) for e, v in qbo_state(server, company.realm_id).items()}
    before_unposted = {r.key for r in unposted(app)}
    before_cw = cw_batches(cw_sandbox)
    batch_id = submit(app)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and batch.colour == "red", batch.message
    assert "nothing was written" in batch.message
    failed = {i.record_key for i in items if i.state is ItemState.FAILED}
    assert all(i.message and i.fix_hint for i in items if i.state is ItemState.FAILED)
    assert documents(server, company.realm_id) == before_docs
    assert {e: len(v) for e, v in qbo_state(server, company.realm_id).items()} == before_refs
    assert {r.key for r in unposted(app)} == before_unposted
    assert cw_batches(cw_sandbox) == before_cw
    return {i.record_key for i in items if i.state is ItemState.SKIPPED}, failed


# ---- the tests ------------------------------------------------------------------------------

def test_a_blocked_selection_writes_nothing_then_receipts_post_as_connectwise_holds_them(
        app, client, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    curated = CURATED["connectwise"]["purchase_orders"]
    clean, failed = blocked_then_clean(app, qbo_sandbox, cw_sandbox, connected)
    partial = curated["partial_receipt"]
    taxed_us, taxed_ca = curated["purchase_tax_us"], curated["purchase_tax_canada"]
    # the second partial receipt; purchase tax without an account; the Canadian PO (CAD)
    assert sorted(k.split(":")[1] for k in failed) == [partial, taxed_us, taxed_ca]
    _batch, items = batch_of(app, max(_ids(app)))
    by_po = {i.record_key.split(":")[1]: i for i in items if i.state is ItemState.FAILED}
    assert by_po[taxed_us].message.startswith(f"PO {taxed_us} carries purchase tax 223.03, but "
                                              "no purchase tax account is chosen.")
    assert by_po[taxed_ca].message.startswith(f"PO {taxed_ca} carries purchase tax")
    failed = {k for k in failed if k.split(":")[1] == partial}
    refused = by_po[partial]
    assert refused.message.startswith(
        f"Vendor invoice number {CURATED['connectwise']['partial_receipt_vendor_invoice_number']}"
        f" is already used by receipt of PO {partial} in this selection.")

    before = {r.key: r for r in unposted(app)}
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert set(states(items)) == {"done"}, [(i.record_key, i.state, i.message) for i in items
                                            if i.state is not ItemState.DONE]
    assert batch.colour == "green", [(i.record_key, i.warnings) for i in items if i.warnings]
    # ConnectWise: exactly those records left the list; one accounting batch each.
    assert {r.key for r in unposted(app)} == set(before) - clean
    held = marks(cw_sandbox)
    assert sum(held.values()) == len(clean)
    assert held["A1"] == held["A2"] == held["T1"] == 1
    assert {i.cw_batch_identifier for i in items} == {
        b["batchIdentifier"] for b in cw_batches(cw_sandbox)
        if b["batchIdentifier"][11:12] in "PAT"}
    # QuickBooks: the documents equal ConnectWise's receipts.
    tables = cw_tables(cw_sandbox)
    entities = qbo_state(server, connected.realm_id)
    names = {e: {o["Id"]: o.get("FullyQualifiedName") or o.get("DisplayName") or o["Name"]
                 for o in entities.get(e, [])} for e in ("Vendor", "Item", "Account", "Term")}
    docs = {d["Id"]: d for d in documents(server, connected.realm_id)}
    receipts = {str(r["id"]): r for r in tables["receipts"].values()}
    seen = Counter()
    for item in items:
        if not item.record_key.startswith("rcv:"):
            continue
        rec = receipts[item.record_key.split(":")[2]]
        po = tables["purchase_orders"][rec["purchaseOrderId"]]
        doc = docs[item.qbo_id]
        vendor = tables["companies"][po["vendorCompany"]["id"]]
        seen["return" if rec["total"] < 0 else "bill"] += 1
        assert doc["_entity"] == ("VendorCredit" if rec["total"] < 0 else "Bill")
        assert names["Vendor"][doc["VendorRef"]["value"]] == \
            f"{vendor['name']} ({po['_vendorAccountNumber']})"
        assert Decimal(str(doc["TotalAmt"])) == abs(Decimal(str(rec["total"])))
        assert doc["TxnDate"] == rec["vendorInvoiceDate"][:10]  # the default date source
        assert f"portal:{item.request_token}" in doc["PrivateNote"]
        if rec["vendorInvoiceNumber"]:
            assert doc["DocNumber"] == rec["vendorInvoiceNumber"]
        else:
            seen["blank"] += 1
            assert "DocNumber" not in doc or not doc["DocNumber"]
        if doc["_entity"] == "Bill":
            assert names["Term"][doc["SalesTermRef"]["value"]] == "Net 30"
            assert doc["DueDate"] > doc["TxnDate"]
        assert names["Account"][doc["APAccountRef"]["value"]] == rec["_apAccount"]
        item_lines = [ln for ln in doc["Line"]
                      if ln["DetailType"] == "ItemBasedExpenseLineDetail"]
        assert len(item_lines) == len(rec["lineIds"])
        for qbo_line, line_id in zip(item_lines, rec["lineIds"]):
            line = tables["po_lines"][line_id]
            detail = qbo_line["ItemBasedExpenseLineDetail"]
            qty = abs(float((rec.get("quantities") or {}).get(str(line_id),
                                                              line["receivedQuantity"])))
            assert names["Item"][detail["ItemRef"]["value"]] == line["product"]["identifier"]
            assert detail["Qty"] == qty and detail["UnitPrice"] == line["unitCost"]
            assert Decimal(str(qbo_line["Amount"])) == (Decimal(str(qty)) * Decimal(
                str(line["unitCost"]))).quantize(Decimal("0.01"))
            if po.get("dropShipCustomerFlag"):
                seen["drop"] += 1
                assert detail["BillableStatus"] == "NotBillable"
        if rec["freightCost"]:
            seen["freight"] += 1
            [freight] = [ln for ln in doc["Line"]
                         if ln["DetailType"] == "AccountBasedExpenseLineDetail"]
            assert freight["Amount"] == rec["freightCost"]
            assert names["Account"][freight["AccountBasedExpenseLineDetail"]["AccountRef"][
                "value"]] == "Cost of Goods Sold:Freight In"
    assert seen["return"] == 1 and seen["blank"] == 1 and seen["drop"] >= 1 and \
        seen["freight"] == 1, seen
    # Adjustments: journal entries; the transfer between classes has no effect (classes off).
    journals = {d["DocNumber"]: d for d in docs.values() if d["_entity"] == "JournalEntry"}
    assert set(journals) == {"A1", "A2"}
    for number, adj in (("A1", tables["adjustments"][1]), ("A2", tables["adjustments"][2])):
        lines = {names["Account"][ln["JournalEntryLineDetail"]["AccountRef"]["value"]]:
                 (ln["JournalEntryLineDetail"]["PostingType"], ln["Amount"])
                 for ln in journals[number]["Line"]}
        amount = abs(adj["total"])
        asset = "Debit" if adj["total"] > 0 else "Credit"
        assert lines["Inventory Asset"] == (asset, amount)
        other = "Credit" if asset == "Debit" else "Debit"
        assert lines["Cost of Goods Sold:Inventory Shrinkage"] == (other, amount)
    [transfer] = [i for i in items if i.record_key == "xfr:1"]
    assert transfer.qbo_id is None and transfer.state is ItemState.DONE
    no_duplicates(server, connected.realm_id)

    # The refused partial receipt, with SuffixDocNumber: VIN-2.
    configure(app, connected.id, "purchases", partial_receipt_mode="SuffixDocNumber")
    batch_id = submit(app, failed)
    run_jobs(app)
    _batch, [second] = batch_of(app, batch_id)
    assert second.state is ItemState.DONE, second.message
    vin = CURATED["connectwise"]["partial_receipt_vendor_invoice_number"]
    assert second.qbo_doc_number == f"{vin}-2"
    assert marks(cw_sandbox)[f"P{partial}"] + marks(cw_sandbox)[f"P{partial}-2"] == 2
    assert not any(r.number == partial for r in unposted(app))
    no_duplicates(server, connected.realm_id)


def test_purchase_tax_posts_as_an_account_line_in_the_us(app, client, connected, qbo_sandbox,
                                                         cw_sandbox):
    """SPEC 9.2 / 4.3: US QuickBooks takes no tax codes on purchases, so ConnectWise's
    purchase tax detail lines become one account line to the purchase tax account."""
    _qbo, server = qbo_sandbox
    number = CURATED["connectwise"]["purchase_orders"]["purchase_tax_us"]
    [record] = [r for r in unposted(app) if r.number == number]
    accounts = {a["FullyQualifiedName"]: a["Id"]
                for a in qbo_state(server, connected.realm_id)["Account"]}
    _refresh_references(app, client, connected)  # the account chooser's list
    configure(app, connected.id, "purchases",
              purchase_tax_account=accounts["Cost of Goods Sold"])
    batch_id = submit(app, {record.key})
    run_jobs(app)
    batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE and batch.colour == "green", (item.message,
                                                                     item.warnings)
    rec = cw_tables(cw_sandbox)["receipts"][int(record.key.split(":")[2])]
    assert rec["tax"] > 0
    [bill] = [d for d in documents(server, connected.realm_id) if d["Id"] == item.qbo_id]
    [tax_line] = [ln for ln in bill["Line"]
                  if ln["DetailType"] == "AccountBasedExpenseLineDetail"]
    assert tax_line["Amount"] == rec["tax"]
    assert tax_line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] == \
        accounts["Cost of Goods Sold"]
    items_total = sum(Decimal(str(ln["Amount"])) for ln in bill["Line"]
                      if ln["DetailType"] == "ItemBasedExpenseLineDetail")
    assert items_total + Decimal(str(rec["tax"])) == Decimal(str(rec["total"]))
    assert Decimal(str(bill["TotalAmt"])) == Decimal(str(rec["total"]))
    assert {ln["ItemBasedExpenseLineDetail"].get("TaxCodeRef", {}).get("value", "NON")
            for ln in bill["Line"] if ln["DetailType"] == "ItemBasedExpenseLineDetail"} == \
        {"NON"}  # no tax codes on US purchases
    assert item.cw_tax == Decimal(str(rec["tax"]))
    assert record.key not in {r.key for r in unposted(app)}
    assert marks(cw_sandbox)[f"P{number}"] == 1


def test_purchase_tax_posts_with_the_line_codes_in_canada(app, client, connected,
                                                         qbo_sandbox, cw_sandbox):
    """SPEC 9.2 / 7.4 for a non-US company: every item line carries the mapped tax code
    (the CW level's Xref, `UseCwXref`), amounts net of tax, and QuickBooks' tax from the
    codes equals ConnectWise's; the bill's total is the receipt's."""
    from tests.integration.connect import consent

    _qbo, server = qbo_sandbox
    realm = CURATED["quickbooks"]["realm_canada"]
    response, _params = consent(client, realm=realm)
    assert response.status_code == 303, response.get_data(as_text=True)
    with session_scope(app) as session:
        canada = session.scalars(sa.select(Company).where(Company.realm_id == realm)).one()
        assert not canada.is_us
        company_id = canada.id
    number = CURATED["connectwise"]["purchase_orders"]["purchase_tax_canada"]
    [record] = [r for r in unposted(app) if r.number == number]
    with app.app_context(), session_scope(app) as session:
        batch = batches.submit(session, session.get(Company, company_id), [record],
                               user=None, options={}, batch_type=BatchType.INVENTORY)
        session.commit()
        batch_id, run_id = batch.id, batch.run_id
    with app.app_context():
        enqueue_run(RunKind.BATCH, run_id)
    run_jobs(app)
    batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE, item.message
    assert batch.colour == "green", item.warnings
    rec = cw_tables(cw_sandbox)["receipts"][int(record.key.split(":")[2])]
    entities = qbo_state(server, realm)
    [bill] = [d for d in entities["Bill"] if d["Id"] == item.qbo_id]
    codes = {c["Name"]: c["Id"] for c in entities["TaxCode"]}
    lines = [ln for ln in bill["Line"] if ln["DetailType"] == "ItemBasedExpenseLineDetail"]
    assert len(lines) == len(rec["lineIds"]) and len(bill["Line"]) == len(lines)
    assert {ln["ItemBasedExpenseLineDetail"]["TaxCodeRef"]["value"] for ln in lines} == \
        {codes["HST ON"]}
    net = sum(Decimal(str(ln["Amount"])) for ln in lines)
    assert net + Decimal(str(rec["tax"])) == Decimal(str(rec["total"]))
    assert bill["GlobalTaxCalculation"] == "TaxExcluded"
    assert Decimal(str(bill["TxnTaxDetail"]["TotalTax"])) == Decimal(str(rec["tax"]))
    assert Decimal(str(bill["TotalAmt"])) == Decimal(str(rec["total"]))
    assert bill.get("CurrencyRef", {}).get("value", "CAD") == "CAD"
    tables = cw_tables(cw_sandbox)
    po = tables["purchase_orders"][rec["purchaseOrderId"]]
    vendor = tables["companies"][po["vendorCompany"]["id"]]
    vendors = {v["Id"]: v["DisplayName"] for v in entities["Vendor"]}
    items = {i["Id"]: i["FullyQualifiedName"] for i in entities["Item"]}
    assert vendors[bill["VendorRef"]["value"]] == \
        f"{vendor['name']} ({po['_vendorAccountNumber']})"
    assert bill["TxnDate"] == rec["vendorInvoiceDate"][:10]
    assert bill["DocNumber"] == rec["vendorInvoiceNumber"]
    assert [items[ln["ItemBasedExpenseLineDetail"]["ItemRef"]["value"]] for ln in lines] == \
        [tables["po_lines"][i]["product"]["identifier"] for i in rec["lineIds"]]
    assert item.cw_tax == Decimal(str(rec["tax"])) and item.qbo_tax == item.cw_tax
    assert record.key not in {r.key for r in unposted(app)}
    assert marks(cw_sandbox)[f"P{number}"] == 1
    assert not qbo_state(server, connected.realm_id).get("Bill")  # the US company untouched


def test_document_date_is_the_first_close_however_receipts_are_batched_or_reclosed(
        app, connected, qbo_sandbox, cw_sandbox):
    """SPEC 9.2 DocumentDate: the day the PO was first closed. The second receipt posted
    alone still takes the first receipt's close; re-closing the PO afterwards moves
    ConnectWise's close date of the first receipt, but not its bill's date."""
    _qbo, server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    number = CURATED["connectwise"]["purchase_orders"]["partial_receipt"]
    configure(app, connected.id, "purchases", vendor_invoice_date_source="DocumentDate",
              partial_receipt_mode="SuffixDocNumber")
    first, second = sorted((r for r in unposted(app) if r.number == number),
                           key=lambda r: r.day)
    assert first.day < second.day
    opened = first.day

    def post(record: Record) -> dict[str, Any]:
        batch_id = submit(app, {record.key})
        run_jobs(app)
        _batch, [item] = batch_of(app, batch_id)
        assert item.state is ItemState.DONE, item.message
        [bill] = [d for d in documents(server, connected.realm_id) if d["Id"] == item.qbo_id]
        return bill

    assert post(second)["TxnDate"] == opened.isoformat()  # batched first, alone
    answer = requests.post(f"{cw_server.url}/_sim/reclose_po",
                           json={"po_id": int(first.source_refs[2]), "date": "2026-11-20"},
                           timeout=5)
    assert answer.status_code == 200, answer.text
    [moved] = [r for r in unposted(app) if r.number == number]
    assert moved.key == first.key and moved.day.isoformat() == "2026-11-20"
    bill = post(moved)
    assert bill["TxnDate"] == opened.isoformat()
    assert bill["DueDate"] == (opened + timedelta(days=30)).isoformat()  # Net 30
    no_duplicates(server, connected.realm_id)


def _ids(app: Any) -> list[int]:
    from portal.models import Batch

    with session_scope(app) as session:
        return list(session.scalars(sa.select(Batch.id)))


def test_adjustments_and_transfers_follow_their_setting(app, connected, qbo_sandbox,
                                                        cw_sandbox):
    _qbo, server = qbo_sandbox
    inventory = {"adj:1", "adj:2", "xfr:1"}
    configure(app, connected.id, "inventory", adjustments_and_transfers="Skip")
    batch_id = submit(app, inventory)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert states(items) == {"skipped": 3} and batch.colour == "green", batch.message
    assert inventory <= {r.key for r in unposted(app)} and not marks(cw_sandbox)

    configure(app, connected.id, "inventory", adjustments_and_transfers="MarkOnly")
    batch_id = submit(app, {"adj:1"})
    run_jobs(app)
    _batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE and item.qbo_id is None
    assert marks(cw_sandbox) == Counter({"A1": 1})
    assert not documents(server, connected.realm_id)

    # Journal entries, with classes: the transfer moves value from East to West.
    configure(app, connected.id, "inventory", adjustments_and_transfers="JournalEntry")
    configure(app, connected.id, "categories", use_classes=True, create_classes=True)
    batch_id = submit(app, {"xfr:1"})
    run_jobs(app)
    _batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE and item.qbo_entity == "JournalEntry", item.message
    [journal] = documents(server, connected.realm_id)
    classes = {ln["JournalEntryLineDetail"]["ClassRef"]["name"]:
               ln["JournalEntryLineDetail"]["PostingType"] for ln in journal["Line"]}
    assert classes == {"West": "Debit", "East": "Credit"} and journal["DocNumber"] == "T1"


def test_faults_and_lost_answers_post_each_receipt_once(app, connected, qbo_sandbox,
                                                        cw_sandbox):
    """10% errors, a 429 burst, dropped answers and an expired token: nothing posted twice,
    nothing lost, every posted record marked."""
    _qbo, server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean, _failed = blocked_then_clean(app, qbo_sandbox, cw_sandbox, connected)
    app.config["QBO_BATCH_SIZE"] = 4
    app.config["LOOKUP_DELAY_SECONDS"] = 0
    fault(server, kind="error", method="POST", path_regex=r"/batch$", rate=0.1, status=500)
    fault(server, kind="throttle", method="POST", path_regex=r"/batch$", count=2, after=1)
    fault(server, kind="drop_after_commit", method="POST", path_regex=r"/batch$", count=1,
          after=2)
    fault(server, kind="token_expire", method="POST", path_regex=r"/batch$", count=1, after=3)
    fault(cw_server, kind="error", method="POST", path_regex="/finance/accounting/batches$",
          rate=0.1, status=500)
    batch_id = submit(app, clean)
    run_jobs(app)
    fired = {r["kind"]: r["fired"] for r in requests.get(f"{server.url}/_sim/faults",
                                                          timeout=5).json()["rules"]}
    assert fired["throttle"] == 2 and fired["drop_after_commit"] == 1 and \
        fired["token_expire"] == 1, fired
    clear_faults(server)
    clear_faults(cw_server)
    batch, items = batch_of(app, batch_id)
    left = {i.record_key for i in items if i.state is not ItemState.DONE}
    if left:  # what a fault left is carried by one retry, which looks up before posting
        with app.app_context(), session_scope(app) as session:
            from portal.models import Batch

            retry = batches.retry(session, session.get(Batch, batch_id), user=None)
            session.commit()
            retry_id, run_id = retry.id, retry.run_id
        with app.app_context():
            enqueue_run(RunKind.BATCH, run_id)
        run_jobs(app)
        _retry, retried = batch_of(app, retry_id)
        assert set(states(retried)) == {"done"}, [(i.record_key, i.state, i.message)
                                                  for i in retried]
    no_duplicates(server, connected.realm_id)
    assert not clean & {r.key for r in unposted(app)}
    assert sum(marks(cw_sandbox).values()) == len(clean)


def test_a_sigkilled_worker_resumes_without_posting_or_marking_twice(
        app, connected, qbo_sandbox, cw_sandbox, database_url, redis_url, instance_path):
    """Killed while reading ConnectWise, while QuickBooks writes, and while ConnectWise
    marks; a restart finishes the batch: each receipt posted once and marked once."""
    import time

    from tests.integration.test_batch_crash import _count, _kill, _wait_for, _worker
    from tests.integration.test_cli import _env

    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean, _failed = blocked_then_clean(app, qbo_sandbox, cw_sandbox, connected)
    chosen = set(sorted(k for k in clean if k.startswith("rcv:"))[:12])
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
               PORTAL_RUN_STALE_SECONDS="1", PORTAL_LOOKUP_DELAY_SECONDS="0",
               PORTAL_QBO_BATCH_SIZE="4")
    batch_id = submit(app, chosen)

    # 1. Killed while reading ConnectWise's GL export (records still `selected`).
    fault(cw_server, kind="latency", method="POST", path_regex="/finance/accounting/export",
          latency_ms=3000, count=1)
    worker = _worker(env)
    _wait_for(lambda: batch_of(app, batch_id)[0].status is BatchStatus.RUNNING, worker, app,
              batch_id)
    time.sleep(1.0)
    _kill(worker)
    assert _count(app, batch_id, ItemState.SELECTED) == len(chosen)
    clear_faults(cw_server)

    # 2. Killed while QuickBooks writes a /batch (records `posting`; the write lands).
    fault(qbo_server, kind="latency", method="POST", path_regex=r"/batch$", latency_ms=1500)
    time.sleep(1.2)
    worker = _worker(env)
    _wait_for(lambda: _count(app, batch_id, ItemState.POSTED) >= 4
              and _count(app, batch_id, ItemState.POSTING) >= 1, worker, app, batch_id)
    _kill(worker)
    assert _count(app, batch_id, ItemState.POSTING) >= 1
    clear_faults(qbo_server)

    # 3. Killed while ConnectWise creates accounting batches (records `posted`).
    fault(cw_server, kind="latency", method="POST", path_regex="/finance/accounting/batches$",
          latency_ms=2000, count=1, after=2)
    time.sleep(1.2)
    worker = _worker(env)
    _wait_for(lambda: _count(app, batch_id, ItemState.MARKED) >= 2, worker, app, batch_id)
    time.sleep(0.5)
    _kill(worker)
    clear_faults(cw_server)

    # 4. A clean restart finishes it.
    time.sleep(1.2)
    worker = _worker(env)
    assert worker.wait(timeout=300) == 0, worker.stderr.read().decode()[-3000:]
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert states(items) == {"done": len(chosen)}, [(i.record_key, i.state, i.message)
                                                    for i in items]
    no_duplicates(qbo_server, connected.realm_id)
    assert sum(marks(cw_sandbox).values()) == len(chosen)
    assert not chosen & {r.key for r in unposted(app)}


def test_the_backlog_check_lists_vendors_items_and_their_accounts_for_the_editors(
        app, client, connected, qbo_sandbox):
    """Receipts go through the batch's own pre-flight in "Check the backlog": vendors, AP
    and freight accounts, items with their costing accounts (kept for Create), and the
    accounts of adjustments get editor rows naming the records that use them."""
    from tests.integration.test_mapping_scan import _values

    _qbo, server = qbo_sandbox
    configure(app, connected.id, "inventory", inventory_parts_as="Inventory")
    for path in ("/mappings/refresh", "/mappings/scan"):
        response = client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        assert response.status_code == 202, response.get_data(as_text=True)
        run_jobs(app)

    def rows(kind: str) -> dict[str, Any]:
        return {v.cw_value: v for v in _values(app, kind=kind)}

    accounts = rows("account")
    receipts = [r for r in unposted(app) if r.key.startswith("rcv:")]
    assert accounts["Accounts Payable"].records >= len(receipts)  # expenses use it too
    for name, user in (("Cost of Goods Sold:Freight In", "receipt of PO NW-PO-0007"),
                       ("Inventory Asset", "receipt of PO"),
                       ("Cost of Goods Sold:Inventory Shrinkage", "adjustment A1")):
        assert any(r.startswith(user) for r in accounts[name].record_refs), name
    vendors = {v: r for v, r in rows("vendor").items()
               if any("PO" in ref for ref in r.record_refs)}
    assert {r.status for r in vendors.values()} >= {"exact", "will_create"}
    items = {v: r for v, r in rows("item").items() if r.status == "will_create"
             and any("PO" in ref for ref in r.record_refs)}
    laptop = items["Hardware:Laptops:DELL-L5440"]
    assert laptop.create_fields["Type"] == "Inventory"
    assert laptop.create_fields["asset_account"] == "Inventory Asset"
    assert laptop.create_fields["cost_account"] == "Cost of Goods Sold:Hardware"
    created = client.hx("POST", f"/mappings/item/create?company={connected.id}",
                        token_from="/mappings/", data={"cw_value": laptop.cw_value})
    assert created.status_code == 200, created.get_data(as_text=True)
    made = {i.get("FullyQualifiedName"): i for i in qbo_state(server, connected.realm_id)["Item"]}
    item = made["Hardware:Laptops:DELL-L5440"]
    assert item["Type"] == "Inventory" and item["TrackQtyOnHand"] is True
    names = {a["Id"]: a["FullyQualifiedName"] for a in qbo_state(server,
                                                                  connected.realm_id)["Account"]}
    assert names[item["AssetAccountRef"]["value"]] == "Inventory Asset"
    assert names[item["ExpenseAccountRef"]["value"]] == "Cost of Goods Sold:Hardware"


def test_a_bill_without_a_number_whose_answer_was_lost_is_found_by_date_and_marker(
        app, connected, qbo_sandbox, cw_sandbox):
    """A blank vendor invoice number sends no DocNumber: after a dropped answer the bill is
    looked up by TxnDate and matched by the `portal:<token>` marker, never posted twice."""
    _qbo, server = qbo_sandbox
    blank = CURATED["connectwise"]["purchase_orders"]["blank_vendor_invoice"]
    [record] = [r for r in unposted(app) if r.number == blank]
    _create_what_it_needs(app, connected.id, record)  # so its /batch is the first to post
    app.config["LOOKUP_DELAY_SECONDS"] = 0
    requests.delete(f"{server.url}/_sim/requests", timeout=5)
    fault(server, kind="drop_after_commit", method="POST", path_regex=r"/batch$", count=1,
          after=1)  # the first /batch checks numbers and preferences; the second posts
    batch_id = submit(app, {record.key})
    run_jobs(app)
    clear_faults(server)
    _batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE, item.message
    bills = [d for d in documents(server, connected.realm_id)
             if f"portal:{item.request_token}" in d.get("PrivateNote", "")]
    assert len(bills) == 1 and not bills[0].get("DocNumber")
    assert bills[0]["Id"] == item.qbo_id
    assert item.attempts == 1  # found by the lookup: never sent again
    with session_scope(app) as session:
        from portal.models import BatchItemEvent

        moves = [(e.from_state, e.to_state, e.endpoint) for e in session.scalars(
            sa.select(BatchItemEvent).where(BatchItemEvent.item_id == item.id)
            .order_by(BatchItemEvent.id)) if e.to_state]
    assert ("posting", "posted", None) in moves  # settled by the lookup, not by an answer
    assert marks(cw_sandbox) == Counter({f"P{blank}": 1})


def _create_what_it_needs(app: Any, company_id: int, record: Record) -> None:
    """The vendor and items a record needs, created beforehand as Mappings would."""
    from portal.services import creation
    from portal.services.batching import preflight
    from portal.services.batching.engine import prefs_of
    from portal.services.batching.types.base import CompanyFacts, Context
    from portal.services.mapping import MappingSet

    with app.app_context(), session_scope(app) as session:
        company = session.get(Company, company_id)
        settings = cs.get_settings(session, company)
        qbo = clients.quickbooks(session, company)
        preflight.refresh_stale(session, company, qbo, clients.connectwise(session), 60)
        ctx = Context(CompanyFacts.of(company), settings,
                      MappingSet.load(session, company, prefs_of(settings)), {})
        report = preflight.evaluate(preflight.Preflight(PROCUREMENT, ctx),
                                    clients.connectwise(session), [record], qbo.batch)
        assert report.needs and not report.problems
        creation.ensure_all(session, company, qbo,
                            lambda: MappingSet.load(session, company, ctx.mapping.prefs),
                            list(report.needs.values()),
                            lambda ops, rid: qbo.batch(ops, request_id=rid))
        session.commit()
