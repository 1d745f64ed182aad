"""A person signs in, sees the checklist, runs the self-check and watches it finish."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, run_jobs

pytestmark = pytest.mark.browser


def test_sign_in_run_self_check_and_sign_out(app, live_server, page, make_user, csp_violations):
    make_user("admin")
    page.goto(f"{live_server}/")
    expect(page).to_have_url(f"{live_server}/auth/login?next=/")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill("wrong password entirely")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Setup checklist")).to_be_visible()
    expect(page.locator("#step-1")).to_contain_text("Create the ConnectWise security role")
    expect(page.locator("#step-11")).to_contain_text("To do")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Dashboard", "Set up ConnectWise", "Set up QuickBooks Online", "Mappings",
                  "Invoices", "Expenses", "Inventory", "Payment sync", "Review batches",
                  "Email", "Users", "Audit log"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()

    page.evaluate("window.portalMarker = 'same page'")
    page.get_by_role("button", name="Run self-check").click()
    expect(page.locator("#run-1-status")).to_have_text("Queued")
    run_jobs(app)  # the worker runs in this thread while the page keeps polling
    expect(page.locator("#run-1-status")).to_have_text("Succeeded", timeout=10_000)
    expect(page.locator("#run-1-bar")).to_have_attribute("value", "6")
    expect(page.locator("#run-1-bar")).to_have_attribute("max", "6")
    expect(page.locator("#run-1")).to_contain_text("Instance folder: instance folder")
    assert page.evaluate("window.portalMarker") == "same page"  # never reloaded
    assert page.locator("#run-1").get_attribute("hx-trigger") is None  # polling stopped

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to portal")).to_be_visible()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    assert csp_violations == []


def test_expired_session_on_an_htmx_click_lands_on_the_login_page(app, live_server, page,
                                                                   make_user, csp_violations):
    import sqlalchemy as sa

    from portal.db import session_scope
    from portal.models import UserSession

    make_user("admin")
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Health")).to_be_visible()
    expect(page.locator("#autosync-card")).not_to_contain_text("Loading")  # loads on its own
    with session_scope(app) as session:
        session.execute(sa.delete(UserSession))
    page.locator("#checklist-card").get_by_role("button", name="Refresh").click()
    expect(page.get_by_role("heading", name="Sign in to portal")).to_be_visible()
    expect(page).to_have_url(f"{live_server}/auth/login?next=/&expired=1")
    expect(page.get_by_text("Your session has ended")).to_be_visible()
    # htmx logs the 401 it was redirected from; nothing else may appear.
    assert [p for p in csp_violations if "401" not in p] == []


def test_needs_attention_card_follows_a_link_and_marks_an_item_handled(
        app, live_server, page, make_user, csp_violations):
    from portal.db import session_scope
    from portal.services import attention

    make_user("accountant")
    kind = attention.register("browser_check", "Voided outside portal")
    with app.app_context(), session_scope(app) as session:
        attention.raise_item(session, kind, "a", "Invoice 1001 was voided outside portal.",
                             link="/batches/")
        attention.raise_item(session, kind, "b", "Invoice 1002 was voided outside portal.",
                             link="/batches/")
        session.commit()
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("accountant@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    card = page.locator("#attention-card")
    expect(card.get_by_role("heading", name="Needs attention")).to_contain_text("2")
    page.evaluate("window.portalMarker = 'same page'")
    first = card.locator("li", has_text="Invoice 1001")
    first.get_by_role("button", name="Mark handled").click()
    expect(card).not_to_contain_text("Invoice 1001")
    expect(card).to_contain_text("Invoice 1002")
    assert page.evaluate("window.portalMarker") == "same page"  # swapped in place
    card.get_by_role("link", name="Open").click()
    expect(page).to_have_url(f"{live_server}/batches/")
    page.go_back()
    expect(page.locator("#attention-card")).not_to_contain_text("Invoice 1001")
    assert csp_violations == []
