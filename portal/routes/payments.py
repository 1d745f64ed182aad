"""Payment sync screens (SPEC 10.1): start a sync from the cursor (a backdated start is
confirmed), follow a payment batch, the re-run confirmation of error emails, the webhook
settings; and the QuickBooks webhook receiver (SPEC 10.3), which needs no login."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, redirect, request, url_for
from flask_login import current_user
from htmx_flask import make_response
from sqlalchemy.orm import joinedload

from portal import jobs
from portal.db import get_session
from portal.extensions import csrf
from portal.htmx import is_fragment_request, poll, render
from portal.models import Batch, BatchType, Company, PaymentStatus
from portal.routes.decorators import ALL_ROLES, public, role_required
from portal.routes.downloads import csv_download
from portal.services import company_settings, qbo_setup, secrets_store
from portal.services.batches import links as deep_links
from portal.services.payments import pages, sync, webhooks

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__, url_prefix="/payments")
hooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")
MANAGERS = ("admin", "accountant")


def _company_or_404(company_id: int) -> Company:
    company = get_session().get(Company, company_id)
    if company is None:
        abort(404)
    return company


def _zone(company: Company) -> ZoneInfo:
    settings = company_settings.get_settings(get_session(), company)
    try:
        return ZoneInfo(settings.time_zone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _local(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _parse_since(text: str | None, zone: ZoneInfo) -> datetime | None:
    try:
        value = datetime.strptime((text or "").strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        return None
    return value.replace(tzinfo=zone).astimezone(timezone.utc)


def _go(url: str) -> Response:
    if request.htmx:  # type: ignore[attr-defined]
        return make_response("", 200, redirect=url)
    return redirect(url, 303)  # type: ignore[return-value]


@bp.get("/", endpoint="index")
@role_required(*MANAGERS)
def payments_index():  # type: ignore[no-untyped-def]
    """The default company's sync page (or the list of companies to pick from)."""
    companies = qbo_setup.companies(get_session())
    default = next((c for c in companies if c.is_default), companies[0] if companies else None)
    if default is None:
        return render("payments/no_company.html")
    return redirect(url_for("payments.sync_page", company_id=default.id))


def _sync_context(company: Company, since_text: str | None = None,
                  error: str | None = None) -> dict[str, Any]:
    session = get_session()
    zone = _zone(company)
    cursor = sync.default_since(session, company)
    state = session.get(sync.PaymentSyncState, company.id)
    return {"company": company, "companies": qbo_setup.companies(session),
            "since": since_text or _local(cursor, zone), "cursor": _local(cursor, zone),
            "zone": zone.key, "state": state, "error": error,
            "recent": pages.recent_batches(session, company.id),
            "alerts": webhooks.open_alerts(session, company.id),
            "webhooks": webhooks.config(session)}


@bp.get("/<int:company_id>/sync")
@role_required(*MANAGERS)
def sync_page(company_id: int):  # type: ignore[no-untyped-def]
    """"Sync payments changed since", preloaded from the cursor."""
    return render("payments/sync.html", **_sync_context(_company_or_404(company_id)))


@bp.post("/<int:company_id>/sync")
@role_required(*MANAGERS)
def start_sync(company_id: int):  # type: ignore[no-untyped-def]
    """Start a sync; a backdated start shows its confirmation first."""
    session = get_session()
    company = _company_or_404(company_id)
    zone = _zone(company)
    text = request.form.get("since")
    since = _parse_since(text, zone)
    if since is None:
        return render("payments/sync.html", **_sync_context(
            company, text, "Sync payments changed since: enter a date and time like "
                           "2026-11-30T08:00.")), 422
    if sync.is_backdated(session, company, since) and request.form.get("confirmed") != "1":
        return render("payments/confirm.html", company=company, since=_local(since, zone),
                      cursor=_local(sync.default_since(session, company), zone), zone=zone.key,
                      warning=sync.BACKDATED_WARNING, trigger=request.form.get("trigger"))
    trigger = request.form.get("trigger") or f"user:{current_user.id}"
    if not trigger.startswith(("user:", "rerun-of:")):
        trigger = f"user:{current_user.id}"
    try:
        batch = sync.start(session, company, trigger=trigger, user=current_user, since=since)
        session.commit()
    except sync.SyncRefused as refused:
        session.rollback()
        return render("payments/refused.html", message=str(refused), holder=refused.holder,
                      company=company), 409
    sync.enqueue(batch)
    return _go(url_for("payments.batch", batch_id=batch.id))


@bp.get("/<int:company_id>/rerun")
@role_required(*MANAGERS)
def rerun(company_id: int):  # type: ignore[no-untyped-def]
    """The "re-run" link of an error email: a confirmation page; nothing starts on GET."""
    company = _company_or_404(company_id)
    zone = _zone(company)
    since = _parse_since(request.args.get("since"), zone)
    if since is None:
        try:
            since = datetime.fromisoformat(request.args.get("since") or "")
        except ValueError:
            since = sync.default_since(get_session(), company)
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    batch_id = request.args.get("batch", type=int)
    return render("payments/confirm.html", company=company, since=_local(since, zone),
                  cursor=_local(sync.default_since(get_session(), company), zone),
                  zone=zone.key, warning=sync.BACKDATED_WARNING if sync.is_backdated(
                      get_session(), company, since) else None,
                  trigger=f"rerun-of:{batch_id}" if batch_id else None)


