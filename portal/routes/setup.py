"""Setup: the ConnectWise member (keys, test, probe) and QuickBooks companies (OAuth)."""

from __future__ import annotations

import hmac
import secrets
import time

from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_login import current_user
from htmx_flask import make_response

from portal.db import get_session
from portal.htmx import render
from portal.integrations import errors, qbo_auth
from portal.models import Company, CompanyStatus
from portal.routes.decorators import role_required
from portal.routes.forms import CwSettingsForm, QboAppForm
from portal.routes.reauth import reauth_required
from portal.services import audit, cw_setup, qbo_setup
from portal.services.cw_setup import SetupError

bp = Blueprint("setup", __name__, url_prefix="/setup")
STATE_TTL = 600


# ---- ConnectWise ----------------------------------------------------------------------

def _cw_page(form: CwSettingsForm, status: int = 200, **extra):  # type: ignore[no-untyped-def]
    db = get_session()
    row = cw_setup.current(db)
    probe = cw_setup.latest_probe(db)
    context = {"form": form, "cw": row, "probe": probe, "test": None,
               "missing_text": cw_setup.missing_text(probe) if probe else "", **extra}
    return render("setup/connectwise.html", **context), status


@bp.get("/connectwise")
@role_required("admin")
def connectwise():  # type: ignore[no-untyped-def]
    row = cw_setup.current(get_session())
    form = CwSettingsForm(obj=row) if row else CwSettingsForm()
    return _cw_page(form)


@bp.post("/connectwise")
@role_required("admin")
def connectwise_save():  # type: ignore[no-untyped-def]
    """Save the settings (company looked up on the site first); the key stays write-only.

    The form asks for the password (ReauthForm): besides replacing the key, a new site
    would send the stored key to another server.
    """
    db = get_session()
    form = CwSettingsForm()
    if not form.validate_on_submit():
        return _cw_page(form, 422)
    try:
        cw_setup.save(db, site=form.site.data, company_id=form.company_id.data,
                      public_key=form.public_key.data, private_key=form.private_key.data,
                      client_id=form.client_id.data, verify_tls=form.verify_tls.data,
                      by=current_user)
    except SetupError as exc:
        db.rollback()
        field = getattr(form, exc.field or "site")
        field.errors = [*field.errors, str(exc) + (f" {exc.hint}" if exc.hint else "")]
        return _cw_page(form, 422)
    db.commit()
    flash("ConnectWise settings saved. Test the connection next.", "success")
    return redirect(url_for("setup.connectwise"), 303)


@bp.post("/connectwise/test")
@role_required("admin")
def connectwise_test():  # type: ignore[no-untyped-def]
    """Call ConnectWise now (5 s) and show the outcome in place."""
    db = get_session()
    row = cw_setup.current(db)
    if row is None:
        result = cw_setup.TestResult(False, "Save the ConnectWise settings first.")
    else:
        result = cw_setup.test(db, row)
        db.commit()
    return render("setup/_cw_test.html", test=result)


@bp.post("/connectwise/probe")
@role_required("admin")
def connectwise_probe():  # type: ignore[no-untyped-def]
    db = get_session()
    row = cw_setup.current(db)
    if row is None:
        abort(409)
    probe = cw_setup.probe(db, row, current_user)
    db.commit()
    return render("setup/_probe.html", probe=probe, missing_text=cw_setup.missing_text(probe))


@bp.post("/connectwise/system-level")
@role_required("admin")
def connectwise_system_level():  # type: ignore[no-untyped-def]
    db = get_session()
    row = cw_setup.current(db)
    if row is None:
        abort(409)
    cw_setup.confirm_system_level(db, row, current_user, request.form.get("confirmed") == "1")
    db.commit()
    return redirect(url_for("setup.connectwise"), 303)


# ---- QuickBooks Online ------------------------------------------------------------------

