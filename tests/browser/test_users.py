"""An admin changes roles: confirmation, the password asked again, and their own role."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, age_password

pytestmark = pytest.mark.browser


def _sign_in(page, live_server: str) -> None:
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Setup checklist")).to_be_visible()


def test_role_change_asks_for_the_password_then_finishes(app, live_server, page, make_user,
                                                          csp_violations):
    make_user("admin")
    other = make_user("viewer")
    _sign_in(page, live_server)
    age_password(app)
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.goto(f"{live_server}/users/")
    page.evaluate("window.portalMarker = 'same page'")

    page.locator(f"#role-{other.id}").select_option("accountant")
    prompt = page.locator("#reauth-prompt")
    expect(prompt).to_be_visible()
    assert questions == [("Change the role of viewer@example.test? They are signed out "
                          "everywhere.")]
    prompt.get_by_label("Your password").fill("not the password")
    prompt.get_by_role("button", name="Confirm").click()
    expect(page.locator("#reauth-error")).to_have_text("That is not your password; try again.")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#reauth-prompt")).to_have_count(0)
    expect(page.locator(f"#role-{other.id}")).to_have_value("accountant")
    assert page.evaluate("window.portalMarker") == "same page"  # carried on in place
    # The wrong password's answer is a 422 (a field error), which Chromium logs.
    assert [p for p in csp_violations if "status of 422" not in p] == []


def test_changing_ones_own_role_shows_the_new_role_at_once(app, live_server, page, make_user,
                                                           csp_violations):
    admin = make_user("admin")
    make_user("admin", email="boss@example.test")
    _sign_in(page, live_server)
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.goto(f"{live_server}/users/")
    expect(page.locator(".whoami .badge")).to_have_text("Admin")
    page.locator(f"#role-{admin.id}").select_option("viewer")
    expect(page).to_have_url(f"{live_server}/")
    expect(page.locator(".whoami .badge")).to_have_text("Viewer")
    expect(page.get_by_text("Your role is now Viewer.")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Users", exact=True)).to_have_count(0)
    assert questions[0].startswith("Change your own role?")
    assert csp_violations == []
