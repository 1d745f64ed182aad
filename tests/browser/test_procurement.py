"""A person runs an inventory batch with both partial receipts of one PO, watches the second
fail with its hint, switches the Purchases tab to suffixed numbers, retries, and sees every
record turn green."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_batches import _retry
from tests.conftest import run_jobs

pytestmark = pytest.mark.browser
PARTIAL = "NW-PO-0003"


def test_a_refused_partial_receipt_is_fixed_in_the_settings_and_retried_to_green(
        app, live_server, page, client, connected, csp_violations):
    sign_in(page, live_server)
    page.get_by_role("link", name="Inventory", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Inventory")
    expect(page.locator("#inventory-help")).to_contain_text("Partial receipts")
    expect(page.locator("#inventory-help")).to_contain_text("quantities on hand")
    boxes = page.get_by_label(f"Select procurement record {PARTIAL}", exact=True)
    expect(boxes).to_have_count(2)
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Submit…").click()
    page.get_by_role("button", name="Post 2 procurement record(s)").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+$"))
    batch_url = page.url
    run_jobs(app)  # the worker; the page polls meanwhile
    progress = page.locator("[id$='-progress']")
    expect(progress).to_contain_text("Red", timeout=15000)
    rows = page.locator("tr[id^='item-']")
    expect(rows).to_have_count(2)
    failed = page.locator("tr.item-red")
    expect(failed).to_contain_text("is already used by receipt of PO")
    expect(failed).to_contain_text("Suffix the number")
    expect(page.locator("tr.item-grey")).to_contain_text("skipped (blocked)")

    page.goto(f"{live_server}/setup/quickbooks/{connected.id}/settings/purchases")
    page.get_by_label("Second receipt, same number").select_option("SuffixDocNumber")
    page.get_by_role("button", name="Save Purchases").click()
    expect(page.locator("#toasts")).to_contain_text("saved")

    _retry(page, batch_url)
    run_jobs(app)
    rows = page.locator("tr[id^='item-']")
    expect(rows).to_have_count(2, timeout=15000)
    for n in range(2):
        expect(rows.nth(n)).to_contain_text("done", timeout=15000)
        expect(rows.nth(n)).to_have_class(re.compile("item-green"))
    expect(page.locator("[id$='-progress']")).to_contain_text("Green")
    expect(page.get_by_role("link", name=re.compile(r"Bill INV-88003-2"))).to_have_count(1)
    assert csp_violations == []
