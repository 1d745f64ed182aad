"""The QuickBooks setup tabs show what was saved at once, in the heading too."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.db import session_scope
from portal.models import Company
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_a_saved_label_shows_in_the_heading_and_title_without_a_reload(
        app, live_server, page, make_user, csp_violations):
    make_user("admin")
    with session_scope(app) as session:
        company = Company(realm_id="9130350", qbo_name="Acme Services LLC", country="US",
                          is_us=True, is_default=True)
        session.add(company)
        session.flush()
        company_id = company.id
    sign_in(page, live_server)
    page.goto(f"{live_server}/setup/quickbooks/{company_id}/settings/company")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Settings of Acme Services LLC")
    page.evaluate("window.portalMarker = 'same page'")
    page.get_by_label("Label").fill("Acme US")
    page.get_by_role("button", name="Save Company").click()
    expect(page.locator("#toasts")).to_contain_text("Company settings saved")
    expect(heading).to_have_text("Settings of Acme US")
    expect(page).to_have_title("Acme US settings · portal")
    assert page.evaluate("window.portalMarker") == "same page"  # never reloaded
    assert csp_violations == []
