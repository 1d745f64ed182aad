"""Unbatch from a batch's page, validate a batch against QuickBooks, and clear old
transactions (SPEC 11, 12, 13.3). The work is in services/unbatch, clearing, validation."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, request, url_for
from flask_login import current_user

from portal import clients
from portal.db import get_session
from portal.htmx import poll, render
from portal.integrations.errors import IntegrationError
from portal.jobs.registry import enqueue_run
from portal.models import (
    Batch,
    BatchItem,
    BatchType,
    Company,
    CwRef,
    RunKind,
    ValidationReport,
)
from portal.routes.batches import MANAGERS, _batch_or_404, _go, _refused
from portal.routes.decorators import ALL_ROLES, role_required
from portal.routes.downloads import csv_download
from portal.routes.reauth import reauth_prompt, reauth_required
from portal.services import audit, clearing, date_range, selection, unbatch, validation
from portal.services.batches import BatchRefused, csv_rows

log = logging.getLogger(__name__)
bp = Blueprint("unbatch", __name__, url_prefix="/batches")


def _enqueue(kind: RunKind, run_id: int) -> None:
    try:
        enqueue_run(kind, run_id)
    except Exception:  # noqa: BLE001 - the run stays queued; the worker's sweep takes it
        log.exception("run=%s could not be enqueued", run_id)


# ---- unbatch -------------------------------------------------------------------------------

def _chosen(batch: Batch) -> list[BatchItem]:
    ids = [i for i in request.values.getlist("item", type=int) if i][:500]
    if not ids:
        return []
    return list(get_session().scalars(sa.select(BatchItem).where(
        BatchItem.batch_id == batch.id, BatchItem.id.in_(ids)).order_by(BatchItem.position)))


def _previews(batch: Batch) -> tuple[list[unbatch.Preview], str | None]:
    session = get_session()
    action = request.values.get("action") or None
    try:
        qbo = clients.quickbooks(session, batch.company)
        cw = clients.connectwise(session)
        if cw is None:
            return [], "Set up ConnectWise first."
        return unbatch.preview(session, batch, _chosen(batch), action=action,
                               unlink=request.values.get("unlink") == "y", qbo=qbo, cw=cw), None
    except IntegrationError as exc:
        return [], f"{exc.message} {exc.hint or ''}".strip()


@bp.get("/<int:batch_id>/unbatch")
@role_required(*MANAGERS)
def preview(batch_id: int):  # type: ignore[no-untyped-def]
    """What unbatching the chosen records would do, with every refusal; writes nothing."""
    batch = _batch_or_404(batch_id)
    views, error = _previews(batch)
    return render("batches/unbatch.html", batch=batch, previews=views, error=error,
                  action=request.values.get("action") or "",
                  unlink=request.values.get("unlink") == "y",
                  reauth=unbatch.needs_reauth(views))


@bp.post("/<int:batch_id>/unbatch")
@role_required(*MANAGERS)
def start(batch_id: int):  # type: ignore[no-untyped-def]
    """Start the unbatch run (more than 10 records or any Delete asks for the password)."""
    batch = _batch_or_404(batch_id)
    back = url_for("unbatch.preview", batch_id=batch.id, **request.form.to_dict(flat=False))
    views, error = _previews(batch)
    if error:
        return _refused(BatchRefused(error), back)
    if unbatch.needs_reauth(views) and (prompt := reauth_prompt()) is not None:
        return prompt
    session = get_session()
    try:
        run = unbatch.start(session, batch, views, current_user)
        session.commit()
    except BatchRefused as refused:
        session.rollback()
        return _refused(refused, back)
    _enqueue(RunKind.UNBATCH, run.id)
    return _go(url_for("batches.show", batch_id=batch.id))


@bp.post("/<int:batch_id>/unbatch/retry")
@role_required(*MANAGERS)
def retry(batch_id: int):  # type: ignore[no-untyped-def]
    """Finish the unbatching that stopped part way (each record at its step)."""
    batch = _batch_or_404(batch_id)
    session = get_session()
    try:
        run = unbatch.retry(session, batch, current_user)
        session.commit()
    except BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("batches.show", batch_id=batch.id))
    _enqueue(RunKind.UNBATCH, run.id)
    return _go(url_for("batches.show", batch_id=batch.id))


# ---- validation ------------------------------------------------------------------------------

@bp.get("/<int:batch_id>/validate")
@role_required(*ALL_ROLES)
def validation_view(batch_id: int):  # type: ignore[no-untyped-def]
    """The newest validation of the batch (polled while it runs), and a button to run one."""
    batch = _batch_or_404(batch_id)
    report = validation.latest(get_session(), batch.id)
    running = report is not None and report.status in ("queued", "running")
    if request.htmx:  # type: ignore[attr-defined]
        return poll("batches/validation.html", "validation_report", active=running,
                    event="run-finished", batch=batch, report=report,
                    can_manage=current_user.role.value in MANAGERS)
    return render("batches/validation.html", batch=batch, report=report, running=running,
                  can_manage=current_user.role.value in MANAGERS)


@bp.post("/<int:batch_id>/validate")
@role_required(*MANAGERS)
def validation_start(batch_id: int):  # type: ignore[no-untyped-def]
    batch = _batch_or_404(batch_id)
    session = get_session()
    report = validation.start(session, batch.company, user=current_user, batch=batch)
    session.commit()
    _enqueue(RunKind.VALIDATION, report.run_id or 0)
    return _go(url_for("unbatch.validation_view", batch_id=batch.id))


@bp.get("/<int:batch_id>/validate.csv")
@role_required(*ALL_ROLES)
def validation_csv(batch_id: int):  # type: ignore[no-untyped-def]
    batch = _batch_or_404(batch_id)
    report = validation.latest(get_session(), batch.id)
    if report is None:
        abort(404)
    return report_csv(report.id)


@bp.get("/validation")
@role_required(*ALL_ROLES)
def range_view():  # type: ignore[no-untyped-def]
    """Validation by record type and date range: the form, and a report (`report`, else the
    newest one of the company)."""
    session = get_session()
    companies = list(session.scalars(sa.select(Company).order_by(Company.is_default.desc(),
                                                                 Company.qbo_name)))
    report = None
    report_id = request.args.get("report", type=int)
    if report_id:
        report = session.get(ValidationReport, report_id)
    elif companies:
        report = session.scalar(sa.select(ValidationReport).where(
            ValidationReport.batch_id.is_(None)).order_by(ValidationReport.id.desc()).limit(1))
    if report is not None and report.batch_id is not None:
        abort(404)
    running = report is not None and report.status in ("queued", "running")
    context = {"batch": None, "report": report, "running": running, "companies": companies,
               "types": [t for t in clearing.built_kinds()],
               "can_manage": current_user.role.value in MANAGERS}
    if request.htmx and report is not None:  # type: ignore[attr-defined]
        return poll("batches/validation.html", "validation_report", active=running,
                    event="run-finished", **context)
    return render("batches/validation.html", **context)


@bp.post("/validation")
@role_required(*MANAGERS)
def range_start():  # type: ignore[no-untyped-def]
    session = get_session()
    company = session.get(Company, request.form.get("company", type=int) or 0)
    dates = date_range.parse(request.form.get("from"), request.form.get("to"))
    back = url_for("unbatch.range_view")
    if company is None or dates.errors:
        message = " ".join(dates.errors.values()) or "Choose a company."
        return _refused(BatchRefused(message), back)
    try:
        report = validation.start(session, company, user=current_user,
                                  record_type=request.form.get("type"),
                                  date_from=dates.date_from, date_to=dates.date_to)
    except validation.Refused as exc:
        session.rollback()
        return _refused(BatchRefused(str(exc)), back)
    session.commit()
    _enqueue(RunKind.VALIDATION, report.run_id or 0)
    return _go(url_for("unbatch.range_view", report=report.id))


@bp.get("/validation/<int:report_id>.csv")
@role_required(*ALL_ROLES)
def report_csv(report_id: int):  # type: ignore[no-untyped-def]
    report = get_session().get(ValidationReport, report_id)
    if report is None:
        abort(404)
    rows = list(validation.csv_rows(report))
    return csv_download(lambda _session, bom: csv_rows(rows[0], rows[1:], bom=bom),
                        f"validation-{report.id}.csv")


# ---- clearing old transactions ---------------------------------------------------------------

def _clear_form(session: Any) -> dict[str, Any]:
    companies = list(session.scalars(sa.select(Company).order_by(Company.is_default.desc(),
                                                                 Company.qbo_name)))
    company_id = request.values.get("company", type=int)
    company = next((c for c in companies if c.id == company_id), companies[0] if companies
                   else None)
    kinds = [k for k in clearing.built_kinds()
             if not request.values.getlist("type") or k.value in request.values.getlist("type")]
    dates = date_range.parse(None, request.values.get("cut_off"))
    locations = [i for i in request.values.getlist("location", type=int) if i]
    choices = sorted(((r.cw_id, r.name or r.identifier or str(r.cw_id)) for r in session.scalars(
        sa.select(CwRef).where(CwRef.entity == "location"))), key=lambda c: c[1].lower())
    return {"companies": companies, "company": company, "kinds": kinds,
            "location_choices": choices,
            "all_kinds": clearing.built_kinds(), "cut_off": dates.date_to,
            "date_errors": dates.errors, "locations": locations}


@bp.get("/clear", endpoint="clear")
@role_required("admin")
@reauth_required
def clear_view():  # type: ignore[no-untyped-def]
    """Choose what to clear; with a cut-off, the preview (counts, totals, first 100 rows)."""
    session = get_session()
    form = _clear_form(session)
    view = error = None
    if form["cut_off"] and form["company"] is not None and form["kinds"]:
        cw = clients.connectwise(session)
        if cw is None:
            error = "Set up ConnectWise first."
        else:
            try:
                view = clearing.candidates(session, form["company"], cw, form["kinds"],
                                           form["cut_off"], form["locations"])
            except IntegrationError as exc:
                error = exc.message
    done = list(session.scalars(sa.select(Batch).where(Batch.type == BatchType.CLEAR)
                                .order_by(Batch.id.desc()).limit(20)))
    return render("batches/clear.html", **form, view=view, error=error, clearings=done,
                  chunks={b.id: clearing.chunks_of(session, b) for b in done})


@bp.get("/clear.csv")
@role_required("admin")
@reauth_required
def clear_csv():  # type: ignore[no-untyped-def]
    session = get_session()
    form = _clear_form(session)
    cw = clients.connectwise(session)
    if not form["cut_off"] or form["company"] is None or cw is None:
        abort(404)
    view = clearing.candidates(session, form["company"], cw, form["kinds"], form["cut_off"],
                               form["locations"])
    rows = list(clearing.csv_rows(view))
    return csv_download(lambda _session, bom: csv_rows(rows[0], rows[1:], bom=bom),
                        f"clear-{form['cut_off'].isoformat()}.csv")


@bp.post("/clear")
@role_required("admin")
@reauth_required
def clear_start():  # type: ignore[no-untyped-def]
    session = get_session()
    form = _clear_form(session)
    back = url_for("unbatch.clear", **request.form.to_dict(flat=False))
    cw = clients.connectwise(session)
    if form["company"] is None or cw is None or not form["cut_off"]:
        return _refused(BatchRefused("Choose a company and a cut-off date."), back)
    try:
        run = clearing.start(session, form["company"], cw, kinds=form["kinds"],
                             cut_off=form["cut_off"], location_ids=form["locations"],
                             confirm=request.form.get("confirm", ""), user=current_user)
        session.commit()
    except BatchRefused as refused:
        session.rollback()
        return _refused(refused, back)
    _enqueue(RunKind.CLEAR, run.id)
    return _go(url_for("runs.show", run_id=run.id))


@bp.post("/clear/none-needed")
@role_required("admin")
def clear_none_needed():  # type: ignore[no-untyped-def]
    """Checklist step 7 without a clearing: the admin says nothing old is unposted."""
    session = get_session()
    audit.record(session, "clear.none_needed", target_type="checklist", target_id=7)
    session.commit()
    return _go(url_for("dashboard.index"))


@bp.post("/<int:batch_id>/clear/undo")
@role_required("admin")
@reauth_required
def clear_undo(batch_id: int):  # type: ignore[no-untyped-def]
    """Undo a whole clearing, or one chunk of it (`chunk`)."""
    batch = _batch_or_404(batch_id)
    session = get_session()
    try:
        run = clearing.undo(session, batch, request.form.get("chunk") or None, current_user)
        session.commit()
    except BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("unbatch.clear"))
    _enqueue(RunKind.CLEAR, run.id)
    return _go(url_for("runs.show", run_id=run.id))


@bp.get("/clear/record", endpoint="handled")
@role_required("admin")
def handled_form():  # type: ignore[no-untyped-def]
    """The reason form of "Mark as handled without posting" for one unposted record."""
    session = get_session()
    company = session.get(Company, request.args.get("company", type=int) or 0)
    if company is None:
        abort(404)
    kind = request.args.get("type") or "invoice"
    slug = next((s.slug for s in selection.SCREENS.values() if s.kind.value == kind), None)
    if slug is None:
        abort(404)
    return render("batches/handled.html", company=company, kind=kind, slug=slug,
                  record=request.args.get("record", type=int) or 0)


@bp.post("/clear/record")
@role_required("admin")
@reauth_required
def clear_record():  # type: ignore[no-untyped-def]
    """"Mark as handled without posting": one record from the selection screen."""
    session = get_session()
    company = session.get(Company, request.form.get("company", type=int) or 0)
    cw = clients.connectwise(session)
    back = request.referrer or url_for("batches.new", kind="invoices")
    try:
        kind = BatchType(request.form.get("type") or "invoice")
    except ValueError:
        abort(404)
    if company is None or cw is None:
        return _refused(BatchRefused("Choose a company first."), back)
    try:
        run = clearing.mark_handled(session, company, cw, kind=kind,
                                    cw_id=request.form.get("record", type=int) or 0,
                                    reason=request.form.get("reason", ""), user=current_user)
        session.commit()
    except BatchRefused as refused:
        session.rollback()
        return _refused(refused, back)
    _enqueue(RunKind.CLEAR, run.id)
    return _go(url_for("runs.show", run_id=run.id))
