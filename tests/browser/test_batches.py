"""A person runs a batch, watches it, follows a failed record's hint to the mapping editor,
fixes it, retries, and sees the record turn green."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.db import session_scope
from portal.models import MappingValue

from tests.conftest import PASSWORD, run_jobs
from tests.integration.batching import unposted

pytestmark = pytest.mark.browser


def test_run_watch_fix_retry_turns_green(app, live_server, page, client, connected,
                                         csp_violations):
    for path in ("/mappings/refresh", "/mappings/scan"):
        client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        run_jobs(app)
    with session_scope(app) as session:  # an Acme invoice whose only problem is the name
        other = {record for value in session.scalars(sa.select(MappingValue))
                 if value.blocking and value.cw_value != "Acme Corp (ACME)"
                 for record in value.record_refs}
    acme = next(r for r in unposted(app) if r.company == "Acme Corp"
                and f"invoice {r.number}" not in other)
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invoices")
    while not page.get_by_label(f"Select invoice {acme.number}", exact=True).count():
        page.get_by_role("button", name="Next").click()
    page.get_by_label(f"Select invoice {acme.number}", exact=True).check()
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
    row.get_by_role("link", name="Fix in Mappings").click()
    editor_row = page.locator("#editor-table tr", has=page.get_by_text("Acme Corp (ACME)",
                                                                      exact=True))
    editor_row.get_by_role("button", name="Accept “ACME Corp (ACME)”").click()
    expect(editor_row).to_contain_text("override")
    page.goto(batch_url)
    page.get_by_role("button", name="Retry failed items").click()
    expect(page).not_to_have_url(batch_url)
    run_jobs(app)
    row = page.locator("tr[id^='item-']", has_text=acme.number)
    expect(row).to_contain_text("done", timeout=15000)
    expect(row).to_have_class(re.compile("item-green"))
    expect(page.locator("[id$='-progress']")).to_contain_text("Green")
    assert csp_violations == []
