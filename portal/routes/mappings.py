"""Mappings: the reference cache (age, refresh) and the editors that match both sides."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, request
from flask_login import current_user
from htmx_flask import make_response

from portal.db import get_session
from portal.htmx import is_fragment_request, render
from portal.jobs.registry import enqueue_run
from portal.models import Company, CompanyStatus, RunKind
from portal.routes.decorators import role_required
from portal.services import (
    audit,
    creation,
    currency_mapping,
    item_types,
    mapping,
    reference,
    runs,
    scan,
    tax_mapping,
)
from portal.services.mapping import BLOCKING, ENTITIES
from portal.services.sorting import Sort

bp = Blueprint("mappings", __name__, url_prefix="/mappings")
PER_PAGE = 50


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
    latest = scan.latest(session, company) if company else None
    editor_counts: dict[str, int] = {}
    if latest is not None:
        from portal.models.mapping import MappingValue

        editor_counts = dict(session.execute(
            sa.select(MappingValue.kind, sa.func.count()).where(
                MappingValue.scan_id == latest.id, MappingValue.status.in_(BLOCKING))
            .group_by(MappingValue.kind)).all())
    return render("mappings/index.html", "reference_card", company=company,
                  companies=companies, ages=reference.ages(session, company),
                  latest_scan=latest, entities=ENTITIES, editor_counts=editor_counts,
                  blocking=scan.blocking(session, latest) if latest else 0,
                  fragment=is_fragment_request())


def _start(kind: RunKind, action: str | None = None):  # type: ignore[no-untyped-def]
    """Start a run for the selected company; its progress block, or why it cannot start."""
    session = get_session()
    company = selected_company()
    if company is None:
        return render("mappings/_no_company.html"), 409
    try:
        run = runs.start(session, kind, user=current_user, company_id=company.id)
    except runs.RunAlreadyActive as busy:
        session.rollback()
        return render("runs/_busy.html", run=busy.active_run), 409
    if action:
        audit.record(session, action, target=run, company_id=company.id)
    session.commit()  # before enqueueing: the worker must find the row
    enqueue_run(run.kind, run.id)
    return render("runs/show.html", "run_progress", run=run), 202


@bp.post("/refresh")
@role_required("admin", "accountant")
def refresh():  # type: ignore[no-untyped-def]
    """Start a refresh of every list for the company; the answer is its progress block."""
    return _start(RunKind.REFERENCE_REFRESH, "reference.refresh")


def _company_or_404() -> Company:
    company = selected_company()
    if company is None:
        abort(404)
    return company


@bp.post("/scan")
@role_required("admin", "accountant")
def scan_start():  # type: ignore[no-untyped-def]
    """Check the unposted backlog against the mappings (a background run)."""
    return _start(RunKind.MAPPING_SCAN)


@bp.get("/preflight")
@role_required("admin", "accountant")
def preflight():  # type: ignore[no-untyped-def]
    """What would fail if I batched now: the latest scan, grouped by fix."""
    from portal.models.mapping import MappingValue

    session = get_session()
    company = _company_or_404()
    latest = scan.latest(session, company)
    problems = []
    if latest is not None:
        problems = list(session.scalars(
            sa.select(MappingValue).where(MappingValue.scan_id == latest.id,
                                          MappingValue.status.in_(BLOCKING))
            .order_by(MappingValue.records.desc(), MappingValue.kind, MappingValue.cw_value)))
    return render("mappings/preflight.html", "preflight_results", company=company,
                  scan=latest, problems=problems, entities=ENTITIES)


@bp.get("/tax-codes")
@role_required("admin", "accountant")
def tax_codes():  # type: ignore[no-untyped-def]
    """Tax code mapping rows: each ConnectWise code and the QuickBooks code it maps to."""
    session = get_session()
    company = _company_or_404()
    return render("mappings/tax_codes.html", "tax_table", company=company,
                  rows=tax_mapping.rows(session, company),
                  choices=tax_mapping.choices(session, company), error=None, saved=None,
                  warning=None)


@bp.post("/tax-codes")
@role_required("admin", "accountant")
def tax_codes_save():  # type: ignore[no-untyped-def]
    session = get_session()
    company = _company_or_404()
    cw_code, qbo_id = request.form.get("cw_code", ""), request.form.get("qbo_id", "")
    error = warning = saved = None
    status = 200
    try:
        if request.form.get("remove"):
            tax_mapping.remove(session, company, cw_code)
            saved = f"Removed the mapping of {cw_code}."
        else:
            warning = tax_mapping.save(session, company, cw_code, qbo_id)
            saved = f"Saved: {cw_code} → {tax_mapping.name_of(session, company, qbo_id)}."
        session.commit()
    except tax_mapping.TaxMappingError as exc:
        session.rollback()
        error, status = str(exc), 422
    body = render("mappings/tax_codes.html", "tax_table", company=company,
                  rows=tax_mapping.rows(session, company),
                  choices=tax_mapping.choices(session, company), error=error,
                  saved=saved, warning=warning)
    return make_response(body, status, trigger="mapping-saved" if status == 200 else None)


def _item_types_body(company: Company, error: str | None = None,
                     error_xref: str | None = None) -> str:
    return render("mappings/item_types.html", "item_type_table", company=company,
                  rows=item_types.rows(get_session(), company), labels=item_types.LABELS,
                  error=error, error_xref=error_xref)


@bp.get("/item-types")
@role_required("admin", "accountant")
def item_types_page():  # type: ignore[no-untyped-def]
    """The item-type table: each ConnectWise Type Xref and the QuickBooks type new items get."""
    return _item_types_body(_company_or_404())


@bp.post("/item-types")
@role_required("admin", "accountant")
def item_types_save():  # type: ignore[no-untyped-def]
    """Save one Xref's QuickBooks type, or reset it to the default (`reset`)."""
    session = get_session()
    company = _company_or_404()
    type_xref = request.form.get("type_xref", "")
    error, status = None, 200
    try:
        if request.form.get("reset"):
            item_types.reset(session, company, type_xref)
        else:
            item_types.save(session, company, type_xref, request.form.get("qbo_type", ""))
        session.commit()
    except item_types.ItemTypeError as exc:
        session.rollback()
        error, status = str(exc), 422
    return make_response(_item_types_body(company, error, type_xref if error else None),
                         status, trigger="mapping-saved" if status == 200 else None)


