"""Browser tests: Debian's Chromium driven by Playwright against a live server thread."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    # No browser download here or in CI: use the distribution's Chromium.
    return {**browser_type_launch_args, "args": CHROMIUM_ARGS,
            "executable_path": os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")}


@pytest.fixture()
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The test's own app over real HTTP in a daemon thread (it sees the test's stores,
    and RQ's worker can still run in the main thread)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def csp_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Console errors and page errors; a test asserts this stays empty."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def sign_in(page, live_server: str, email: str = "admin@example.test") -> None:  # type: ignore[no-untyped-def]
    """Sign in through the login form, as a person does."""
    from tests.conftest import PASSWORD

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
