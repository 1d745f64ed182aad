"""A person unbatches a posted invoice with Void from its batch page, selects it again,
and sees the new generation green with its -r2 accounting batch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_batches import _tick
from tests.conftest import run_jobs
from tests.integration.unbatching import INVOICES, post

pytestmark = pytest.mark.browser


def test_unbatch_with_void_then_rebatch_turns_green_with_r2(
        app, live_server, page, client, connected, qbo_sandbox, cw_sandbox, csp_violations):
    number = INVOICES[0]
    batch, [item] = post(app, {number})
    sign_in(page, live_server)
    page.goto(f"{live_server}/batches/{batch.id}")
    row = page.locator(f"#item-{item.id}")
    expect(row).to_have_class(re.compile("item-green"))
    row.get_by_role("link", name="Unbatch").click()
    page.get_by_label("QuickBooks action").select_option("Void")
    page.get_by_role("button", name="Show again").click()
    expect(page.locator(f"#unbatch-{item.id}")).to_contain_text("Void")
    page.get_by_role("button", name="Unbatch 1 record(s)").click()
    expect(page).to_have_url(re.compile(rf"/batches/{batch.id}$"))
    run_jobs(app)
    page.reload()
    expect(page.locator(f"#item-{item.id}")).to_contain_text("unbatched")

    page.get_by_role("link", name="Invoices").click()
    _tick(page, number)
    expect(page.locator("tr", has_text=number).first).to_contain_text("unbatched")
    page.get_by_role("button", name="Submit…").click()
    page.get_by_role("button", name="Post 1 invoice(s)").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+$"))
    run_jobs(app)
    again = page.locator("tr[id^='item-']", has_text=number)
    expect(again).to_contain_text("done", timeout=15000)
    expect(again).to_have_class(re.compile("item-green"))
    expect(again).to_contain_text(f"{item.cw_batch_identifier}-r2")
    assert csp_violations == []
