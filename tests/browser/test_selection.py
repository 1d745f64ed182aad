"""The selection screen tells the truth as a person ticks boxes and types dates."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def _open_invoices(page, live_server):  # type: ignore[no-untyped-def]
    sign_in(page, live_server)
    page.get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invoices")


def test_the_counter_follows_each_tick_and_counts_other_pages(app, live_server, page,
                                                              connected, csp_violations):
    _open_invoices(page, live_server)
    line = page.locator("#selection-summary-line")
    total = int(re.search(r"of (\d+) unposted", line.inner_text()).group(1))
    assert total > 100  # two pages, so a selection is carried from one to the other
    expect(line).to_contain_text(f"0 selected of {total}")
    boxes = page.locator("#invoice-grid input[name=record]")
    boxes.nth(0).click()  # the mouse
    expect(line).to_contain_text(f"1 selected of {total}")
    boxes.nth(1).focus()
    page.keyboard.press("Space")  # the keyboard
    expect(line).to_contain_text(f"2 selected of {total}")
    boxes.nth(0).click()
    expect(line).to_contain_text(f"1 selected of {total}")
    boxes.nth(0).click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#invoice-selection")).to_contain_text("Page 2 of")
    expect(line).to_contain_text(f"2 selected of {total}")  # carried from page 1
    page.locator("#invoice-grid input[name=record]").first.click()
    expect(line).to_contain_text(f"3 selected of {total}")
    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#invoice-selection")).to_contain_text("Page 1 of")
    expect(line).to_contain_text(f"3 selected of {total}")
    assert csp_violations == []