def _currencies_body(company: Company, error: str | None = None,
                     error_code: str | None = None) -> str:
    session = get_session()
    return render("mappings/currencies.html", "currency_table", company=company,
                  rows=currency_mapping.rows(session, company),
                  choices=currency_mapping.qbo_currencies(session, company),
                  error=error, error_code=error_code)


@bp.get("/currencies")
@role_required("admin", "accountant")
def currencies():  # type: ignore[no-untyped-def]
    """Currency mapping rows: each ConnectWise currency and the QuickBooks one it maps to."""
    return _currencies_body(_company_or_404())


@bp.post("/currencies")
@role_required("admin", "accountant")
def currencies_save():  # type: ignore[no-untyped-def]
    """Add or replace one ConnectWise code's row, or remove it (`remove`)."""
    session = get_session()
    company = _company_or_404()
    cw_code = request.form.get("cw_code", "")
    error, status = None, 200
    try:
        if request.form.get("remove"):
            currency_mapping.remove(session, company, cw_code)
        else:
            currency_mapping.save(session, company, cw_code,
                                  request.form.get("qbo_currency", ""))
        session.commit()
    except currency_mapping.CurrencyMappingError as exc:
        session.rollback()
        error, status = str(exc), 422
    return make_response(_currencies_body(company, error, cw_code if error else None),
                         status, trigger="mapping-saved" if status == 200 else None)


@bp.get("/<kind>")
@role_required("admin", "accountant")
def editor(kind: str):  # type: ignore[no-untyped-def]
    """One entity's values from the latest scan, with their status and fixes."""
    if kind not in ENTITIES:
        abort(404)
    return render("mappings/editor.html", "editor_table", **_editor_context(kind))


