"""The dashboard checklist: numbered as the setup guide, and links each role may follow."""

from __future__ import annotations

import re

import pytest

from portal.db import session_scope
from portal.models import Company

pytestmark = pytest.mark.integration


def _steps(html: str) -> dict[int, str]:
    return {int(n): body for n, body in re.findall(
        r'<li class="step [^"]+" id="step-(\d+)">(.*?)</li>', html, re.S)}


@pytest.fixture()
def company(app) -> int:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        row = Company(realm_id="9130350", qbo_name="Acme Services LLC", country="US",
                      is_us=True, is_default=True)
        session.add(row)
        session.flush()
        return row.id


def test_the_steps_read_one_to_eleven_and_say_why_nine_has_no_check(client, login_as):
    login_as("admin")
    steps = _steps(client.get("/").get_data(as_text=True))
    assert list(steps) == list(range(1, 12))
    for number, body in steps.items():
        assert f"{number}. " in body
    assert "When needed" in steps[9] and "Unbatch when needed" in steps[9]
    assert "Nothing to check here" in steps[9] and "<a " not in steps[9]


@pytest.mark.parametrize(("role", "linked"), [
    ("admin", {1, 2, 3, 4, 5, 6, 7, 8, 10, 11}),
    ("accountant", {4, 5, 6, 8, 10, 11}),
    ("viewer", {11}),
])
def test_each_role_gets_links_it_may_follow_and_no_others(app, client, login_as, company,
                                                          role, linked):
    login_as(role)
    steps = _steps(client.get("/").get_data(as_text=True))
    links = {n: re.search(r'<a href="([^"]+)"', body) for n, body in steps.items()}
    assert {n for n, found in links.items() if found} == linked
    for number in linked:
        response = client.get(links[number].group(1))
        assert response.status_code in (200, 302), (number, response.status_code)
        if response.status_code == 302:  # the settings index opens the first tab
            assert client.get(response.headers["Location"]).status_code == 200
    for number in set(steps) - linked - {9}:
        assert "Another role does this step." in steps[number]
    if role == "accountant":
        assert f"/setup/quickbooks/{company}/settings" in links[4].group(1)
