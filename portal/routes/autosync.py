"""AutoSync's re-run link (SPEC 15.4): a failure email links here; the page confirms, and
its form starts the same selection again as a batch of the person who confirmed."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, url_for
from flask_login import current_user

from portal.db import get_session
from portal.htmx import render
from portal.models import Batch, Company
from portal.routes.decorators import role_required
from portal.services import autosync

bp = Blueprint("autosync", __name__, url_prefix="/autosync")
MANAGERS = ("admin", "accountant")


def _batch(company_id: int, batch_id: int) -> tuple[Company, Batch]:
    session = get_session()
    company = session.get(Company, company_id)
    batch = session.get(Batch, batch_id)
    if company is None or batch is None or batch.company_id != company.id:
        abort(404)
    return company, batch


@bp.get("/<int:company_id>/rerun/<int:batch_id>")
@role_required(*MANAGERS)
def rerun(company_id: int, batch_id: int):  # type: ignore[no-untyped-def]
    company, batch = _batch(company_id, batch_id)
    records = autosync.rerun_records(get_session(), batch)
    return render("autosync/rerun.html", company=company, batch=batch, records=records,
                  error=None)


@bp.post("/<int:company_id>/rerun/<int:batch_id>")
@role_required(*MANAGERS)
def rerun_start(company_id: int, batch_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    company, batch = _batch(company_id, batch_id)
    try:
        new = autosync.rerun(session, company, batch, current_user)
    except autosync.RerunRefused as exc:
        session.rollback()
        return render("autosync/rerun.html", company=company, batch=batch, error=str(exc),
                      records=autosync.rerun_records(session, batch)), 409
    run_id = new.run_id
    session.commit()
    from portal.jobs.registry import enqueue_run
    from portal.models import RunKind

    enqueue_run(RunKind.BATCH, run_id)
    return redirect(url_for("batches.show", batch_id=new.id), 303)
