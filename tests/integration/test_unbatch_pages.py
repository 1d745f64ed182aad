"""The unbatch, validation and clearing screens over HTTP (as a browser submits them)."""

from __future__ import annotations

import html
import re

import pytest

from portal.models import ItemState
from portal.services.selection import encode_ids
from tests.conftest import age_password, run_jobs
from tests.integration.batching import batch_of, qbo_documents, submit, unposted
from tests.integration.unbatching import CREDIT_MEMOS, INVOICES, post, start

pytestmark = pytest.mark.integration


def test_unbatch_from_the_batch_page_with_a_delete_asks_for_the_password(
        app, client, connected, qbo_sandbox, cw_sandbox):
    batch, [item] = post(app, {INVOICES[4]})
    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert f'id="item-{item.id}-unbatch"' in page and "Unbatch selected" in page
    preview = client.get(f"/batches/{batch.id}/unbatch?item={item.id}&action=Delete")
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and item.cw_batch_identifier in text
    assert "offered: None, Void, Delete" in text and 'id="unbatch-submit"' in text
    assert 'id="unbatch-leave-out"' not in text
    age_password(app)
    token = client.csrf_token(f"/batches/{batch.id}/unbatch?item={item.id}&action=Delete")
    form = {"csrf_token": token, "item": str(item.id), "action": "Delete"}
    prompt = client.post(f"/batches/{batch.id}/unbatch", data=form)
    assert "password" in prompt.get_data(as_text=True).lower()
    assert batch_of(app, batch.id)[1][0].state is ItemState.DONE  # nothing started
    done = client.post(f"/batches/{batch.id}/unbatch",
                       data={**form, "reauth_password": "correct horse battery staple"})
    assert done.status_code in (303, 200), done.get_data(as_text=True)[:500]
    run_jobs(app)
    assert batch_of(app, batch.id)[1][0].state is ItemState.UNBATCHED
    validation = client.get(f"/batches/{batch.id}/validate")
    assert validation.status_code == 200


def test_clear_page_previews_and_refuses_a_wrong_count(app, client, connected, cw_sandbox,
                                                       qbo_sandbox):
    page = client.get("/batches/clear?cut_off=2026-08-10&type=invoice")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="clear-count"' in text
    csv = client.get("/batches/clear.csv?cut_off=2026-08-10&type=invoice")
    assert csv.status_code == 200 and csv.get_data(as_text=True).startswith(("type", "\ufefftype"))
    token = client.csrf_token("/batches/clear")
    refused = client.post("/batches/clear", data={"csrf_token": token, "cut_off": "2026-08-10",
                                                  "type": "invoice", "confirm": "1"})
    assert refused.status_code == 409 and "Type the number of records" in \
        refused.get_data(as_text=True)
    age_password(app)  # clearing and its undo ask for the password again
    prompt = client.get("/batches/clear?cut_off=2026-08-10&type=invoice")
    assert 'id="clear-count"' not in prompt.get_data(as_text=True)
    assert "password" in prompt.get_data(as_text=True).lower()


def test_mark_one_record_as_handled_with_a_reason(app, client, connected, cw_sandbox,
                                                  qbo_sandbox):
    record = next(r for r in unposted(app) if r.number == INVOICES[0])
    page = client.get(f"/batches/new/invoices?company={connected.id}").get_data(as_text=True)
    assert f'id="handled-{record.cw_id}"' in page
    form_url = f"/batches/clear/record?company={connected.id}&type=invoice&record={record.cw_id}"
    assert client.get(form_url).status_code == 200
    token = client.csrf_token(form_url)
    data = {"csrf_token": token, "company": str(connected.id), "type": "invoice",
            "record": str(record.cw_id)}
    refused = client.post("/batches/clear/record", data={**data, "reason": " "})
    assert refused.status_code == 409 and "Give a reason" in refused.get_data(as_text=True)
    done = client.post("/batches/clear/record",
                       data={**data, "reason": "Invoiced by hand in QuickBooks in 2025"})
    assert done.status_code == 303
    run_jobs(app)
    assert INVOICES[0] not in {r.number for r in unposted(app)}
    clear_page = client.get("/batches/clear").get_data(as_text=True)
    assert "Invoiced by hand in QuickBooks in 2025" in clear_page
    assert "CLEAR-" in clear_page and f"-I{INVOICES[0]}" in clear_page
    dashboard = client.get("/").get_data(as_text=True)
    assert "Clearing #" in dashboard  # checklist step 7


