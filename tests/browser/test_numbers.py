"""How the numbers look in Chromium at 1280 px: message rows of a sane height, amounts
right-aligned, sortable headers and the location checkboxes worked from the keyboard."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.integration.test_numbers import make_batch, make_company

pytestmark = pytest.mark.browser

MESSAGE = ("QuickBooks refused the invoice: the customer 'Northwind Traders (NWT)' is inactive "
           "in QuickBooks (code 610, Object Not Found), so nothing can be posted to it until "
           "it is made active again.")
HINT = "Make the customer active in QuickBooks, then retry."


def _sign_in(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


@pytest.fixture()
def company(app, make_user):  # type: ignore[no-untyped-def]
    make_user("admin")
    return make_company(app)


def test_message_rows_stay_short_at_1280_px(app, live_server, page, company, csp_violations):
    items = [{"cw_amount": Decimal(f"-{n}400.00"), "qbo_amount": Decimal(f"-{n}400.00"),
              "currency": "USD", "message": MESSAGE, "fix_hint": HINT, "party": "Northwind",
              "qbo_entity": "CreditMemo", "qbo_id": str(n), "qbo_doc_number": f"CM-{n}",
              "cw_batch_identifier": f"PORTAL-I-{n:06d}",
              "cw_tax": Decimal("12.50"), "qbo_tax": Decimal("12.51"),
              "warnings": ["Tax differs from ConnectWise by 0.01."]}
             for n in range(1, 6)]
    batch_id = make_batch(app, company, items)
    page.set_viewport_size({"width": 1280, "height": 900})
    _sign_in(page, live_server)
    page.goto(f"{live_server}/batches/{batch_id}")
    rows = page.locator("tr[id^='item-']")
    expect(rows).to_have_count(5)
    for n in range(5):
        box = rows.nth(n).bounding_box()
        assert box is not None and box["height"] < 180, box
    message = page.locator("td.wide").first.bounding_box()
    table = page.locator(f"#batch-{batch_id}-table").bounding_box()
    assert message is not None and table is not None
    assert message["width"] >= 0.35 * table["width"], (message, table)
    assert table["x"] + table["width"] <= 1280  # no sideways scrolling
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    amount = rows.first.locator("td.num").first
    expect(amount).to_contain_text("-$1,400.00")
    assert amount.evaluate("cell => getComputedStyle(cell).textAlign") == "right"
    assert csp_violations == []


def test_review_list_charts_and_keyboard_sorting(app, live_server, page, company,
                                                 csp_violations):
    for amount in ("1200.00", "-300.00", "75.50"):
        make_batch(app, company, [{"cw_amount": Decimal(amount), "currency": "USD"}])
    page.set_viewport_size({"width": 1280, "height": 900})
    _sign_in(page, live_server)
    page.goto(f"{live_server}/batches/")
    chart = page.locator("#chart-posted-usd svg")
    expect(chart.locator("rect.bar")).to_have_count(2)  # one month: invoices and credits
    expect(chart.locator("rect.bar-credit title")).to_have_text(re.compile(r"-\$300\.00$"))
    header = page.get_by_role("link", name=re.compile("^Type"))
    header.focus()
    page.keyboard.press("Enter")
    expect(page.locator("th[aria-sort]")).to_have_text(re.compile("^Type"))
    expect(page).to_have_url(re.compile(r"sort=type"))
    page.locator("#filter-colour").select_option("green")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"colour=green.*sort=type|sort=type.*colour=green"))
    expect(page.locator("th[aria-sort]")).to_have_text(re.compile("^Type"))
    assert csp_violations == []

