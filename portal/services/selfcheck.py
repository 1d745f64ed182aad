"""The self-check: proves the database, schema, Redis, queue, worker and keys work."""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from portal import crypto, jobs, migrate
from portal.models import User
from portal.services.runs import RunProgress


@dataclass(frozen=True)
class Step:
    name: str
    check: Callable[[Flask, Session], str]


def _database(app: Flask, session: Session) -> str:
    dialect = session.get_bind().dialect.name
    version = session.scalar(sa.text("SELECT sqlite_version()") if dialect == "sqlite"
                             else sa.text("SHOW server_version"))
    users = session.scalar(sa.select(sa.func.count()).select_from(User))
    return f"{dialect} {version} answers; {users} user(s)"


def _schema(app: Flask, session: Session) -> str:
    migrate.check_current(app.config["DATABASE_URL"])
    return f"schema at head {', '.join(migrate.heads(app.config['DATABASE_URL']))}"


def _redis(app: Flask, session: Session) -> str:
    client = jobs.get_redis(app)
    key = f"portal:selfcheck:{secrets.token_hex(4)}"
    client.set(key, "ok", ex=30)
    value = client.get(key)
    client.delete(key)
    if value != b"ok":
        raise RuntimeError(f"Redis returned {value!r} for a value just written")
    version = client.info("server").get("redis_version", "?")
    return f"Redis {version} reads and writes ({jobs.redis_description(app)})"


def _worker(app: Flask, session: Session) -> str:
    from portal.services import scheduler

    connection = jobs.get_redis(app)
    workers = scheduler.presence(connection).count
    waiting = sum(jobs.get_queue(name, app).count for name in jobs.queue_names(app))
    host = socket.gethostname()
    return (f"this job ran on {host} (pid {os.getpid()}); {workers} worker(s) alive; "
            f"{waiting} job(s) waiting")


def _keys(app: Flask, session: Session) -> str:
    keys = app.config["ENCRYPTION_KEY"]
    probe = secrets.token_urlsafe(16)
    if crypto.decrypt(keys, crypto.encrypt(keys, probe)) != probe:
        raise RuntimeError("encryption round trip returned a different value")
    count = len([k for k in keys.split(",") if k.strip()])
    return f"encryption key works ({count} key(s) configured)"


def _instance(app: Flask, session: Session) -> str:
    with tempfile.NamedTemporaryFile(dir=app.instance_path, prefix=".selfcheck-"):
        pass
    return f"instance folder {app.instance_path} is writable"


STEPS = (
    Step("Database", _database),
    Step("Schema", _schema),
    Step("Redis", _redis),
    Step("Worker", _worker),
    Step("Encryption key", _keys),
    Step("Instance folder", _instance),
)


def run(app: Flask, session: Session, progress: RunProgress) -> list[str]:
    """Run every step, recording each outcome; returns the names of failed steps.

    A failing step does not stop the others: the admin wants the whole picture at once.
    """
    progress.start(len(STEPS), "Checking the installation")
    failed: list[str] = []
    for step in STEPS:
        try:
            detail = step.check(app, session)
        except Exception as exc:  # noqa: BLE001 - each failure is reported, not raised
            session.rollback()  # progress is committed by every message, so none is lost
            failed.append(step.name)
            progress.advance()
            progress.message(f"{step.name}: failed: {exc}", level="error", step=step.name)
        else:
            progress.advance()
            progress.message(f"{step.name}: {detail}", step=step.name)
    return failed
