"""A person runs a payment sync, watches it finish, opens a red invoice's message and follows
its link to the QuickBooks payment that must be split."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.sandbox.demo_data import CURATED
from tests.browser.conftest import sign_in
from tests.conftest import run_jobs

pytestmark = pytest.mark.browser


def test_run_a_payment_sync_and_follow_a_red_invoice_to_quickbooks(
        app, live_server, page, connected, qbo_sandbox, csp_violations):
    sign_in(page, live_server)
    page.get_by_role("link", name="Payment sync").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Payment sync")
    since = page.get_by_label(re.compile("Sync payments changed since"))
    expect(since).not_to_have_value("")
    page.get_by_role("button", name="Sync payments").click()
    expect(page).to_have_url(re.compile(r"/payments/batches/\d+$"))
    expect(page.locator("#batch-status")).to_have_text("Queued")
    run_jobs(app)
    # the progress block polls until the run ends, then the invoice table reloads
    expect(page.locator("#batch-status")).to_have_text("Finished", timeout=15000)
    expect(page.locator("#batch-colour")).to_contain_text("Red")
    memo = CURATED["quickbooks"]["credit_memo_payment"]
    page.get_by_label("Status").select_option(value="failed")
    page.get_by_role("button", name="Show").click()
    row = page.locator("tr", has=page.get_by_text(memo["invoice_numbers"][0], exact=True))
    expect(row).to_contain_text("Split it in QuickBooks into one payment per invoice")
    expect(row.locator(".state")).to_have_text("failed")
    with page.expect_popup() as opened:
        row.get_by_role("link", name="Open the payment in QuickBooks").click()
    popup = opened.value
    expect(popup).to_have_url(re.compile(rf"/app/recvpayment\?txnId={memo['payment_id']}$"))
    expect(popup.locator("body")).to_contain_text(memo["payment_id"])
    assert csp_violations == []
