"""Batches: pick unposted ConnectWise records and submit them, follow a batch, review them all.

The selection screen is a GET form, so its filters live in the URL; the selection travels
with it (checked boxes of the page shown, plus one compact hidden field for the other pages),
and Submit is a confirmation step whose form POSTs. The batch page polls its progress block
until the batch ends (286 + `run-finished`), and the items table reloads on that event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import (Blueprint, Response, abort, redirect, request,
                   stream_with_context, url_for)
from flask_login import current_user
from htmx_flask import make_response

from portal import clients
from portal.db import get_session
from portal.htmx import is_fragment_request, poll, render
from portal.integrations.errors import IntegrationError
from portal.jobs.registry import enqueue_run
from portal.models import (Batch, BatchItem, BatchStatus, BatchType, Company, CompanyStatus,
                           CwRef, RunKind)
from portal.routes.decorators import ALL_ROLES, role_required
from portal.services import batches as service
from portal.services import reference
from portal.services.company_settings import CompanySettings, get_settings
from portal.services.cw_invoices import Unposted, unposted
from portal.services.mapping import ENTITIES

log = logging.getLogger(__name__)

bp = Blueprint("batches", __name__, url_prefix="/batches")

BATCH_KINDS = {"invoices": "Invoices", "expenses": "Expenses", "inventory": "Inventory",
               "payments": "Payment sync"}
PER_PAGE = 100
LOCKED_SOURCES = {"WorkRoleWorkType": "Work role and work type",
                  "WorkRole": "Work role", "WorkType": "Work type"}
COLOURS = ("red", "yellow", "green", "grey")
QBO_PATHS = {"Invoice": "invoice", "CreditMemo": "creditmemo", "Bill": "bill",
             "VendorCredit": "vendorcredit", "Purchase": "expense", "JournalEntry": "journal"}
MANAGERS = ("admin", "accountant")
NOT_READY = {"quickbooks": "Connect a QuickBooks Online company first.",
             "connectwise": "Set up ConnectWise first.",
             "disabled": "Invoice batches are turned off for this company (Company tab)."}


# ---- the selection travels in the URL: ids as compact ranges ---------------------------------

def encode_ids(ids: Iterable[int]) -> str:
    """`21-40,42,50-51`: a selection short enough for a URL even when it is large."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    start = end = None
    for value in ordered + [None]:  # type: ignore[list-item]
        if start is not None and value == end + 1:  # type: ignore[operator]
            end = value
            continue
        if start is not None:
            parts.append(str(start) if start == end else f"{start}-{end}")
        start = end = value
    return ",".join(parts)


def decode_ids(text: str | None) -> set[int]:
    found: set[int] = set()
    for part in (text or "").split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        first, last = int(low), int(high or low)
        if 0 <= last - first <= 100_000:
            found.update(range(first, last + 1))
    return found


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


# ---- the selection screen ----------------------------------------------------------------

@dataclass
class GridRow:
    record: Unposted
    flags: list[tuple[str, int | None]]  # (label, batch id to link)
    selectable: bool
    checked: bool


