"""/healthz (the process answers) and /readyz (database, Redis, a recent worker beat)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from portal.db import get_session
from portal.routes.decorators import public
from portal.services import dashboard

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@bp.get("/readyz")
@public
def readyz():  # type: ignore[no-untyped-def]
    """Ready when the database and Redis answer and a worker beat within 120 s.

    Only yes/no per part: anonymous callers learn nothing about the installation.
    """
    checks: dict[str, bool] = {}
    try:
        get_session().execute(sa.text("SELECT 1"))
        checks["database"] = True
    except sa.exc.SQLAlchemyError:
        checks["database"] = False
    state = dashboard.health(current_app, get_session())
    checks["redis"] = state.redis_ok
    checks["worker"] = state.worker_ok
    ok = all(checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
