"""No secret reaches a page, a log line, a job, Redis or a clear-text database column."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from portal import jobs
from portal.db import Base, engine, session_scope
from portal.models import QboToken
from portal.services.secrets_store import unseal
from tests.integration.connect import APP, consent, save_app, save_connectwise

pytestmark = pytest.mark.integration


def _database_text(app) -> str:
    parts = []
    with engine(app).connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def _redis_text(app) -> str:
    client = jobs.get_redis(app)
    parts = []
    for key in client.scan_iter("*"):
        parts.append(repr(key))
        kind = client.type(key)
        if kind == b"string":
            parts.append(repr(client.get(key)))
        elif kind == b"hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == b"list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == b"set":
            parts.append(repr(client.smembers(key)))
        elif kind == b"zset":
            parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
    return "\n".join(parts)


def test_secrets_stay_secret(app, client, login_as, cw_sandbox, qbo_sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    login_as("admin")
    cw, cw_server = cw_sandbox
    assert save_connectwise(client, cw_server, cw.credentials).status_code == 303
    client.hx("POST", "/setup/connectwise/test", token_from="/setup/connectwise")
    client.hx("POST", "/setup/connectwise/probe", token_from="/setup/connectwise")
    _qbo, qbo_server = qbo_sandbox
    save_app(client, qbo_server)
    response, params = consent(client)
    assert response.status_code == 303
    client.hx("POST", "/runs/self-check")  # a queued job sits in Redis

    with app.app_context(), session_scope(app) as session:
        token = session.scalars(sa.select(QboToken)).one()
        access, refresh = unseal(token.access_token_enc), unseal(token.refresh_token_enc)
    secrets = {"private key": cw.credentials["private_key"],
               "client secret": APP["client_secret"], "access token": access,
               "refresh token": refresh, "authorization code": params["code"][0]}

    pages = "\n".join(client.get(path).get_data(as_text=True) for path in (
        "/", "/setup/connectwise", "/setup/quickbooks", "/audit/", "/users/", "/runs/1",
        "/audit/export.csv"))
    logs = "\n".join(record.getMessage() for record in caplog.records)
    stores = {"pages": pages, "logs": logs, "database": _database_text(app),
              "redis": _redis_text(app)}
    for where, text in stores.items():
        for name, value in secrets.items():
            assert value not in text, f"the {name} appears in {where}"
    job = jobs.get_queue("default", app).jobs[0]
    assert list(job.args) == [1] and job.kwargs == {}