@dataclass
class Selection:
    """What the selection form asked for, and what ConnectWise answered."""

    kind: str
    companies: list[Company]
    company: Company | None = None
    settings: CompanySettings | None = None
    not_ready: str | None = None  # "connectwise" | "quickbooks" | "disabled"
    error: tuple[str, str | None] | None = None
    locations: list[int] = field(default_factory=list)
    location_choices: list[tuple[int, str]] = field(default_factory=list)
    summary: str = "Default"
    locked_reason: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    rows: list[Unposted] = field(default_factory=list)
    selectable: set[int] = field(default_factory=set)
    flags: dict[int, list[tuple[str, int | None]]] = field(default_factory=dict)
    selected: set[int] = field(default_factory=set)
    dropped: int = 0
    cw: Any = None

    @property
    def chosen(self) -> list[Unposted]:
        return [r for r in self.rows if r.invoice_id in self.selected]

    def filter_args(self) -> dict[str, Any]:
        """The filters as URL parameters (for links that keep them)."""
        return {"company": self.company.id if self.company else None,
                "location": self.locations, "summary": self.summary,
                "from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else "", "filtered": 1}


def _companies() -> list[Company]:
    return list(get_session().scalars(sa.select(Company).where(
        Company.status != CompanyStatus.DISCONNECTED).order_by(
        Company.is_default.desc(), Company.qbo_name)))


def _today(settings: CompanySettings) -> date:
    try:
        return datetime.now(ZoneInfo(settings.time_zone)).date()
    except (KeyError, ValueError):
        return date.today()


def _location_choices(rows: list[Unposted], wanted: list[int]) -> list[tuple[int, str]]:
    """Cached ConnectWise locations, plus any the unposted rows or the URL name."""
    choices = {r.cw_id: (r.name or r.identifier or str(r.cw_id)) for r in get_session().scalars(
        sa.select(CwRef).where(CwRef.entity == "location"))}
    for row in rows:
        if row.location_id is not None:
            choices.setdefault(int(row.location_id), row.location or str(row.location_id))
    for wanted_id in wanted:
        choices.setdefault(wanted_id, f"Location {wanted_id}")
    return sorted(choices.items(), key=lambda pair: pair[1].lower())


def _selection(kind: str) -> Selection:
    """Read the form (query string or POST body), then the unposted invoices it filters."""
    session = get_session()
    values = request.values
    sel = Selection(kind=kind, companies=_companies())
    wanted = values.get("company", type=int)
    if wanted is not None:
        sel.company = next((c for c in sel.companies if c.id == wanted), None)
        if sel.company is None:
            abort(404)
    elif sel.companies:
        sel.company = sel.companies[0]
    if sel.company is None:
        sel.not_ready = "quickbooks"
        return sel
    sel.cw = clients.connectwise(session)
    if sel.cw is None:
        sel.not_ready = "connectwise"
        return sel
    settings = sel.settings = get_settings(session, sel.company)
    session.commit()  # the company's settings row may just have been created
    if "invoice" not in settings.enabled_types:
        sel.not_ready = "disabled"
        return sel
    filtered = bool(values.get("filtered"))
    sel.locations = sorted(set(values.getlist("location", type=int))) if filtered else \
        list(settings.default_location_ids)
    if settings.service_item_source in LOCKED_SOURCES:
        sel.summary = "Detailed"
        sel.locked_reason = (f"The service item source is "
                             f"“{LOCKED_SOURCES[settings.service_item_source]}” (Sales tab), "
                             "which needs the Detailed export.")
    else:
        asked = values.get("summary") if filtered else None
        sel.summary = asked if asked in service.SUMMARY_LEVELS else \
            settings.invoice_export_detail
    sel.date_from = _day(values.get("from")) if filtered else None
    sel.date_to = _day(values.get("to")) if filtered else _today(settings)
    try:
        sel.rows = unposted(sel.cw, location_ids=sel.locations, date_from=sel.date_from,
                            date_to=sel.date_to)
    except IntegrationError as exc:
        sel.error = (exc.message, exc.hint)
    sel.location_choices = _location_choices(sel.rows, sel.locations)
    live = service.live_items(session, [r.record_key for r in sel.rows])
    near = service.near_miss_records(session, sel.company)
    go_live = settings.go_live_date
    for row in sel.rows:
        flags: list[tuple[str, int | None]] = []
        if go_live and row.day and row.day < go_live:
            flags.append((f"before go-live ({go_live.isoformat()})", None))
        if row.number in near:
            flags.append(("near-miss", None))
        item = live.get(row.record_key)
        if item is not None:
            flags.append((service.live_label(item), item.batch_id))
        else:
            sel.selectable.add(row.invoice_id)  # only a live record cannot be picked
        sel.flags[row.invoice_id] = flags
    asked_ids = decode_ids(values.get("sel")) | set(values.getlist("record", type=int))
    sel.selected = asked_ids & sel.selectable
    sel.dropped = len(asked_ids - sel.selected) if not sel.error else 0
    return sel


def _grid_context(sel: Selection) -> dict[str, Any]:
    """Apply the grid's buttons (page, select page/all/none, confirm) and lay the page out."""
    values = request.values
    act = values.get("act", "")
    pages = max(1, -(-len(sel.rows) // PER_PAGE))
    at = min(max(1, values.get("at", 1, type=int)), pages)
    on_page = {r.invoice_id for r in sel.rows[(at - 1) * PER_PAGE:at * PER_PAGE]}
    if act == "select_page":
        sel.selected |= on_page & sel.selectable
    elif act == "deselect_page":
        sel.selected -= on_page
    elif act == "select_all":
        sel.selected = set(sel.selectable)
    elif act == "select_none":
        sel.selected = set()
    page = min(max(1, values.get("page", at, type=int)), pages)
    shown = sel.rows[(page - 1) * PER_PAGE:page * PER_PAGE]
    grid = [GridRow(r, sel.flags.get(r.invoice_id, []), r.invoice_id in sel.selectable,
                    r.invoice_id in sel.selected) for r in shown]
    home = (sel.company.home_currency if sel.company else None) or "USD"
    chosen = sel.chosen
    return {"sel": sel, "grid": grid, "page": page, "pages": pages,
            "carried": encode_ids(sel.selected - {r.invoice_id for r in shown}),
            "confirm": act == "confirm" and bool(chosen), "asked_confirm": act == "confirm",
            "chosen_count": len(chosen), "totals": service.totals_of(chosen, home),
            "all_ids": encode_ids(sel.selected), "levels": service.SUMMARY_LEVELS}


def _coming(title: str, summary: str):  # type: ignore[no-untyped-def]
    return render("placeholder.html", title=title, summary=summary)


@bp.get("/new/<kind>")
@role_required(*MANAGERS)
def new(kind: str):  # type: ignore[no-untyped-def]
    """The selection screen: filters, the unposted grid, Validate only and Submit."""
    if kind not in BATCH_KINDS:
        abort(404)
    if kind != "invoices":
        return _coming(f"Run new batch: {BATCH_KINDS[kind]}",
                       "Pick unposted ConnectWise transactions and post them to QuickBooks "
                       "Online.")
    return render("batches/new_invoices.html", "selection", **_grid_context(_selection(kind)))


@bp.get("/new/<kind>/validate")
@role_required(*MANAGERS)
def validate(kind: str):  # type: ignore[no-untyped-def]
    """Pre-flight of the selection, grouped by problem; writes nothing."""
    if kind != "invoices":
        abort(404)
    sel = _selection(kind)
    session = get_session()
    problems: list[dict[str, Any]] = []
    error = sel.error
    refs_missing = False
    if sel.not_ready is None and error is None and sel.selected:
        refs_missing = not any(age.fetched_at for age in reference.ages(session, sel.company)
                               if age.side == "qbo")
        try:
            problems = service.validate_selection(session, sel.company, sel.cw, sel.chosen,
                                                  sel.summary)
        except IntegrationError as exc:
            error = (exc.message, exc.hint)
        session.commit()  # settings defaults may have been stored
    return render("batches/validate.html", "validation", sel=sel, problems=problems,
                  error=error, checked=len(sel.chosen), entities=ENTITIES,
                  failing=len({r for group in problems for r in group["records"]}),
                  refs_missing=refs_missing, all_ids=encode_ids(sel.selected))


@bp.post("/new/<kind>")
@role_required(*MANAGERS)
def create(kind: str):  # type: ignore[no-untyped-def]
    """Create the batch and its items, commit, enqueue, and go to the batch page."""
    if kind != "invoices":
        abort(404)
    session = get_session()
    sel = _selection(kind)
    back = url_for("batches.new", kind=kind, sel=encode_ids(sel.selected), **sel.filter_args())
    if sel.not_ready or sel.error:
        return _refused(service.BatchRefused(sel.error[0] if sel.error else NOT_READY[
            sel.not_ready or ""]), back)
    asked = decode_ids(request.values.get("sel")) | set(request.values.getlist("record",
                                                                               type=int))
    if asked - sel.selected:
        return _refused(service.BatchRefused(
            f"{len(asked - sel.selected)} selected record(s) are no longer unposted, or are "
            "now in another batch or before go-live. Refresh the list and submit again."),
            back)
    options = {"locations": sel.locations, "summary": sel.summary,
               "date_from": sel.date_from.isoformat() if sel.date_from else None,
               "date_to": sel.date_to.isoformat() if sel.date_to else None}
    try:
        batch = service.submit(session, sel.company, sel.chosen, user=current_user,
                               options=options, batch_type=BatchType.INVOICE)
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
    batch = get_session().get(Batch, batch_id)
    if batch is None:
        abort(404)
    return batch


def _eta_seconds(batch: Batch) -> float | None:
    run = batch.run
    elapsed = batch.duration_seconds
    if not batch.active or run is None or not run.total or not run.done or not elapsed:
        return None
    return elapsed / run.done * max(0, run.total - run.done)


def _progress_context(batch: Batch) -> dict[str, Any]:
    return {"batch": batch, "events": service.recent_events(get_session(), batch, 10),
            "eta": _eta_seconds(batch), "can_manage": _can_manage()}


def _items_context(batch: Batch) -> dict[str, Any]:
    session = get_session()
    return {"batch": batch, "items": service.items_of(session, batch),
            "can_retry": _can_manage() and not batch.active and
            bool(service.retryable(session, batch)),
            "can_manage": _can_manage(), "entities": ENTITIES,
            "links": service.links(session), "qbo_paths": QBO_PATHS}


def _can_manage() -> bool:
    return current_user.is_authenticated and current_user.role.value in MANAGERS


def _show_context(batch: Batch) -> dict[str, Any]:
    session = get_session()
    numbers = service.version_numbers(session, [batch.settings_version_id])
    changes = service.settings_changes(session, batch)
    session.commit()  # reading current settings may have stored their defaults
    names = {r.cw_id: r.name or r.identifier or str(r.cw_id) for r in session.scalars(
        sa.select(CwRef).where(CwRef.entity == "location"))}
    return {**_items_context(batch), **_progress_context(batch), "changes": changes,
            "version": numbers.get(batch.settings_version_id or 0), "location_names": names}


@bp.get("/<int:batch_id>")
@role_required(*ALL_ROLES)
def show(batch_id: int):  # type: ignore[no-untyped-def]
    """The batch page: header, live progress, items, pre-flight issues."""
    return render("batches/show.html", **_show_context(_batch_or_404(batch_id)))


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
    """The items table (reloaded when the batch finishes); the whole page when not htmx."""
    batch = _batch_or_404(batch_id)
    if not is_fragment_request():
        return render("batches/show.html", **_show_context(batch))
    return render("batches/show.html", "batch_items", **_items_context(batch))


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
    """The items as CSV (streamed, UTF-8, formula-safe)."""
    batch = _batch_or_404(batch_id)
    rows = service.items_of(get_session(), batch)
    return _csv(service.items_csv(rows), f"batch-{batch.id}.csv")


@bp.post("/<int:batch_id>/retry")
@role_required(*MANAGERS)
def retry(batch_id: int):  # type: ignore[no-untyped-def]
    """Move the failed, uncertain and unmarked items to a new batch and start it."""
    session = get_session()
    batch = _batch_or_404(batch_id)
    try:
        new_batch = service.retry(session, batch, current_user)
        session.commit()  # before enqueueing: the worker must find the rows
    except service.BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("batches.show", batch_id=batch_id))
    _enqueue(new_batch)
    return _go(url_for("batches.show", batch_id=new_batch.id))


@bp.post("/<int:batch_id>/items/<int:item_id>/adopt")
@role_required(*MANAGERS)
def adopt(batch_id: int, item_id: int):  # type: ignore[no-untyped-def]
    """Link the record to the QuickBooks document holding its DocNumber and mark it."""
    session = get_session()
    batch = _batch_or_404(batch_id)
    item = session.get(BatchItem, item_id)
    if item is None or item.batch_id != batch.id:
        abort(404)
    try:
        new_batch = service.adopt(session, batch, item, current_user)
        session.commit()
    except service.BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("batches.show", batch_id=batch_id))
    _enqueue(new_batch)
    return _go(url_for("batches.show", batch_id=new_batch.id))


@bp.post("/<int:batch_id>/resume")
@role_required(*MANAGERS)
def resume(batch_id: int):  # type: ignore[no-untyped-def]
    """Continue a paused batch (after the company was reconnected)."""
    session = get_session()
    batch = _batch_or_404(batch_id)
    try:
        service.resume(session, batch, current_user)
        session.commit()
    except service.BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("batches.show", batch_id=batch_id))
    _enqueue(batch)
    return _go(url_for("batches.show", batch_id=batch_id))


