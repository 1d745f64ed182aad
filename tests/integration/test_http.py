"""Security headers, health endpoints and error pages."""

from __future__ import annotations

import time

import pytest

from portal import jobs
from portal.security import CSP
from portal.services import scheduler

pytestmark = pytest.mark.integration


def test_security_headers_on_every_response(client, login_as):
    for response in (client.get("/auth/login"), client.get("/healthz"),
                     client.get("/static/css/portal.css")):
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "camera=()" in response.headers["Permissions-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP here
    login_as("viewer")
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_hsts_over_https(client):
    response = client.get("/healthz", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_templates_have_no_inline_script_or_style(app):
    import pathlib
    import re

    root = pathlib.Path(app.root_path) / "templates"
    for path in root.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", text), path
        assert "hx-on" not in text, path


def test_healthz_and_readyz(app, client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["checks"] == {"database": True, "redis": True, "worker": False}
    ticker = scheduler.Ticker(app, name="worker-a", every=3600).start()  # a live worker
    try:
        deadline = time.monotonic() + 30
        while scheduler.presence(jobs.get_redis(app)).count == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
    finally:
        ticker.stop()
    # a worker that has gone is not counted, however recently it beat
    assert scheduler.presence(jobs.get_redis(app)).count == 0
    assert client.get("/readyz").status_code == 503


def test_404_and_403_pages_are_friendly(client, login_as):
    login_as("viewer")
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "There is nothing at this address" in missing.get_data(
        as_text=True)
    fragment = client.hx("GET", "/no/such/page")
    assert "<html" not in fragment.get_data(as_text=True)
    forbidden = client.get("/users/")
    assert forbidden.status_code == 403
    assert "Your role does not allow this page" in forbidden.get_data(as_text=True)


def test_unknown_batch_kind_is_404(client, login_as):
    login_as("accountant")
    assert client.get("/batches/new/invoices").status_code == 200
    assert client.get("/batches/new/bananas").status_code == 404


def test_run_new_batch_payment_sync_opens_the_payment_sync_page(client, login_as):
    login_as("accountant")
    answer = client.get("/batches/new/payments")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/payments/")
    assert "not built yet" not in client.get("/payments/").get_data(as_text=True)


def test_request_id_is_echoed(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers[
        "X-Request-ID"] == "abc-123"
    assert len(client.get("/healthz", headers={"X-Request-ID": "<bad>"}).headers[
        "X-Request-ID"]) == 16