# ---- one payment batch --------------------------------------------------------------------

def _batch_or_404(batch_id: int) -> Batch:
    batch = get_session().get(Batch, batch_id, options=[joinedload(Batch.company),
                                                        joinedload(Batch.run)])
    if batch is None or batch.type is not BatchType.PAYMENT:
        abort(404)
    return batch


def _status_filter() -> PaymentStatus | None:
    value = request.args.get("status") or ""
    return PaymentStatus(value) if value in {s.value for s in PaymentStatus} else None


def _items_context(batch: Batch) -> dict[str, Any]:
    session = get_session()
    status = _status_filter()
    after = request.args.get("after", type=int)
    rows = pages.item_page(session, batch.id, status, after)
    return {"batch": batch, "items": rows, "status": status,
            "counts": pages.status_counts(session, batch.id),
            "more": len(rows) == pages.ITEM_PAGE, "links": deep_links(session),
            "can_manage": current_user.role.value in MANAGERS}


@bp.get("/batches/<int:batch_id>")
@role_required(*ALL_ROLES)
def batch(batch_id: int):  # type: ignore[no-untyped-def]
    """A payment batch: header, live progress, one row per invoice."""
    found = _batch_or_404(batch_id)
    return render("payments/batch.html", **_items_context(found))


@bp.get("/batches/<int:batch_id>/progress")
@role_required(*ALL_ROLES)
def progress(batch_id: int):  # type: ignore[no-untyped-def]
    """Polled every second while the batch is active; the last answer is 286 + run-finished."""
    found = _batch_or_404(batch_id)
    context = {"batch": found, "can_manage": current_user.role.value in MANAGERS} \
        if is_fragment_request() else _items_context(found)
    return poll("payments/batch.html", "payment_progress", active=found.active,
                event="run-finished", **context)


@bp.get("/batches/<int:batch_id>/items")
@role_required(*ALL_ROLES)
def items(batch_id: int):  # type: ignore[no-untyped-def]
    """The invoice rows (reloaded when the run finishes, or filtered by status)."""
    found = _batch_or_404(batch_id)
    if not is_fragment_request():
        return render("payments/batch.html", **_items_context(found))
    block = "payment_rows" if request.args.get("after") else "payment_items"
    return render("payments/batch.html", block, **_items_context(found))


@bp.get("/batches/<int:batch_id>.csv")
@role_required(*ALL_ROLES)
def export_items(batch_id: int):  # type: ignore[no-untyped-def]
    found = _batch_or_404(batch_id)
    return csv_download(lambda session, bom: pages.items_csv(session, found.id, bom=bom),
                        f"payment-batch-{found.id}.csv")


# ---- webhook settings (admin) --------------------------------------------------------------

@bp.route("/webhooks", methods=["GET", "POST"])
@role_required("admin")
def webhook_settings():  # type: ignore[no-untyped-def]
    """The receiver's switch, verifier token (write-only) and debounce, and the URL to
    register in the Intuit developer portal."""
    session = get_session()
    problems: list[str] = []
    saved = False
    if request.method == "POST":
        raw = (request.form.get("debounce_seconds") or "").strip()
        problems = webhooks.save_config(
            session, enabled=request.form.get("enabled") == "y",
            verifier_token=request.form.get("verifier_token") or None,
            debounce_seconds=int(raw) if re.fullmatch(r"[0-9]{1,5}", raw) else -1,
            by=current_user)
        if problems:
            session.rollback()
        else:
            session.commit()
            saved = True
    row = webhooks.config(session)
    return render("payments/webhooks.html", row=row, problems=problems, saved=saved,
                  url=url_for("webhooks.receive", _external=True),
                  token_set=bool(row.verifier_token_enc)), 422 if problems else 200


# ---- the receiver --------------------------------------------------------------------------

def _plain(status: int, text: str) -> Response:
    return Response(text, status=status, mimetype="text/plain")


@hooks.post("/qbo")
@csrf.exempt
@public
def receive():  # type: ignore[no-untyped-def]
    """Intuit's notifications: size, rate and signature first, then store; 200 at once."""
    session = get_session()
    row = webhooks.config(session)
    if not row.enabled or not row.verifier_token_enc:
        return _plain(404, "Webhooks are not enabled.")
    redis = jobs.get_redis(current_app)
    if webhooks.over_rate(redis, request.remote_addr):
        return _plain(429, "Too many requests.")
    if (request.content_length or 0) > webhooks.MAX_BODY:
        return _plain(413, "The body is larger than 1 MB.")
    body = request.stream.read(webhooks.MAX_BODY + 1)
    if len(body) > webhooks.MAX_BODY:
        return _plain(413, "The body is larger than 1 MB.")
    token = secrets_store.unseal(row.verifier_token_enc)
    if not webhooks.signature_ok(token, body, request.headers.get("intuit-signature")):
        webhooks.audit_bad_signature(session, redis, request.remote_addr)
        return _plain(401, "Signature mismatch.")
    try:
        events = webhooks.parse(body)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        return _plain(400, "The body is not a QuickBooks notification.")
    webhooks.store(session, events)
    return _plain(200, "OK")



