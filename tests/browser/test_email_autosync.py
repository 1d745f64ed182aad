"""Email and AutoSync in the browser: set up SMTP delivery, send a test email and read it
in the sandbox's mailbox; turn AutoSync on and see the scheduled run appear."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from portal.services import scheduler
from tests.browser.conftest import sign_in
from tests.integration.mail import mailbox, post_clean_invoices  # noqa: F401 - fixture
from tests.integration.test_autosync import mapped  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


@pytest.fixture()
def sink_in_sandbox(qbo_sandbox, mailbox):  # type: ignore[no-untyped-def]
    """The SMTP sink attached to the QuickBooks sandbox, as `portal demo` does."""
    sandbox, server = qbo_sandbox
    sandbox.mailbox = mailbox
    yield server
    sandbox.mailbox = None


def test_smtp_delivery_a_test_email_and_the_demo_mailbox(
        app, live_server, page, connected, mailbox, sink_in_sandbox, csp_violations):
    sign_in(page, live_server)
    page.goto(f"{live_server}/email/")
    page.get_by_label("Host").fill(mailbox.host)
    page.get_by_label("Port").fill(str(mailbox.port))
    page.get_by_label("Security").select_option("none")
    page.get_by_label("From address").fill("billing@northwind.example")
    page.get_by_role("button", name="Save SMTP server").click()
    expect(page.get_by_text("SMTP server saved.")).to_be_visible()
    page.goto(f"{live_server}/setup/quickbooks/{connected.id}/settings/email")
    page.get_by_label("Delivery").select_option("Smtp")
    page.get_by_role("button", name="Save Email").click()
    expect(page.locator("#toasts")).to_contain_text("Email settings saved")
    expect(page.locator("#email-preview-subject")).to_have_text(
        "Invoice 10042 from Northwind Managed IT")
    page.get_by_label("Subject").fill("Your invoice {{ invoice.number }}")
    expect(page.locator("#email-preview-subject")).to_have_text("Your invoice 10042")
    page.get_by_label("Body").fill("Hi {{ customer.nickname }}")
    expect(page.locator("#email-preview-error")).to_contain_text("Unknown name")
    page.get_by_label("Body").fill("Pay {{ invoice.total|money }} here")
    expect(page.locator("#email-preview-text")).to_contain_text("Pay 1,234.50 here")
    page.get_by_role("button", name="Send a test email to me").click()
    expect(page.locator("#email-test-result")).to_contain_text(
        "A test email went to admin@example.test")
    assert csp_violations == []  # the portal's pages; the sandbox page has no favicon
    page.goto(f"{sink_in_sandbox.url}/_sim/mailbox")
    expect(page.get_by_role("heading", name="Your invoice 10042")).to_be_visible()
    expect(page.get_by_text("Pay 1,234.50 here")).to_be_visible()


def test_turning_autosync_on_and_a_scheduled_run_appears(
        app, live_server, page, mapped, qbo_sandbox, csp_violations):  # noqa: F811
    post_clean_invoices(app, qbo_sandbox, count=2)
    sign_in(page, live_server)
    page.goto(f"{live_server}/setup/quickbooks/{mapped.id}/settings/autosync")
    expect(page.get_by_label("Expenses")).to_be_enabled()
    page.get_by_label("AutoSync on").check()
    page.get_by_label("Invoices").check()
    page.get_by_label("Interval (minutes)").fill("15")
    page.get_by_role("button", name="Save AutoSync").click()
    expect(page.locator("#toasts")).to_contain_text("AutoSync settings saved")
    expect(page.locator(f"#autosync-state-{mapped.id}")).to_contain_text("due now")
    ticker = scheduler.Ticker(app, every=0.5).start()  # the worker's scheduler thread
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ticker.ticks:
            time.sleep(0.2)
    finally:
        ticker.stop()
    page.goto(f"{live_server}/")
    card = page.locator("#autosync-card")
    expect(card).to_contain_text("AutoSync on")  # the card loads on its own
    expect(card.get_by_role("link", name="batch #")).to_be_visible()
    card.get_by_role("link", name="batch #").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Batch #")
    assert csp_violations == []
