"""Migrations: one head; upgrade and downgrade on an empty database; models agree."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from portal import migrate
from portal.db import Base, make_engine

pytestmark = pytest.mark.integration


@pytest.fixture()
def empty_database(database_url: str, tmp_path) -> Iterator[str]:
    """A brand-new database of the same kind as the suite's."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"portal_mig_{uuid.uuid4().hex[:8]}_test"
    admin = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_single_head(database_url):
    script = ScriptDirectory.from_config(migrate.alembic_config(database_url))
    assert len(script.get_heads()) == 1


def test_upgrade_then_downgrade_to_base(empty_database):
    migrate.upgrade(empty_database)
    assert {t.name for t in Base.metadata.sorted_tables} <= _tables(empty_database)
    migrate.check_current(empty_database)
    migrate.downgrade(empty_database, "base")
    assert _tables(empty_database) <= {"alembic_version"}
    migrate.upgrade(empty_database)
    migrate.check_current(empty_database)


def test_models_and_migrations_agree(empty_database):
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_behind_schema_is_reported_with_the_fix(empty_database):
    with pytest.raises(migrate.SchemaNotCurrent, match="Run: portal db upgrade"):
        migrate.check_current(empty_database)
