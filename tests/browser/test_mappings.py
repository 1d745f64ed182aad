"""A person fixes a near-miss in the customer editor and sees the problem count drop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, run_jobs

pytestmark = pytest.mark.browser


def test_accept_a_near_miss_and_watch_the_count_drop(app, live_server, page, client, connected,
                                                     csp_violations):
    for path in ("/mappings/refresh", "/mappings/scan"):
        client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        run_jobs(app)
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Mappings").click()
    page.get_by_role("link", name="Customers").click()
    total = page.locator("#blocking-total")
    before = int(total.inner_text())
    near = page.locator("#editor-counts .count-near_miss")
    near_before = int(near.inner_text().split()[0])
    row = page.locator("#editor-table tr", has=page.get_by_text("Acme Corp (ACME)", exact=True))
    expect(row).to_contain_text("pos 2:")
    row.get_by_role("button", name="Accept “ACME Corp (ACME)”").click()
    expect(row).to_contain_text("override")
    expect(total).to_have_text(str(before - 1))
    expect(near).to_have_text(f"{near_before - 1} near-miss")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#step-5")).to_contain_text(f"{before - 1} blocking problem(s)")
    assert csp_violations == []
