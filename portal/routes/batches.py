"""Batches: pick unposted ConnectWise records and submit them, follow a batch, review them all.

The selection screen is a GET form, so its filters live in the URL; the selection travels
with it (checked boxes of the page shown, plus one compact hidden field for the other pages),
and Submit is a confirmation step whose form POSTs. The batch page polls its progress block
until the batch ends (286 + `run-finished`), and the items table reloads on that event.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, redirect, request, url_for
from flask_login import current_user
from htmx_flask import make_response
from sqlalchemy.orm import joinedload

from portal.db import get_session
from portal.htmx import is_fragment_request, poll, render
from portal.jobs.registry import enqueue_run
from portal.models import (
    Batch,
    BatchItem,
    BatchStatus,
    BatchType,
    Company,
    CwRef,
    ItemState,
    RunKind,
)
from portal.routes.decorators import ALL_ROLES, role_required
from portal.routes.downloads import csv_download
from portal.services import batch_charts, date_range, selection
from portal.services import batches as service
from portal.services.mapping import ENTITIES
from portal.services.sorting import Sort

log = logging.getLogger(__name__)

bp = Blueprint("batches", __name__, url_prefix="/batches")

BATCH_KINDS = {"invoices": "Invoices", "expenses": "Expenses", "inventory": "Inventory",
               "payments": "Payment sync"}
COLOURS = ("red", "yellow", "green", "grey")
QBO_PATHS = {"Invoice": "invoice", "CreditMemo": "creditmemo", "Bill": "bill",
             "VendorCredit": "vendorcredit", "Purchase": "expense", "JournalEntry": "journal"}
MANAGERS = ("admin", "accountant")
NOT_READY = {"quickbooks": "Connect a QuickBooks Online company first.",
             "connectwise": "Set up ConnectWise first.",
             "disabled": "{title} batches are turned off for this company (Company tab)."}


# ---- the selection screen (state in services/selection.py) ----------------------------------

def _screen(kind: str) -> selection.Screen:
    """The selection screen of a built record type; 404 for any other kind."""
    screen = selection.screen(kind)
    if screen is None:
        abort(404)
    return screen


def _selection(kind: str) -> selection.Selection:
    try:
        return selection.select(get_session(), selection.Form.of(request.values),
                                _screen(kind).slug)
    except selection.UnknownCompany:
        abort(404)


@bp.get("/new/<kind>")
@role_required(*MANAGERS)
def new(kind: str):  # type: ignore[no-untyped-def]
    """The selection screen: filters, the unposted grid, Validate only and Submit."""
    if kind not in BATCH_KINDS:
        abort(404)
    if selection.screen(kind) is None:  # payment sync selects nothing: it has its own page
        return redirect(url_for("payments.index"), 303)
    return render("batches/new.html", "selection", **selection.grid(_selection(kind)))


@bp.get("/new/<kind>/validate")
@role_required(*MANAGERS)
def validate(kind: str):  # type: ignore[no-untyped-def]
    """"Validate only": the batch's own pre-flight over the selection, and the document each
    record would become; writes nothing."""
    sel = _selection(kind)
    result = selection.Validation()
    if sel.not_ready is None and sel.error is None:
        result = selection.validate(get_session(), sel)
    return render("batches/validate.html", "validation", sel=sel, result=result,
                  entities=ENTITIES, all_ids=selection.encode_ids(sel.selected))


@bp.post("/new/<kind>")
@role_required(*MANAGERS)
def create(kind: str):  # type: ignore[no-untyped-def]
    """Create the batch and its items, commit, enqueue, and go to the batch page."""
    session = get_session()
    sel = _selection(kind)
    back = url_for("batches.new", kind=kind, sel=selection.encode_ids(sel.selected),
                   **sel.filter_args())
    if sel.not_ready or sel.error:
        return _refused(service.BatchRefused(sel.error[0] if sel.error else NOT_READY[
            sel.not_ready or ""].format(title=sel.screen.title)), back)
    if sel.date_errors:
        return _refused(service.BatchRefused(" ".join(sel.date_errors.values())), back)
    asked = sel.form.asked
    if asked - sel.selected:
        return _refused(service.BatchRefused(
            f"{len(asked - sel.selected)} selected record(s) are no longer unposted, or are "
            "now in another batch or before go-live. Refresh the list and submit again."),
            back)
    options = sel.options()
    if request.form.get("rebatch") in ("update", "adopt"):  # SPEC 11.3, while still live
        options["rebatch"] = request.form["rebatch"]
    try:
        batch = service.submit(session, sel.company, sel.chosen, user=current_user,
                               options=options, batch_type=sel.screen.kind)
        session.commit()  # before enqueueing: the worker must find the rows
    except service.BatchRefused as refused:
        session.rollback()
        return _refused(refused, back)
    _enqueue(batch)
    return _go(url_for("batches.show", batch_id=batch.id))


def _enqueue(batch: Batch) -> None:
    try:
        enqueue_run(RunKind.BATCH, batch.run_id)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the run stays queued; the worker's sweep takes it
        log.exception("batch=%s run=%s could not be enqueued", batch.id, batch.run_id)


def _go(url: str) -> Response:
    """303 for a plain form, HX-Redirect for htmx."""
    if request.htmx:  # type: ignore[attr-defined]
        return make_response("", 200, redirect=url)
    return redirect(url, 303)  # type: ignore[return-value]


def _refused(refused: service.BatchRefused, back: str | None):  # type: ignore[no-untyped-def]
    return render("batches/refused.html", "batch_refused", message=str(refused),
                  holder=refused.holder, run=refused.run, back=back), 409


# ---- one batch -------------------------------------------------------------------------------

def _batch_or_404(batch_id: int) -> Batch:
    """The batch with its company and run, which every batch page shows (one statement)."""
    batch = get_session().get(Batch, batch_id, options=[joinedload(Batch.company),
                                                        joinedload(Batch.run)])
    if batch is None:
        abort(404)
    return batch


def _can_manage() -> bool:
    return current_user.is_authenticated and current_user.role.value in MANAGERS


def _progress_context(batch: Batch) -> dict[str, Any]:
    return {"batch": batch, "events": service.recent_events(get_session(), batch, 10),
            "steps": service.steps_of(batch), "can_manage": _can_manage()}


def _item_filters() -> service.ItemFilters:
    state = request.args.get("state") or None
    colour = request.args.get("colour") or None
    return service.ItemFilters(
        state=state if state in {s.value for s in ItemState} else None,
        colour=colour if colour in COLOURS else None)


def _after() -> tuple[int, int] | None:
    """The keyset cursor `position:id` of the last row shown."""
    position, _, item_id = (request.args.get("after") or "").partition(":")
    if position.isdigit() and item_id.isdigit() and len(position) < 10 and len(item_id) < 19:
        return int(position), int(item_id)
    return None


def _rows_context(batch: Batch, filters: service.ItemFilters,
                  after: tuple[int, int] | None = None) -> dict[str, Any]:
    """One page of item rows (what block item_rows needs): a later page of the infinite
    scroll costs its rows, not the batch's counts."""
    session = get_session()
    rows = service.item_page(session, batch, filters, after)
    return {"batch": batch, "items": rows, "filters": filters, "query": filters.query(),
            "more": len(rows) == service.ITEM_PAGE, "can_manage": _can_manage(),
            "links": service.links(session), "qbo_paths": QBO_PATHS}


