"""Bad input gets a clear 4xx, never a 500: numbers past the id columns, NUL characters."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

HUGE = "99999999999999999999"


def test_numbers_past_the_id_columns_are_unknown_ids_or_ignored(client, login_as):
    login_as("admin")
    token = {"X-CSRFToken": client.csrf_token("/")}
    for path in (f"/runs/{HUGE}", f"/runs/{2**31}", f"/batches/{HUGE}", f"/users/{HUGE}/x"):
        assert client.get(path).status_code == 404, path
    for path in (f"/batches/{HUGE}/retry", f"/users/{HUGE}/active"):
        assert client.post(path, headers=token).status_code == 404, path
    for path in (f"/batches/rows?before={HUGE}", f"/audit/?page={HUGE}1", f"/audit/?user={HUGE}",
                 f"/runs/?page={HUGE}", f"/runs/?page=-{HUGE}"):
        response = client.get(path)
        assert response.status_code == 200, path


def test_a_nul_character_is_refused_with_a_message(client, login_as):
    login_as("admin")
    response = client.get("/audit/?action=a%00b")
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)
    # A browser that sends one in its name is still served (the session stores it).
    assert client.get("/", headers={"User-Agent": "odd\x00agent"}).status_code == 200
