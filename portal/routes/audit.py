"""The audit log: filter by user, action and date; paged; CSV export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, request
from sqlalchemy.orm import Session

from portal.db import get_session
from portal.htmx import render
from portal.models import AuditEvent, User
from portal.routes.decorators import role_required
from portal.routes.downloads import csv_download
from portal.routes.params import bounded_int
from portal.services import spreadsheet

bp = Blueprint("audit", __name__, url_prefix="/audit")
PER_PAGE = 50
HEADER = ["at", "actor", "ip", "action", "company_id", "target_type", "target_id", "before",
          "after", "result", "request_id"]


def _parse_date(value: str | None) -> tuple[date | None, str | None]:
    if not value:
        return None, None
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, f"{value!r} is not a date; use YYYY-MM-DD."


def _filtered() -> tuple[sa.Select, dict, list[str]]:  # type: ignore[type-arg]
    args = request.args
    filters = {k: (args.get(k) or "").strip() for k in ("user", "action", "since", "until")}
    errors: list[str] = []
    query = sa.select(AuditEvent)
    if filters["user"]:
        try:  # a user id, or an actor such as "cli" or an email that failed to sign in
            query = query.where(AuditEvent.user_id == bounded_int(filters["user"]))
        except ValueError:
            query = query.where(AuditEvent.actor == filters["user"])
    if filters["action"]:
        escaped = filters["action"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AuditEvent.action.like(f"{escaped}%", escape="\\"))
    since, error = _parse_date(filters["since"])
    if error:
        errors.append(f"From: {error}")
    elif since:
        query = query.where(AuditEvent.at >= datetime.combine(since, time(), timezone.utc))
    until, error = _parse_date(filters["until"])
    if error:
        errors.append(f"To: {error}")
    elif until:
        query = query.where(AuditEvent.at < datetime.combine(until + timedelta(days=1), time(),
                                                             timezone.utc))
    return query, filters, errors


@bp.get("/")
@role_required("admin", "accountant")
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    query, filters, errors = _filtered()
    page = max(1, request.args.get("page", 1, type=int))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    events = list(session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                  .offset((page - 1) * PER_PAGE).limit(PER_PAGE)))
    people = list(session.scalars(sa.select(User).order_by(User.email)))
    actions = list(session.scalars(sa.select(AuditEvent.action).distinct()
                                   .order_by(AuditEvent.action)))
    status = 422 if errors else 200
    return render("audit/index.html", "audit_results", events=events, filters=filters,
                  errors=errors, page=page, pages=max(1, -(-total // PER_PAGE)), total=total,
                  people=people, actions=actions), status


@bp.get("/export.csv")
@role_required("admin", "accountant")
def export():  # type: ignore[no-untyped-def]
    """The filtered log as CSV, oldest first (at most 100,000 rows), streamed and
    formula-safe like every CSV here."""
    query, _filters, _errors = _filtered()
    return csv_download(lambda session, bom: spreadsheet.stream(
        HEADER, _rows(session, query), bom=bom), "audit-log.csv")


def _rows(session: Session, query: sa.Select) -> Iterator[list[Any]]:  # type: ignore[type-arg]
    """Read while the response streams, 500 rows at a time."""
    events = session.scalars(query.order_by(AuditEvent.id).limit(100_000)
                                   .execution_options(yield_per=500, stream_results=True))
    for event in events:
        yield [event.at, event.actor, event.ip, event.action, event.company_id,
               event.target_type, event.target_id,
               json.dumps(event.before) if event.before else None,
               json.dumps(event.after) if event.after else None, event.result,
               event.request_id]