def _items_context(batch: Batch, filters: service.ItemFilters) -> dict[str, Any]:
    """The items section: the first page of rows, the filters with their counts, Retry."""
    counts = service.item_counts(get_session(), batch)
    return {**_rows_context(batch, filters), "states": counts.states,
            "colours": counts.colours, "colour_names": COLOURS,
            "can_retry": _can_manage() and not batch.active and counts.retryable > 0
            and batch.type is not BatchType.CLEAR,
            "entities": ENTITIES}


def _show_context(batch: Batch) -> dict[str, Any]:
    session = get_session()
    numbers = service.version_numbers(session, [batch.settings_version_id])
    names = {}
    if (batch.options or {}).get("locations"):  # read only when the header names them
        names = {r.cw_id: r.name or r.identifier or str(r.cw_id) for r in session.scalars(
            sa.select(CwRef).where(CwRef.entity == "location"))}
    return {**_items_context(batch, _item_filters()), **_progress_context(batch),
            "changes": service.settings_changes(session, batch),
            "version": numbers.get(batch.settings_version_id or 0), "location_names": names}


@bp.get("/<int:batch_id>")
@role_required(*ALL_ROLES)
def show(batch_id: int):  # type: ignore[no-untyped-def]
    """The batch page: header, live progress, the first page of items, pre-flight issues."""
    batch = _batch_or_404(batch_id)
    if batch.type is BatchType.PAYMENT:  # its items are invoices synced, on their own page
        return redirect(url_for("payments.batch", batch_id=batch.id))
    return render("batches/show.html", **_show_context(batch))