@bp.post("/<int:batch_id>/cancel")
@role_required(*MANAGERS)
def cancel(batch_id: int):  # type: ignore[no-untyped-def]
    """Ask the running batch to stop before its next record."""
    session = get_session()
    batch = _batch_or_404(batch_id)
    try:
        service.cancel(session, batch, current_user)
        session.commit()
    except service.BatchRefused as refused:
        session.rollback()
        return _refused(refused, url_for("batches.show", batch_id=batch_id))
    return _go(url_for("batches.show", batch_id=batch_id))


# ---- the review list -----------------------------------------------------------------------

def _filters() -> service.Filters:
    args = request.args
    kind = args.get("type") or None
    colour = args.get("colour") or None
    status = args.get("status") or None
    trigger = args.get("trigger") or None
    return service.Filters(
        type=kind if kind in {t.value for t in BatchType} else None,
        colour=colour if colour in COLOURS else None,
        status=status if status in {s.value for s in BatchStatus} else None,
        trigger=trigger if trigger in service.TRIGGERS else None,
        company_id=args.get("company", type=int) or None,
        date_from=_day(args.get("from")), date_to=_day(args.get("to")),
        record=(args.get("record") or "").strip() or None,
        before_id=args.get("before", type=int) or None)


def _list_context(filters: service.Filters) -> dict[str, Any]:
    session = get_session()
    rows = service.listing(session, filters, service.PAGE)
    return {"batches": rows, "filters": filters, "query": filters.query(),
            "more": len(rows) == service.PAGE,
            "versions": service.version_numbers(session, [b.settings_version_id
                                                          for b in rows]),
            "companies": list(session.scalars(sa.select(Company).order_by(Company.qbo_name))),
            "types": list(BatchType), "colours": COLOURS, "statuses": list(BatchStatus),
            "triggers": service.TRIGGERS}


@bp.get("/", endpoint="index")
@role_required(*ALL_ROLES)
def batches_index():  # type: ignore[no-untyped-def]
    """Every batch, newest first, filtered by the URL; more rows load as you scroll."""
    return render("batches/index.html", "batch_list", **_list_context(_filters()))


@bp.get("/rows")
@role_required(*ALL_ROLES)
def rows():  # type: ignore[no-untyped-def]
    """The next 50 rows older than `before` (keyset pagination), as one <tbody>."""
    return render("batches/index.html", "batch_rows", **_list_context(_filters()))


@bp.get("/export.csv")
@role_required(*ALL_ROLES)
def export():  # type: ignore[no-untyped-def]
    """The filtered list as CSV (every match, streamed)."""
    filters = _filters()
    found = service.listing(get_session(), filters, None)  # type: ignore[arg-type]
    return _csv(service.list_csv(found), "batches.csv")


def _csv(lines: Iterable[str], filename: str) -> Response:
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# ---- still to come -----------------------------------------------------------------------

@bp.get("/clear")
@role_required("admin")
def clear():  # type: ignore[no-untyped-def]
    return _coming("Clear old transactions", "Mark transactions already in QuickBooks as "
                   "exported so they are never posted.")
