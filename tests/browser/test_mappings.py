"""A person fixes a near-miss in the customer editor and sees the problem count drop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
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


def _blocking_now(app) -> int:  # type: ignore[no-untyped-def]
    from portal.db import session_scope
    from portal.models import Company
    from portal.services import scan

    with session_scope(app) as session:
        company = session.query(Company).one()
        return scan.blocking(session, scan.latest(session, company))


def test_accept_all_confirms_what_is_left_and_updates_the_total(app, live_server, page, client,
                                                                connected, csp_violations):
    for path in ("/mappings/refresh", "/mappings/scan"):
        client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        run_jobs(app)
    sign_in(page, live_server)
    page.get_by_role("link", name="Mappings").click()
    page.get_by_role("link", name="Customers").click()
    near = page.locator("#editor-counts .count-near_miss")
    left = int(near.inner_text().split()[0])
    assert left >= 2
    row = page.locator("#editor-table tr", has=page.get_by_text("Acme Corp (ACME)", exact=True))
    row.get_by_role("button", name="Accept “ACME Corp (ACME)”").click()
    expect(near).to_have_text(f"{left - 1} near-miss")
    # A browser extension (a password manager, say) may style inputs through the CSSOM,
    # which the CSP allows; the swap must not copy that as an inline style attribute.
    page.evaluate("""document.querySelectorAll('#editor-table input[type=text]')
                     .forEach(function (input) { input.style.outline = '1px solid red'; })""")
    confirms: list[str] = []
    page.once("dialog", lambda dialog: (confirms.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Accept all near-misses").click()
    expect(near).to_have_text("0 near-miss")
    assert confirms and f"each of the {left - 1} near-miss value(s)" in confirms[0]
    expect(page.locator("#blocking-total")).to_have_text(str(_blocking_now(app)))
    expect(page.get_by_role("button", name="Accept all near-misses")).to_have_count(0)
    assert csp_violations == []


def test_a_finished_backlog_check_shows_without_a_reload(app, live_server, page, connected,
                                                         csp_violations):
    sign_in(page, live_server)
    page.get_by_role("link", name="Mappings").click()
    summary = page.locator("#scan-summary")
    expect(summary).to_contain_text("Not checked yet.")
    page.evaluate("window.portalMarker = 'same page'")
    page.locator("#scan-card").get_by_role("button", name="Check the backlog").click()
    expect(page.locator("#scan-slot")).to_contain_text("Queued")
    run_jobs(app)
    expect(summary).to_contain_text("Last check", timeout=15000)
    expect(summary).to_contain_text(f"{_blocking_now(app)} blocking problem(s)")
    expect(summary.get_by_text("to fix").first).to_be_visible()
    assert page.evaluate("window.portalMarker") == "same page"  # never reloaded
    assert csp_violations == []
