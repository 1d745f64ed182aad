"""Alembic driven from code: upgrade, downgrade, and "is the schema at head?"."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from portal.db import make_engine


class SchemaNotCurrent(RuntimeError):
    """The database is behind (or ahead of) the code; the message says what to run."""


def migrations_path() -> Path:
    """The Alembic scripts: `portal/migrations` in an installed wheel, the top-level
    `migrations/` folder (their source, mapped into the wheel by pyproject.toml) in a
    checkout or an editable install. Never the working directory's: that could be any
    project's."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError(f"no Alembic scripts in {package / 'migrations'} or beside "
                            "the package: reinstall portal (pip install .)")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def heads(url: str) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def current(url: str) -> tuple[str, ...]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def check_current(url: str) -> None:
    """Raise SchemaNotCurrent unless the database is at the code's head."""
    have, want = set(current(url)), set(heads(url))
    if have != want:
        state = ", ".join(sorted(have)) or "empty"
        raise SchemaNotCurrent(f"The database schema is at {state}, the code expects "
                               f"{', '.join(sorted(want))}. Run: portal db upgrade")


def wait_for_database(url: str, timeout: float = 60.0, interval: float = 2.0) -> None:
    """Retry until the database answers (containers start in any order)."""
    deadline = time.monotonic() + timeout
    engine = make_engine(url)
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
                return
            except sa.exc.OperationalError as exc:
                if time.monotonic() >= deadline:
                    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                    raise SchemaNotCurrent(f"The database did not answer within "
                                           f"{timeout:.0f} s: {reason}") from None
                time.sleep(interval)
    finally:
        engine.dispose()