def test_rebatch_choice_on_the_confirmation_and_validation_by_range(
        app, client, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    batch, [item] = post(app, {INVOICES[1]})
    start(app, batch.id, {item.cw_number}, "None")
    sync = next(d for d in qbo_documents(server, connected.realm_id)
                if d["Id"] == item.qbo_id)["SyncToken"]
    base = f"/batches/new/invoices?company={connected.id}&filtered=1&from=&to="
    grid = client.get(base).get_data(as_text=True)
    assert "unbatched (generation 1)" in grid
    confirm = client.get(f"{base}&record={item.cw_id}&act=confirm").get_data(as_text=True)
    assert 'name="rebatch" value="adopt"' in confirm
    token = client.csrf_token(f"{base}&record={item.cw_id}&act=confirm")
    answer = client.post("/batches/new/invoices", data={
        "csrf_token": token, "filtered": "1", "company": str(connected.id),
        "summary": "Default", "from": "", "to": "", "sel": encode_ids({item.cw_id}),
        "rebatch": "adopt"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:400]
    run_jobs(app)
    new_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    _new, [again] = batch_of(app, new_id)
    assert again.state is ItemState.DONE and again.rebatch_mode == "adopt"
    assert again.qbo_id == item.qbo_id
    assert next(d for d in qbo_documents(server, connected.realm_id)
                if d["Id"] == item.qbo_id)["SyncToken"] == sync  # adopted unchanged

    token = client.csrf_token("/batches/validation")
    started = client.post("/batches/validation", data={
        "csrf_token": token, "company": str(connected.id), "type": "invoice",
        "from": item.record_date.isoformat(), "to": item.record_date.isoformat()})
    assert started.status_code == 303
    run_jobs(app)
    report = client.get(started.headers["Location"]).get_data(as_text=True)
    assert "1 checked, 0 mismatched" in report and item.cw_number in report
    assert "The latest validation checked 1 document(s): all match." in \
        client.get("/").get_data(as_text=True)  # checklist step 11


def test_retry_one_record_from_its_row(app, client, connected, qbo_sandbox, cw_sandbox):
    batch_id = submit(app)  # the whole backlog: pre-flight blocks it, nothing is written
    run_jobs(app)
    _batch, items = batch_of(app, batch_id)
    waiting = next(i for i in items if i.state is ItemState.SKIPPED)  # on the first page
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert f'id="item-{waiting.id}-retry"' in page
    token = client.csrf_token(f"/batches/{batch_id}")
    answer = client.post(f"/batches/{batch_id}/items/{waiting.id}/retry",
                         data={"csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:300]
    run_jobs(app)
    new_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    _new, [moved] = batch_of(app, new_id)
    assert moved.cw_number == waiting.cw_number and moved.state is ItemState.DONE, \
        moved.message
    _old, after = batch_of(app, batch_id)
    assert [i.state for i in after if i.id == waiting.id] == [ItemState.RETRIED]
    assert sum(i.state is ItemState.RETRIED for i in after) == 1  # the others stay


def test_the_preview_can_leave_the_refused_records_out(app, client, connected, qbo_sandbox,
                                                       cw_sandbox):
    batch, items = post(app, {INVOICES[3], CREDIT_MEMOS[1]})
    by_number = {i.cw_number: i for i in items}
    ids = "&".join(f"item={i.id}" for i in items)
    text = client.get(f"/batches/{batch.id}/unbatch?{ids}&action=Void").get_data(as_text=True)
    assert "Void is not offered for QuickBooks CreditMemo" in text
    assert 'id="unbatch-submit"' not in text
    link = re.search(r'href="([^"]+)" id="unbatch-leave-out"', text).group(1)
    kept = client.get(html.unescape(link)).get_data(as_text=True)
    assert f'id="unbatch-{by_number[INVOICES[3]].id}"' in kept
    assert f'id="unbatch-{by_number[CREDIT_MEMOS[1]].id}"' not in kept
    assert 'id="unbatch-submit"' in kept
