"""A person runs a batch, watches it, follows a failed record's hint to the mapping editor,
fixes it, retries, and sees every record turn green."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.db import session_scope
from portal.models import MappingValue

from tests.browser.conftest import sign_in
from tests.conftest import run_jobs
from tests.integration.batching import unposted

pytestmark = pytest.mark.browser


def _acme_and_clean(app, client, connected):  # type: ignore[no-untyped-def]
    """An Acme invoice whose only problem is the customer's spelling, and two invoices
    with no problem at all (from the backlog check)."""
    for path in ("/mappings/refresh", "/mappings/scan"):
        client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        run_jobs(app)
    with session_scope(app) as session:
        blocked = {value.cw_value: set(value.record_refs)
                   for value in session.scalars(sa.select(MappingValue)) if value.blocking}
    other = {r for value, refs in blocked.items() if value != "Acme Corp (ACME)" for r in refs}
    every = {r for refs in blocked.values() for r in refs}
    rows = unposted(app)
    acme = next(r for r in rows if r.party == "Acme Corp"
                and f"invoice {r.number}" not in other)
    clean = [r for r in rows if f"invoice {r.number}" not in every and r.total > 0][:2]
    return acme, clean


def _sign_in(page, live_server):  # type: ignore[no-untyped-def]
    sign_in(page, live_server)
    page.get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invoices")


def _tick(page, number: str) -> None:  # type: ignore[no-untyped-def]
    while not page.get_by_label(f"Select invoice {number}", exact=True).count():
        page.get_by_role("button", name="Next").click()
    page.get_by_label(f"Select invoice {number}", exact=True).check()


def _accept_the_mapping(page, row) -> None:  # type: ignore[no-untyped-def]
    row.get_by_role("link", name="Fix in Mappings").click()
    editor_row = page.locator("#editor-table tr", has=page.get_by_text("Acme Corp (ACME)",
                                                                      exact=True))
    editor_row.get_by_role("button", name="Accept “ACME Corp (ACME)”").click()
    expect(editor_row).to_contain_text("override")


def _retry(page, batch_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(batch_url)
    confirms: list[str] = []
    page.once("dialog", lambda dialog: (confirms.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Retry failed items").click()
    expect(page).not_to_have_url(batch_url)
    assert confirms and "to a new batch" in confirms[0]


def test_a_blocked_batch_shows_grey_skipped_rows_and_one_retry_turns_all_green(
        app, live_server, page, client, connected, csp_violations):
    acme, clean = _acme_and_clean(app, client, connected)
    assert len(clean) == 2
    _sign_in(page, live_server)
    for record in (acme, *clean):
        _tick(page, record.number)
    page.get_by_role("button", name="Submit…").click()
    page.get_by_role("button", name="Post 3 invoice(s)").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+$"))
    run_jobs(app)
    progress = page.locator("[id$='-progress']")
    expect(progress).to_contain_text("Red", timeout=15000)
    expect(progress).to_contain_text("nothing was written")
    failed = page.locator("tr[id^='item-']", has_text=acme.number)
    expect(failed).to_have_class(re.compile("item-red"))
    for record in clean:  # not posted because another record blocked the batch: grey
        row = page.locator("tr[id^='item-']", has_text=record.number)
        expect(row).to_have_class(re.compile("item-grey"))
        expect(row).to_contain_text("skipped (blocked)")
    batch_url = page.url
    _accept_the_mapping(page, failed)
    _retry(page, batch_url)
    run_jobs(app)
    rows = page.locator("tr[id^='item-']")
    expect(rows).to_have_count(3, timeout=15000)
    for record in (acme, *clean):
        row = page.locator("tr[id^='item-']", has_text=record.number)
        expect(row).to_contain_text("done", timeout=15000)
        expect(row).to_have_class(re.compile("item-green"))
    expect(page.locator("[id$='-progress']")).to_contain_text("Green")
    page.goto(batch_url)  # the first batch no longer says red: its records moved on
    expect(page.locator("[id$='-progress']")).not_to_contain_text("Red")
    assert csp_violations == []


def test_run_watch_fix_retry_turns_green(app, live_server, page, client, connected,
                                         csp_violations):
    acme, _clean = _acme_and_clean(app, client, connected)
    _sign_in(page, live_server)
    _tick(page, acme.number)
    page.get_by_role("button", name="Validate only").click()
    expect(page.locator("#selection-validation")).to_contain_text("Acme Corp")
    page.get_by_role("button", name="Submit…").click()
    page.get_by_role("button", name="Post 1 invoice(s)").click()
    expect(page).to_have_url(re.compile(r"/batches/\d+$"))
    progress = page.locator("[id$='-progress']")
    expect(progress).to_contain_text("Queued")
    run_jobs(app)  # the worker; the page is polling meanwhile
    row = page.locator("tr[id^='item-']", has_text=acme.number)
    expect(row).to_contain_text("failed", timeout=15000)
    expect(row).to_contain_text("Accept the QuickBooks spelling")
    expect(progress).to_contain_text("Red")
    batch_url = page.url
    _accept_the_mapping(page, row)
    _retry(page, batch_url)
    run_jobs(app)
    row = page.locator("tr[id^='item-']", has_text=acme.number)
    expect(row).to_contain_text("done", timeout=15000)
    expect(row).to_have_class(re.compile("item-green"))
    expect(page.locator("[id$='-progress']")).to_contain_text("Green")
    assert csp_violations == []
