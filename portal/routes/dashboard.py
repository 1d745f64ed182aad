"""The landing page: setup checklist, health, recent runs; each card loads on its own."""

from __future__ import annotations

from flask import Blueprint, current_app

from portal.db import get_session
from portal.htmx import is_fragment_request, render
from portal.routes.decorators import ALL_ROLES, role_required
from portal.services import autosync, dashboard, email_invoices, runs
from portal.routes.attention import card_context as attention_context
from portal.services import dashboard, runs

bp = Blueprint("dashboard", __name__)


def _context() -> dict:  # type: ignore[type-arg]
    session = get_session()
    from portal.services import cw_setup, qbo_setup

    companies = qbo_setup.companies(session)
    cw = cw_setup.current(session)
    recent = runs.recent(session, 5)
    return {"checklist": dashboard.checklist(session, cw, companies),
            "health": dashboard.health(current_app, session),
            "recent_runs": recent, "run_labels": runs.labels(session, recent), "cw": cw,
            "companies": companies,
            "company_tokens": {c.id: qbo_setup.token_of(session, c) for c in companies},
            "synced": _synced(session, companies)}


def _synced(session, companies):  # type: ignore[no-untyped-def]
    """The default company's amounts synced per day (SPEC 2 item 7), or None."""
    from portal.models.types import utcnow
    from portal.services import batch_charts

    company = next((c for c in companies if c.is_default), None)
    return batch_charts.synced_per_day(session, company, utcnow().date()) if company \
        else None


@bp.get("/")
@role_required(*ALL_ROLES)
def index():  # type: ignore[no-untyped-def]
    return render("dashboard/index.html", **_context())


@bp.get("/dashboard/checklist")
@role_required(*ALL_ROLES)
def checklist():  # type: ignore[no-untyped-def]
    """The checklist card alone (its Refresh button), or the dashboard when loaded directly."""
    return render("dashboard/index.html", "checklist_card", **_context())


@bp.get("/dashboard/autosync")
@role_required(*ALL_ROLES)
def autosync_card():  # type: ignore[no-untyped-def]
    """The AutoSync and email card (it loads on its own), or the dashboard when loaded
    directly."""
    session = get_session()
    if not is_fragment_request():
        return render("dashboard/index.html", **_context())
    return render("dashboard/_autosync.html", autosync=autosync.overview(session),
                  email_attention=email_invoices.attention(session))


@bp.get("/dashboard/attention")
@role_required(*ALL_ROLES)
def attention_card():  # type: ignore[no-untyped-def]
    """The Needs attention card (it loads on its own), or the dashboard when loaded
    directly."""
    if not is_fragment_request():
        return render("dashboard/index.html", **_context())
    return render("dashboard/index.html", "attention_card", **attention_context())


@bp.get("/dashboard/health")
@role_required(*ALL_ROLES)
def health():  # type: ignore[no-untyped-def]
    return render("dashboard/index.html", "health_card", **_context())