@bp.get("/<int:batch_id>/progress")
@role_required(*ALL_ROLES)
def progress(batch_id: int):  # type: ignore[no-untyped-def]
    """Polled every second while the batch is active; the last answer is 286 + run-finished."""
    batch = _batch_or_404(batch_id)
    return poll("batches/progress.html", "batch_progress", active=batch.active,
                event="run-finished", **_progress_context(batch))


@bp.get("/<int:batch_id>/items")
@role_required(*ALL_ROLES)
def items(batch_id: int):  # type: ignore[no-untyped-def]
    """The items section (counts, filters, first page), reloaded when the batch finishes or
    a filter changes; with `after`, the next page of rows (infinite scroll)."""
    batch = _batch_or_404(batch_id)
    if not is_fragment_request():
        return render("batches/show.html", **_show_context(batch))
    after = _after()
    if after is not None:
        return render("batches/show.html", "item_rows",
                      **_rows_context(batch, _item_filters(), after))
    return render("batches/show.html", "batch_items", **_items_context(batch, _item_filters()))


@bp.get("/<int:batch_id>/items/<int:item_id>/events")
@role_required(*ALL_ROLES)
def events(batch_id: int, item_id: int):  # type: ignore[no-untyped-def]
    """Every state change and external call of one item (and its payload, for admins)."""
    session = get_session()
    item = session.get(BatchItem, item_id)
    if item is None or item.batch_id != batch_id:
        abort(404)
    return render("batches/events.html", "item_events", batch=item.batch, item=item,
                  events=service.events_of(session, item),
                  show_payload=current_user.role.value == "admin")


@bp.get("/<int:batch_id>.csv")
@role_required(*ALL_ROLES)
def export_items(batch_id: int):  # type: ignore[no-untyped-def]
    """The items as CSV, streamed in pages (UTF-8, formula-safe, bounded memory)."""
    batch = _batch_or_404(batch_id)
    return csv_download(lambda session, bom: service.items_csv(
        service.items_of(session, batch), bom=bom), f"batch-{batch.id}.csv")


def _act(batch_id: int, action: Any, *, start: bool) -> Response:
    """Run one batch action, commit, enqueue the batch it starts, and go to that batch;
    a refusal (409) is shown on the batch page."""
    session = get_session()
    try:
        target = action(session, _batch_or_404(batch_id), current_user)
        session.commit()  # before enqueueing: the worker must find the rows
    except service.BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("batches.show", batch_id=batch_id))
    if start:
        _enqueue(target)
    return _go(url_for("batches.show", batch_id=target.id if target else batch_id))


@bp.post("/<int:batch_id>/retry")
@role_required(*MANAGERS)
def retry(batch_id: int):  # type: ignore[no-untyped-def]
    """Move the failed, uncertain, unmarked and skipped items to a new batch and start it."""
    return _act(batch_id, service.retry, start=True)


@bp.post("/<int:batch_id>/items/<int:item_id>/retry")
@role_required(*MANAGERS)
def retry_item(batch_id: int, item_id: int):  # type: ignore[no-untyped-def]
    """Move this one record to a new batch and start it (SPEC 13.2)."""
    return _act_on_item(batch_id, item_id, lambda session, batch, user, item: service.retry(
        session, batch, user, only=item))


def _act_on_item(batch_id: int, item_id: int, action: Any) -> Response:
    item = get_session().get(BatchItem, item_id)
    if item is None or item.batch_id != batch_id:
        abort(404)
    return _act(batch_id, lambda session, batch, user: action(session, batch, user, item),
                start=True)


