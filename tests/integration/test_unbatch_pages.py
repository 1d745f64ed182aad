"""The unbatch, validation and clearing screens over HTTP (as a browser submits them)."""

from __future__ import annotations

import pytest

from portal.models import ItemState
from tests.conftest import age_password, run_jobs
from tests.integration.batching import batch_of
from tests.integration.unbatching import INVOICES, post

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
