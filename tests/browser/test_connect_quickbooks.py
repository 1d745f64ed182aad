"""An admin connects a QuickBooks company through the sandbox's consent page."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
APP = {"client_id": "ABbrowserTestsClientId00000000000000000000001",
       "client_secret": "browser-tests-client-secret"}


def _sign_in_and_save_app(page, live_server, server):  # type: ignore[no-untyped-def]
    requests.post(f"{server.url}/_sim/apps", json={
        **APP, "redirect_uris": [f"{live_server}/setup/quickbooks/callback"]}, timeout=5)
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Set up QuickBooks Online").click()
    expect(page.locator("#redirect-uri")).to_have_value(
        f"{live_server}/setup/quickbooks/callback")
    page.get_by_label("Client id").fill(APP["client_id"])
    page.get_by_label("Client secret").fill(APP["client_secret"])
    page.get_by_label("Environment").select_option("custom")
    page.get_by_label("Discovery URL").fill(
        f"{server.url}/.well-known/openid_sandbox_configuration")
    page.get_by_label("API base URL").fill(server.url)
    page.get_by_role("button", name="Save app").click()
    expect(page.get_by_text("Intuit app saved.")).to_be_visible()


def test_connect_approve_and_land_back_connected(app, live_server, page, make_user,
                                                 qbo_sandbox, csp_violations):
    make_user("admin")
    _sandbox, server = qbo_sandbox
    _sign_in_and_save_app(page, live_server, server)
    page.get_by_role("link", name="Connect to QuickBooks").click()
    expect(page.get_by_role("heading", name="Intuit sandbox")).to_be_visible()
    page.get_by_label("Company").select_option(label="Northwind Managed IT (9130355377384946)")
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text("Connected to QuickBooks company Northwind Managed IT.")
           ).to_be_visible()
    row = page.locator("#qbo-companies tbody tr").first
    expect(row).to_contain_text("connected")
    expect(row).to_contain_text("default")
    expect(row).to_contain_text("Automated Sales Tax: off")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#step-3")).to_contain_text("Done")
    # The consent page is the sandbox's own site; only portal pages are checked for CSP.
    assert [p for p in csp_violations if "Content Security Policy" in p
            and live_server in p] == []


def test_deny_shows_a_clear_message(app, live_server, page, make_user, qbo_sandbox):
    make_user("admin")
    _sandbox, server = qbo_sandbox
    _sign_in_and_save_app(page, live_server, server)
    page.get_by_role("link", name="Connect to QuickBooks").click()
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("heading", name="QuickBooks access was not granted")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Click Connect again and choose Allow")
    page.get_by_role("link", name="Back to Set up QuickBooks Online").click()
    expect(page.get_by_text("No QuickBooks company is connected yet.")).to_be_visible()