def _qbo_page(form: QboAppForm | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    db = get_session()
    app_row = qbo_setup.app_row(db)
    if form is None:
        form = QboAppForm(obj=app_row) if app_row else QboAppForm()
    rows = qbo_setup.companies(db)
    return render("setup/quickbooks.html", form=form, app_row=app_row,
                  locked=qbo_setup.env_locked(), redirect_uri=qbo_setup.redirect_uri(),
                  companies=rows, tokens={c.id: qbo_setup.token_of(db, c) for c in rows}), status


@bp.get("/quickbooks")
@role_required("admin")
def quickbooks():  # type: ignore[no-untyped-def]
    return _qbo_page()


@bp.post("/quickbooks/app")
@role_required("admin")
def quickbooks_app():  # type: ignore[no-untyped-def]
    """Save the Intuit app; the form asks for the password (ReauthForm), since a changed
    discovery or API URL would send the client secret elsewhere."""
    db = get_session()
    form = QboAppForm()
    if not form.validate_on_submit():
        return _qbo_page(form, 422)
    try:
        qbo_setup.save_app(db, client_id=form.client_id.data, client_secret=form.client_secret.data,
                           environment=form.environment.data,
                           discovery_url=form.discovery_url.data,
                           api_base_url=form.api_base_url.data, by=current_user)
    except SetupError as exc:
        db.rollback()
        field = getattr(form, exc.field or "client_id")
        field.errors = [*field.errors, str(exc)]
        return _qbo_page(form, 422)
    db.commit()
    flash("Intuit app saved. Connect a QuickBooks company next.", "success")
    return redirect(url_for("setup.quickbooks"), 303)


@bp.get("/quickbooks/connect")
@role_required("admin")
@reauth_required
def quickbooks_connect():  # type: ignore[no-untyped-def]
    """Send the admin to Intuit's consent page with a fresh single-use state."""
    db = get_session()
    try:
        app = qbo_setup.credentials(db)
        state = secrets.token_urlsafe(32)
        target = qbo_auth.authorization_url(app, state)
    except (SetupError, errors.IntegrationError) as exc:
        flash(f"Cannot start the QuickBooks sign-in: {exc}", "error")
        return redirect(url_for("setup.quickbooks"), 303)
    session["qbo_oauth"] = {"state": state, "user": current_user.id,
                            "expires": time.time() + STATE_TTL}
    return redirect(target, 302)


@bp.get("/quickbooks/reconnect")
@role_required("admin")
@reauth_required
def quickbooks_reconnect():  # type: ignore[no-untyped-def]
    """The Reconnect URL registered with Intuit: the same consent flow."""
    return quickbooks_connect()


@bp.get("/quickbooks/callback")
@role_required("admin")
def quickbooks_callback():  # type: ignore[no-untyped-def]
    """Intuit's redirect: check and spend the state, then exchange the code.

    No password prompt here: the state, single-use and tied to this user for 10 minutes,
    proves the flow was started by quickbooks_connect, which asked for it.
    """
    db = get_session()
    pending = session.pop("qbo_oauth", None) or {}
    given = request.args.get("state", "")
    valid = (pending.get("state") and pending.get("user") == current_user.id
             and pending.get("expires", 0) > time.time()
             and hmac.compare_digest(str(pending["state"]), given))
    if not valid:
        audit.record(db, "connection.qbo.callback_rejected", result="denied")
        db.commit()
        return render("setup/oauth_error.html", title="QuickBooks sign-in not accepted",
                      message="This QuickBooks sign-in link expired or was not started here. "
                              "Start again from Setup › QuickBooks."), 400
    if request.args.get("error"):
        audit.record(db, "connection.qbo.denied", result="denied",
                     after={"error": request.args.get("error")})
        db.commit()
        return render("setup/oauth_error.html", title="QuickBooks access was not granted",
                      message="QuickBooks access was not granted. Click Connect again and "
                              "choose Allow (sign in as a QuickBooks user with full admin "
                              "rights)."), 400
    code, realm = request.args.get("code", ""), request.args.get("realmId", "")
    if not code or not realm or len(code) > 512 or not realm.isdigit():
        return render("setup/oauth_error.html", title="QuickBooks answer incomplete",
                      message="QuickBooks did not send a code and company id. Start again "
                              "from Setup › QuickBooks."), 400
    try:
        company = qbo_setup.complete_connect(db, code=code, realm_id=realm, by=current_user)
    except (errors.IntegrationError, SetupError) as exc:
        db.rollback()
        return render("setup/oauth_error.html", title="QuickBooks connection failed",
                      message=f"{exc}" + (f" {exc.hint}" if getattr(exc, "hint", None)
                                           else "")), 502
    db.commit()
    flash(f"Connected to QuickBooks company {company.qbo_name}.", "success")
    return redirect(url_for("setup.quickbooks"), 303)


def _company(company_id: int) -> Company:
    company = get_session().get(Company, company_id)
    if company is None:
        abort(404)
    return company


@bp.post("/quickbooks/<int:company_id>/default")
@role_required("admin")
def quickbooks_default(company_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    qbo_setup.set_default(db, _company(company_id))
    db.commit()
    return redirect(url_for("setup.quickbooks"), 303)


@bp.post("/quickbooks/<int:company_id>/refresh")
@role_required("admin")
def quickbooks_refresh(company_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    company = _company(company_id)
    try:
        qbo_setup.refresh_info(db, company)
    except (errors.IntegrationError, SetupError) as exc:
        db.rollback()
        flash(f"Could not read {company.qbo_name}'s settings: {exc}", "error")
    else:
        db.commit()
        flash(f"Settings of {company.qbo_name} read again.", "success")
    return redirect(url_for("setup.quickbooks"), 303)


@bp.post("/quickbooks/<int:company_id>/disconnect")
@role_required("admin")
@reauth_required
def quickbooks_disconnect(company_id: int):  # type: ignore[no-untyped-def]
    db = get_session()
    company = _company(company_id)
    if company.status is CompanyStatus.DISCONNECTED:
        return redirect(url_for("setup.quickbooks"), 303)
    warning = qbo_setup.disconnect(db, company)
    db.commit()
    flash(warning or f"{company.qbo_name} is disconnected; its settings and history remain.",
          "error" if warning else "success")
    if request.headers.get("HX-Request"):
        return make_response("", 200, redirect=url_for("setup.quickbooks"))
    return redirect(url_for("setup.quickbooks"), 303)