def _editor_context(kind: str) -> dict:  # type: ignore[type-arg]
    from portal.models.mapping import MappingValue

    session = get_session()
    company = _company_or_404()
    latest = scan.latest(session, company)
    status = request.args.get("status", "")
    search = (request.args.get("q") or "").strip()
    page = max(1, request.args.get("page", 1, type=int))
    sort = Sort.parse(request.args.get("sort"), scan.EDITOR_SORTS)
    rows: list = []
    total = 0
    if latest is not None:
        query = sa.select(MappingValue).where(MappingValue.scan_id == latest.id,
                                              MappingValue.kind == kind)
        if status:
            query = query.where(MappingValue.status == status)
        if search:
            like = f"%{search.lower()}%"
            query = query.where(sa.or_(sa.func.lower(MappingValue.cw_value).like(like),
                                       sa.func.lower(MappingValue.qbo_name).like(like)))
        total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
        rows = list(session.scalars(scan.editor_order(query, sort)
                                    .offset((page - 1) * PER_PAGE).limit(PER_PAGE)))
    return {"kind": kind, "title": ENTITIES[kind][1], "company": company, "scan": latest,
            "rows": rows, "status": status, "q": search, "page": page,
            "pages": max(1, -(-total // PER_PAGE)), "total": total,
            "counts": scan.counts(session, latest, kind) if latest else {},
            "acceptable": scan.acceptable(session, latest, kind) if latest else 0,
            "blocking_total": scan.blocking(session, latest) if latest else 0,
            "fragment": is_fragment_request(), "sort": sort,
            "filters": {"company": company.id, "status": status, "q": search,
                        "sort": sort.param}}


def _row_response(kind: str, company: Company, cw_value: str, error: str | None = None,
                  status: int = 200):  # type: ignore[no-untyped-def]
    session = get_session()
    value = scan.recheck(session, company, kind, cw_value,
                         mapping.MappingSet.load(session, company,
                                                 mapping.prefs_for(session, company)))
    session.commit()
    if value is None:  # a newer check has run since the page was drawn
        return _value_gone(kind, cw_value)
    latest = scan.latest(session, company)
    body = render("mappings/_value_row.html", row=value, kind=kind, company=company,
                  error=error, oob_counts=scan.counts(session, latest, kind) if latest else {},
                  oob_acceptable=scan.acceptable(session, latest, kind) if latest else 0,
                  blocking_total=scan.blocking(session, latest) if latest else 0)
    return make_response(body, status, trigger="mapping-saved")


def _value_gone(kind: str, cw_value: str):  # type: ignore[no-untyped-def]
    message = (f"'{cw_value[:80]}' is not among the {ENTITIES[kind][1].lower()} of the latest "
               "mapping check (a newer check may have replaced it). Reload the page to see "
               "the current values.")
    return make_response(render("mappings/_value_error.html", message=message), 409)


def _scanned_value(kind: str, company: Company) -> str:
    """The form's `cw_value`; a 4xx answer when it names no row of the latest check.

    Overrides, creates and clears act on a row the editor showed; anything else is a
    stale page or a malformed request, and must neither reach QuickBooks nor fail later.
    """
    from portal.models.mapping import MappingValue

    cw_value = request.form.get("cw_value", "")
    if not cw_value:
        abort(make_response(render(
            "mappings/_value_error.html", message="Say which ConnectWise value to change: "
            "the request had no cw_value. Use the buttons of the mapping editor."), 422))
    session = get_session()
    latest = scan.latest(session, company)
    if latest is None or session.scalar(sa.select(MappingValue.id).where(
            MappingValue.scan_id == latest.id, MappingValue.kind == kind,
            MappingValue.cw_value == cw_value)) is None:
        abort(_value_gone(kind, cw_value))
    return cw_value


@bp.post("/<kind>/override")
@role_required("admin", "accountant")
def override(kind: str):  # type: ignore[no-untyped-def]
    """Accept a near-miss or choose an object: the value now maps to that QuickBooks id."""
    if kind not in ENTITIES:
        abort(404)
    session = get_session()
    company = _company_or_404()
    cw_value = _scanned_value(kind, company)
    qbo_id = request.form.get("qbo_id") or _id_for_label(
        company, kind, request.form.get("qbo_name", ""))
    try:
        mapping.set_override(session, company, kind, cw_value, qbo_id or "", current_user.email)
    except ValueError as exc:
        session.rollback()
        return _row_response(kind, company, cw_value, str(exc), 422)
    return _row_response(kind, company, cw_value)


@bp.post("/<kind>/accept-all")
@role_required("admin", "accountant")
def accept_all(kind: str):  # type: ignore[no-untyped-def]
    """Accept every near-miss that has exactly one QuickBooks candidate (bulk fix)."""
    from portal.models.mapping import MappingValue

    if kind not in ENTITIES:
        abort(404)
    session = get_session()
    company = _company_or_404()
    latest = scan.latest(session, company)
    accepted = 0
    if latest is not None:
        rows = list(session.scalars(sa.select(MappingValue).where(
            MappingValue.scan_id == latest.id, MappingValue.kind == kind,
            MappingValue.status == "near_miss")))
        for row in rows:
            if len(row.candidates or []) == 1:
                mapping.set_override(session, company, kind, row.cw_value,
                                     row.candidates[0]["qbo_id"], current_user.email)
                accepted += 1
        mappings_set = mapping.MappingSet.load(session, company,
                                               mapping.prefs_for(session, company))
        for row in rows:
            scan.recheck(session, company, kind, row.cw_value, mappings_set)
        session.commit()
    response = make_response(render("mappings/editor.html", "editor_table",
                                    **_editor_context(kind)), trigger="mapping-saved")
    return response


@bp.get("/<kind>/create")
@role_required("admin", "accountant")
def create_preview(kind: str):  # type: ignore[no-untyped-def]
    """The exact fields a create would send, with the button that sends them."""
    if kind not in ENTITIES:
        abort(404)
    session = get_session()
    company = _company_or_404()
    cw_value = request.args.get("cw_value", "")
    mappings_set = mapping.MappingSet.load(session, company,
                                           mapping.prefs_for(session, company))
    try:
        planned = [(step.entity, creation.describe(mappings_set, step))
                   for step in creation.plan_from_editor(session, company, mappings_set, kind,
                                                         cw_value)]
        error = None
    except creation.CreateError as exc:
        planned, error = [], str(exc)
    return render("mappings/_create_preview.html", kind=kind, company=company,
                  cw_value=cw_value, planned=planned, error=error)


@bp.post("/<kind>/create")
@role_required("admin", "accountant")
def create(kind: str):  # type: ignore[no-untyped-def]
    """Create the missing object in QuickBooks (under the company's run lock)."""
    if kind not in ENTITIES:
        abort(404)
    session = get_session()
    company = _company_or_404()
    cw_value = _scanned_value(kind, company)
    try:
        creation.create(session, company, kind, cw_value, current_user)
    except creation.CreateError as exc:
        return _row_response(kind, company, cw_value, str(exc), 422)
    return _row_response(kind, company, cw_value)


@bp.get("/<kind>/options")
@role_required("admin", "accountant")
def options(kind: str):  # type: ignore[no-untyped-def]
    """Up to 30 QuickBooks names containing what was typed (the Choose box's suggestions)."""
    if kind not in ENTITIES:
        abort(404)
    company = _company_or_404()
    typed = (request.args.get("qbo_name") or "").strip()
    found = reference.search(get_session(), company.id, ENTITIES[kind][0], typed, limit=30) \
        if typed else []
    return render("mappings/_options.html", options=found)


def _id_for_label(company: Company, kind: str, label: str) -> str | None:
    """The id of the active cached object whose list label, full name or name is exactly
    `label` (what the person picked or typed)."""
    for ref in reference.qbo_objects(get_session(), company.id, ENTITIES[kind][0]):
        full = ref.fully_qualified_name or ref.name
        if label in (full, ref.name, f"{ref.acct_num} {full}" if ref.acct_num else None):
            return ref.qbo_id
    return None


@bp.post("/<kind>/clear")
@role_required("admin", "accountant")
def clear(kind: str):  # type: ignore[no-untyped-def]
    if kind not in ENTITIES:
        abort(404)
    session = get_session()
    company = _company_or_404()
    cw_value = _scanned_value(kind, company)
    mapping.clear_override(session, company, kind, cw_value)
    return _row_response(kind, company, cw_value)
