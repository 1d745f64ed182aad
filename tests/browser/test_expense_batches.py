"""A person runs an expense batch from Run new batch › Expenses, watches it, reads a failed
group's hint (a member vendor named like a payroll employee), fixes the setting it names,
retries, and sees every group turn green."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import run_jobs
from tests.integration.expenses import postable
from tests.integration.test_settings_tabs import _save

pytestmark = pytest.mark.browser


def _tick(page, number: str) -> None:  # type: ignore[no-untyped-def]
    label = f"Select expense group {number}"
    while not page.get_by_label(label, exact=True).count():
        page.get_by_role("button", name="Next").click()
    page.get_by_label(label, exact=True).check()


def test_run_an_expense_batch_watch_fix_and_retry_to_green(app, live_server, page, client,
                                                           connected, csp_violations):
    client.hx("POST", f"/mappings/refresh?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    saved = _save(client, app, connected.id, "contacts", append_account_name=[""])
    assert saved.status_code == 200
    rows = postable(app)
    twin = next(r for r in rows if r.party == "Maria Garcia" and r.target == "Bill")
    card = next(r for r in rows if r.party == "Emma Brown" and r.target == "Purchase (card)")
    sign_in(page, live_server)
    page.get_by_role("link", name="Expenses").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Run new batch: Expenses")
    expect(page.locator("#expense-selection")).to_contain_text("expenses skipped: not approved")
    for record in (twin, card):
        _tick(page, record.number)
    expect(page.locator("#selection-summary-line")).to_contain_text("2 selected of")
    page.get_by_role("button", name="Submit…").click()
    page.get_by_role("button", name="Post 2 expense group(s)").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+$"))
    progress = page.locator("[id$='-progress']")
    expect(progress).to_contain_text("Queued")
    run_jobs(app)  # the worker; the page is polling meanwhile
    failed = page.locator("tr[id^='item-']", has_text=twin.number)
    expect(failed).to_contain_text("an employee already uses this name", timeout=15000)
    expect(failed).to_contain_text("Add a middle initial in CW, or turn on")
    expect(failed).to_have_class(re.compile("item-red"))
    expect(progress).to_contain_text("Red")
    batch_url = page.url
    # the hint names the setting: turn it on, on the Contacts tab
    page.goto(f"{live_server}/setup/quickbooks/{connected.id}/settings/contacts")
    page.get_by_label("Append account name").check()
    page.get_by_role("button", name="Save Contacts").click()
    expect(page.locator("#toasts")).to_contain_text("Contacts settings saved")
    page.goto(batch_url)
    confirms: list[str] = []
    page.once("dialog", lambda dialog: (confirms.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Retry failed items").click()
    expect(page).not_to_have_url(batch_url)
    run_jobs(app)
    for record, document in ((twin, "Bill"), (card, "Purchase")):
        row = page.locator("tr[id^='item-']", has_text=record.number)
        expect(row).to_contain_text("done", timeout=15000)
        expect(row).to_have_class(re.compile("item-green"))
        expect(row.get_by_role("link", name=re.compile(document))).to_have_attribute(
            "href", re.compile("/app/(bill|expense)\\?txnId="))
    expect(page.locator("[id$='-progress']")).to_contain_text("Green")
    assert csp_violations == []
