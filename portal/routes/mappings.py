"""Mappings: the reference cache (age, refresh) and the editors that match both sides."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, request
from flask_login import current_user

from portal.db import get_session
from portal.htmx import render
from portal.jobs.registry import enqueue_run
from portal.models import Company, CompanyStatus, RunKind
from portal.routes.decorators import role_required
from portal.services import audit, reference, runs

bp = Blueprint("mappings", __name__, url_prefix="/mappings")


def selected_company() -> Company | None:
    """The company named by `?company=`, else the default one."""
    session = get_session()
    wanted = request.values.get("company", type=int)
    if wanted is not None:
        company = session.get(Company, wanted)
        if company is None:
            abort(404)
        return company
    return session.scalar(sa.select(Company).where(Company.is_default.is_(True)))


@bp.get("/")
@role_required("admin", "accountant")
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    company = selected_company()
    companies = list(session.scalars(sa.select(Company).where(
        Company.status != CompanyStatus.DISCONNECTED).order_by(Company.qbo_name)))
    return render("mappings/index.html", "reference_card", company=company,
                  companies=companies, ages=reference.ages(session, company))


@bp.post("/refresh")
@role_required("admin", "accountant")
def refresh():  # type: ignore[no-untyped-def]
    """Start a refresh of every list for the company; the answer is its progress block."""
    session = get_session()
    company = selected_company()
    if company is None:
        return render("mappings/_no_company.html"), 409
    try:
        run = runs.start(session, RunKind.REFERENCE_REFRESH, user=current_user,
                         company_id=company.id)
    except runs.RunAlreadyActive as busy:
        session.rollback()
        return render("runs/_busy.html", run=busy.active_run), 409
    audit.record(session, "reference.refresh", target=run, company_id=company.id)
    session.commit()
    enqueue_run(run.kind, run.id)
    return render("runs/show.html", "run_progress", run=run), 202