@bp.post("/<int:batch_id>/items/<int:item_id>/adopt")
@role_required(*MANAGERS)
def adopt(batch_id: int, item_id: int):  # type: ignore[no-untyped-def]
    """Link the record to the QuickBooks document holding its DocNumber and mark it."""
    return _act_on_item(batch_id, item_id, lambda session, batch, user, item: service.adopt(
        session, batch, item, user))


@bp.post("/<int:batch_id>/resume")
@role_required(*MANAGERS)
def resume(batch_id: int):  # type: ignore[no-untyped-def]
    """Continue a paused batch (after the company was reconnected)."""
    return _act(batch_id, service.resume, start=True)


@bp.post("/<int:batch_id>/cancel")
@role_required(*MANAGERS)
def cancel(batch_id: int):  # type: ignore[no-untyped-def]
    """Ask the running batch to stop before its next record."""
    return _act(batch_id, service.cancel, start=False)


# ---- the review list -----------------------------------------------------------------------

def _filters() -> service.Filters:
    """The list's filters, order and keyset cursor from the URL; a malformed cursor is a
    422 naming it (unknown filter values are ignored, as a hand-edited URL may hold)."""
    args = request.args
    kind = args.get("type") or None
    colour = args.get("colour") or None
    status = args.get("status") or None
    trigger = args.get("trigger") or None
    dates = date_range.parse(args.get("from"), args.get("to"))
    sort = Sort.parse(args.get("sort"), service.LIST_SORTS, "-id")
    try:
        before_key = service.parse_cursor(sort, args.get("at"))
    except ValueError as exc:
        abort(422, description=str(exc))
    return service.Filters(
        type=kind if kind in {t.value for t in BatchType} else None,
        colour=colour if colour in COLOURS else None,
        status=status if status in {s.value for s in BatchStatus} else None,
        trigger=trigger if trigger in service.TRIGGERS else None,
        company_id=args.get("company", type=int) or None,
        date_from=dates.date_from, date_to=dates.date_to, date_errors=dates.errors,
        record=(args.get("record") or "").strip() or None, sort=sort,
        before_id=args.get("before", type=int) or None, before_key=before_key)


def _list_context(filters: service.Filters, charts: bool = False) -> dict[str, Any]:
    session = get_session()
    rows = service.listing(session, filters, service.PAGE)
    drawn = {"posted_charts": batch_charts.posted_by_month(session, filters),
             "failed_chart": batch_charts.failed_by_month(session, filters)} if charts else {}
    return {**drawn, "batches": rows, "posted": service.posted_totals(session, rows),
            "filters": filters, "query": filters.query(),
            "more": len(rows) == service.PAGE,
            "versions": service.version_numbers(session, [b.settings_version_id
                                                          for b in rows]),
            "companies": list(session.scalars(sa.select(Company).order_by(Company.qbo_name))),
            "types": list(BatchType), "colours": COLOURS, "statuses": list(BatchStatus),
            "triggers": service.TRIGGERS, "fragment": is_fragment_request(),
            "sort": filters.sort, "sort_value": service.sort_value}


@bp.get("/", endpoint="index")
@role_required(*ALL_ROLES)
def batches_index():  # type: ignore[no-untyped-def]
    """Every batch, newest first, filtered by the URL; more rows load as you scroll."""
    return render("batches/index.html", "batch_list", **_list_context(_filters(), charts=True))


@bp.get("/rows")
@role_required(*ALL_ROLES)
def rows():  # type: ignore[no-untyped-def]
    """The next 50 rows older than `before` (keyset pagination), as one <tbody>."""
    return render("batches/index.html", "batch_rows",
                  **_list_context(_filters(), charts=not is_fragment_request()))


@bp.get("/export.csv")
@role_required(*ALL_ROLES)
def export():  # type: ignore[no-untyped-def]
    """The filtered list as CSV (every match, streamed)."""
    filters = _filters()
    return csv_download(lambda session, bom: service.list_csv(
        session, service.every_listed(session, filters), bom=bom), "batches.csv")

