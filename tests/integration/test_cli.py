"""The `portal` command, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from portal import migrate
from portal.db import session_scope
from portal.models import JobRun, RunKind, RunStatus, User
from portal.services import runs
from tests.conftest import PASSWORD, TEST_ENCRYPTION_KEY

pytestmark = pytest.mark.integration
PORTAL = str(Path(sys.executable).parent / "portal")


def _env(tmp_path: Path, **extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update({"PORTAL_SECRET_KEY": "cli-test-secret-key", "PORTAL_ENCRYPTION_KEY":
                TEST_ENCRYPTION_KEY, "PORTAL_INSTANCE_PATH": str(tmp_path),
                "PORTAL_LOG_LEVEL": "WARNING", "PORTAL_PASSWORD_HASH_MEMORY_KIB": "8",
                "PORTAL_PASSWORD_HASH_TIME_COST": "1", "PORTAL_PASSWORD_HASH_PARALLELISM": "1"})
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _portal(*args: str, env: dict[str, str], stdin: str | None = None):
    return subprocess.run([PORTAL, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_missing_secret_stops_start_up_with_one_line(tmp_path):
    result = _portal("serve", env=_env(tmp_path, PORTAL_SECRET_KEY=None))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: PORTAL_SECRET_KEY is not set; make one with: python3 -c "import secrets; '
        'print(secrets.token_urlsafe(48))"']


def test_db_upgrade_and_schema_check(tmp_path):
    env = _env(tmp_path, PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    behind = _portal("serve", env=env)
    assert behind.returncode == 1
    assert "Run: portal db upgrade" in behind.stderr
    result = _portal("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert f"Database schema is at {migrate.heads(env['PORTAL_DATABASE_URL'])[0]}" in result.stdout
    assert f"database: {migrate.heads(env['PORTAL_DATABASE_URL'])[0]}" in _portal("db", "current", env=env).stdout


def test_users_create_reads_the_password_from_stdin(app, database_url, redis_url, tmp_path):
    env = _env(tmp_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url)
    result = _portal("users", "create", "--email", "First.Admin@Example.test", "--role",
                     "admin", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Created admin first.admin@example.test."
    with session_scope(app) as session:
        user = session.scalar(sa.select(User))
        assert (user.email, user.role.value) == ("first.admin@example.test", "admin")
    weak = _portal("create-admin", "--email", "b@example.test", "--password-stdin", env=env,
                   stdin="password\n")
    assert weak.returncode == 1
    assert "Use at least 12 characters" in weak.stderr
    duplicate = _portal("users", "create", "--email", "first.admin@example.test", "--role",
                        "viewer", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert "already exists" in duplicate.stderr


def test_users_create_without_a_terminal_explains_password_stdin(tmp_path, database_url):
    result = _portal("users", "create", "--email", "x@example.test", "--role", "viewer",
                     env=_env(tmp_path, PORTAL_DATABASE_URL=database_url), stdin="")
    assert result.returncode == 2
    assert "--password-stdin" in result.stderr


def test_keys_generate_works_before_any_key_exists(tmp_path):
    env = _env(tmp_path, PORTAL_ENCRYPTION_KEY=None, PORTAL_SECRET_KEY=None)
    key = _portal("keys", "generate", env=env).stdout.strip()
    Fernet(key)


def test_keys_rotate_reencrypts_stored_secrets(app, tmp_path, database_url, redis_url):
    from portal import crypto
    from portal.models import CwConnection, SmtpSettings

    with session_scope(app) as session:
        session.add(CwConnection(id=1, site="psa.example.com", company_id="x", public_key="p",
                                 client_id="c", private_key_enc=crypto.encrypt(
                                     TEST_ENCRYPTION_KEY, "the-private-key")))
        session.add(SmtpSettings(id=1, host="smtp.example.com", password_enc=crypto.encrypt(
            TEST_ENCRYPTION_KEY, "the-smtp-password")))
    new_key = Fernet.generate_key().decode()
    result = _portal("keys", "rotate", env=_env(
        tmp_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url,
        PORTAL_ENCRYPTION_KEY=f"{new_key},{TEST_ENCRYPTION_KEY}"))
    assert result.returncode == 0, result.stderr
    assert "Re-encrypted 2 stored secret(s)" in result.stdout
    with session_scope(app) as session:
        sealed = session.get(CwConnection, 1).private_key_enc
        smtp = session.get(SmtpSettings, 1).password_enc
    assert crypto.decrypt(new_key, sealed) == "the-private-key"  # the old key is not needed
    assert crypto.decrypt(new_key, smtp) == "the-smtp-password"


def test_worker_process_runs_a_queued_run(app, database_url, redis_url, instance_path):
    """A separate `portal worker --burst` process picks up a run queued here, and one
    left queued without a job (Redis was down at enqueue) is swept up at start."""
    from portal.jobs.registry import enqueue_run

    with session_scope(app) as session:
        queued = runs.start(session, RunKind.SELF_CHECK)
        orphan = runs.start(session, RunKind.SELF_CHECK)
    with app.app_context():
        enqueue_run(queued.kind, queued.id)
    env = _env(instance_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url)
    result = _portal("worker", "--burst", env=env)
    assert result.returncode == 0, result.stderr
    with session_scope(app) as session:
        statuses = {r.id: r.status for r in session.scalars(sa.select(JobRun))}
    assert statuses == {queued.id: RunStatus.SUCCEEDED, orphan.id: RunStatus.SUCCEEDED}


def test_healthcheck_fails_when_nothing_answers(tmp_path):
    result = _portal("healthcheck", "--url", "http://127.0.0.1:9/healthz", env=_env(tmp_path))
    assert result.returncode == 1
    assert "did not answer" in result.stderr


def test_serve_runs_gunicorn_on_the_app(app, database_url, redis_url, tmp_path):
    """The container's web command: schema check, then gunicorn serving portal."""
    import socket
    import time

    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _env(tmp_path, PORTAL_DATABASE_URL=database_url, PORTAL_REDIS_URL=redis_url)
    process = subprocess.Popen([PORTAL, "serve", "--bind", f"127.0.0.1:{port}", "--workers",
                                "1"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        # Generous waits for a process coming up on a busy machine: this checks behaviour, not
        # start-up speed.
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=60)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "portal serve exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        assert answer.json() == {"status": "ok"} and answer.headers["Server"] == "gunicorn"
        health = _portal("healthcheck", "--url", f"http://127.0.0.1:{port}/healthz", env=env)
        assert health.returncode == 0, health.stderr
        assert health.stdout.strip() == "ok"
    finally:
        process.terminate()
        process.wait(timeout=30)
