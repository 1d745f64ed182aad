"""Bad input gets a clear 4xx, never a 500: numbers past the id columns, NUL characters,
and a database error still gets the error page."""

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


def test_a_database_error_still_gets_the_error_page(app, client, login_as):
    """On PostgreSQL the failed statement aborts the transaction; the error page must not
    query inside it (its reconnect banner does), or the answer is a bare 500."""
    import sqlalchemy as sa

    from portal.db import get_session
    from portal.routes.decorators import role_required

    @app.get("/broken-query")
    @role_required("viewer")
    def broken_query():  # type: ignore[no-untyped-def]
        get_session().execute(sa.text("SELECT * FROM no_such_table"))

    login_as("viewer")
    page = client.get("/broken-query")
    assert page.status_code == 500
    body = page.get_data(as_text=True)
    assert "Something went wrong" in body and "<html" in body and "Request id" in body
    fragment = client.get("/broken-query", headers={"HX-Request": "true"})
    assert fragment.status_code == 500
    assert 'id="error"' in fragment.get_data(as_text=True)


def test_a_malformed_return_address_is_ignored(client):
    assert client.get("/auth/login?next=http://[").status_code == 200
    expired = client.get("/dashboard/checklist", headers={"HX-Request": "true",
                                                          "HX-Current-URL": "http://["})
    assert expired.status_code == 401
    assert expired.headers["HX-Redirect"] == "/auth/login?next=/"
