"""Background runs: start the self-check, follow any run's progress, list recent runs."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user

from portal.db import get_session
from portal.htmx import poll, render
from portal.jobs.registry import enqueue_run
from portal.models import JobRun, RunKind
from portal.routes.decorators import ALL_ROLES, role_required
from portal.services import audit, runs

bp = Blueprint("runs", __name__, url_prefix="/runs")
PER_PAGE = 25


def run_link(run: JobRun, labels: dict[int, runs.RunLabel] | None = None
             ) -> tuple[str, str]:
    """(label, URL) of a run for templates: a batch run opens its batch's page. Lists pass
    `labels` (one query for the page); a single run is looked up here."""
    label = (labels or {}).get(run.id) or runs.labels(get_session(), [run])[run.id]
    if label.batch_id is not None:
        return label.text, url_for("batches.show", batch_id=label.batch_id)
    return label.text, url_for("runs.show", run_id=run.id)


@bp.get("/")
@role_required(*ALL_ROLES)
def index():  # type: ignore[no-untyped-def]
    session = get_session()
    page = max(1, request.args.get("page", 1, type=int))
    import sqlalchemy as sa

    total = session.scalar(sa.select(sa.func.count()).select_from(JobRun)) or 0
    rows = list(session.scalars(sa.select(JobRun).order_by(JobRun.id.desc())
                                .offset((page - 1) * PER_PAGE).limit(PER_PAGE)))
    return render("runs/index.html", "runs_table", runs=rows, page=page,
                  run_labels=runs.labels(session, rows),
                  pages=max(1, -(-total // PER_PAGE)), total=total)


@bp.post("/self-check")
@role_required("admin")
def self_check():  # type: ignore[no-untyped-def]
    """Queue a self-check; the answer is the run's progress block, which then polls."""
    session = get_session()
    run = runs.start(session, RunKind.SELF_CHECK, user=current_user)
    audit.record(session, "run.start", target=run, after={"kind": run.kind})
    session.commit()  # before enqueueing: the worker must find the row
    try:
        enqueue_run(run.kind, run.id)
    except Exception:  # noqa: BLE001 - the run stays queued; the worker's sweep takes it
        import logging

        logging.getLogger(__name__).exception("run=%s could not be enqueued", run.id)
    return render("runs/show.html", "run_progress", run=run), 202


@bp.get("/<int:run_id>")
@role_required(*ALL_ROLES)
def show(run_id: int):  # type: ignore[no-untyped-def]
    """The run's page, or (polled by htmx) its progress block until it ends."""
    run = get_session().get(JobRun, run_id)
    if run is None:
        abort(404)
    return poll("runs/show.html", "run_progress", active=run.active, event="run-finished",
                run=run)
