"""CSRF: plain POSTs need the form token; htmx sends it in a header."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_post_without_token_is_refused(client, make_user):
    user = make_user("admin")
    client.get("/auth/login")
    response = client.post("/auth/login", data={"email": user.email, "password": "x" * 12})
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)


def test_htmx_post_with_header_is_accepted(app, client, login_as):
    login_as("admin")
    response = client.hx("POST", "/runs/self-check")
    assert response.status_code == 202
    assert 'id="run-1"' in response.get_data(as_text=True)


def test_htmx_post_without_header_refreshes_the_page(client, login_as):
    login_as("admin")
    response = client.post("/runs/self-check", headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"


def test_wrong_token_is_refused(client, login_as):
    login_as("admin")
    response = client.post("/runs/self-check", headers={"HX-Request": "true",
                                                        "X-CSRFToken": "forged"})
    assert response.status_code == 400
