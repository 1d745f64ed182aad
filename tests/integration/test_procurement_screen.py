"""Run new batch › Inventory: the selection screen, Validate only, Submit and the batch page
for procurement records (SPEC 6.1, 9.2, 9.4), over both sandboxes."""

from __future__ import annotations

import re

import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import Batch, BatchType, ItemState
from tests.conftest import run_jobs
from tests.integration.batching import batch_of
from tests.integration.test_batch_pages import _form, _refresh_references
from tests.integration.test_procurement_batches import configure, unposted

pytestmark = pytest.mark.integration
NEW = "/batches/new/inventory"


def _ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="record" value="(\d+)"', text)]


def test_the_screen_lists_receipts_adjustments_and_transfers_with_the_caveats(
        app, client, connected):
    rows = unposted(app)
    page = client.get(NEW, query_string=_form(connected))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Run new batch: Inventory" in text
    assert "Partial receipts." in text and "VIN-2" in text  # SPEC 9.2's help
    assert "does not change quantities on hand in QuickBooks" in text  # SPEC 9.4's caveat
    assert set(_ids(text)) == {r.cw_id for r in rows}
    assert {"Bill", "Vendor credit", "Journal entry"} <= set(re.findall(
        r"<td>(Bill|Vendor credit|Journal entry)</td>", text))
    configure(app, connected.id, "inventory", adjustments_and_transfers="Skip")
    text = client.get(NEW, query_string=_form(connected)).get_data(as_text=True)
    held = {r.cw_id for r in rows if r.kind in ("Adjustment", "Transfer")}
    assert held and not held & set(_ids(text))  # greyed: no checkbox
    assert "adjustments and transfers are set to Skip (Inventory tab)" in text


def test_validate_only_names_the_second_partial_receipt_and_writes_nothing(
        app, client, connected):
    _refresh_references(app, client, connected)
    rows = unposted(app)
    partial = [r for r in rows if r.number == "NW-PO-0003"]
    assert len(partial) == 2
    text = client.hx("GET", f"{NEW}/validate", query_string=_form(
        connected, [r.cw_id for r in partial])).get_data(as_text=True)
    assert ("Vendor invoice number INV-88003 is already used by receipt of PO NW-PO-0003 in "
            "this selection") in text
    clean = [r for r in rows if r.number in ("NW-PO-0001", "NW-PO-0007") or r.key == "adj:1"]
    text = client.hx("GET", f"{NEW}/validate", query_string=_form(
        connected, [r.cw_id for r in clean])).get_data(as_text=True)
    assert f"No problems found in the {len(clean)} selected" in text, text[:3000]
    assert text.count('<details class="document"') == len(clean)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0


def test_submit_runs_the_batch_and_the_page_links_each_document(app, client, connected,
                                                                 qbo_sandbox):
    rows = unposted(app)
    chosen = [r for r in rows if r.number in ("NW-PO-0001", "NW-PO-0005") or r.key == "adj:1"]
    data = _form(connected, [r.cw_id for r in chosen], csrf_token=client.csrf_token(NEW))
    response = client.post(NEW, data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.type is BatchType.INVENTORY and batch.colour in ("green", "yellow")
    assert {i.state for i in items} == {ItemState.DONE}, [(i.cw_number, i.message)
                                                         for i in items]
    text = client.hx("GET", f"/batches/{batch_id}/items").get_data(as_text=True)
    _qbo, server = qbo_sandbox
    paths = {"Bill": "bill", "VendorCredit": "vendorcredit", "JournalEntry": "journal"}
    assert {i.qbo_entity for i in items} == set(paths)
    for item in items:
        link = f'href="{server.url}/app/{paths[item.qbo_entity]}?txnId={item.qbo_id}"'
        assert link in text
        opened = requests.get(f"{server.url}/app/{paths[item.qbo_entity]}",
                              params={"txnId": item.qbo_id, "realmId": connected.realm_id},
                              timeout=10)
        assert opened.status_code == 200 and item.qbo_entity in opened.text
    assert "ConnectWise.aspx?routeTo=InvoiceFV" not in text
    csv = client.get(f"/batches/{batch_id}.csv")
    assert csv.status_code == 200
    lines = csv.get_data(as_text=True).splitlines()
    assert len(lines) == 1 + len(items)
    for item in items:
        assert any(item.cw_number in line and (item.qbo_doc_number or "") in line
                   for line in lines[1:])
    listed = client.get("/batches/", query_string={"type": "inventory"}).get_data(as_text=True)
    assert f"/batches/{batch_id}" in listed


def test_a_cancelled_inventory_batch_posts_nothing_and_its_retry_posts_once(
        app, client, connected, qbo_sandbox):
    rows = [r for r in unposted(app) if r.number in ("NW-PO-0001", "NW-PO-0002")]
    data = _form(connected, [r.cw_id for r in rows], csrf_token=client.csrf_token(NEW))
    batch_id = int(client.post(NEW, data=data).headers["Location"].rsplit("/", 1)[1])
    token = client.csrf_token(f"/batches/{batch_id}")
    assert client.post(f"/batches/{batch_id}/cancel",
                       data={"csrf_token": token}).status_code == 303
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.colour == "grey" and {i.state for i in items} == {ItemState.SKIPPED}
    assert all("cancelled by admin@example.test" in i.message for i in items)
    _qbo, server = qbo_sandbox
    from tests.integration.test_procurement_batches import documents

    assert documents(server, connected.realm_id) == []
    assert {r.key for r in rows} <= {r.key for r in unposted(app)}
    retried = client.post(f"/batches/{batch_id}/retry", data={"csrf_token": token})
    assert retried.status_code == 303, retried.get_data(as_text=True)
    run_jobs(app)
    _retry, again = batch_of(app, int(retried.headers["Location"].rsplit("/", 1)[1]))
    assert {i.state for i in again} == {ItemState.DONE}
    assert len(documents(server, connected.realm_id)) == len(rows)
    assert not {r.key for r in rows} & {r.key for r in unposted(app)}


def test_a_vendor_near_miss_blocks_its_receipts_with_the_spec_message(app, client, connected,
                                                                      qbo_sandbox):
    """SPEC 9.3: a vendor QuickBooks spells differently is never created again; the batch
    writes nothing and names both spellings, with the fix."""
    from portal import clients
    from tests.integration.test_procurement_batches import documents

    with app.app_context(), session_scope(app) as session:
        from portal.models import Company

        company = session.get(Company, connected.id)
        clients.quickbooks(session, company).create(
            "Vendor", {"DisplayName": "PAX8 (PAX8)", "CompanyName": "PAX8"})
        session.commit()
    _refresh_references(app, client, connected)
    rows = [r for r in unposted(app) if r.party == "Pax8"]
    assert rows
    data = _form(connected, [rows[0].cw_id], csrf_token=client.csrf_token(NEW))
    batch_id = int(client.post(NEW, data=data).headers["Location"].rsplit("/", 1)[1])
    run_jobs(app)
    batch, [item] = batch_of(app, batch_id)
    assert batch.colour == "red" and item.state is ItemState.FAILED
    assert item.message == ("Vendor 'Pax8 (PAX8)' has no exact match; QuickBooks has "
                            "'PAX8 (PAX8)'.")
    assert item.fix_hint.startswith("Rename the vendor on one side, or Accept the match")
    assert "/mappings/vendor?q=Pax8" in (item.fix_link or "")
    _qbo, server = qbo_sandbox
    assert documents(server, connected.realm_id) == []
