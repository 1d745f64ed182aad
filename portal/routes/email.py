"""Email: the SMTP server (admin), the invoice list per company with Send and Resend
(accountant), the template preview and the test email of the Email tab."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.db import get_session
from portal.htmx import is_fragment_request, render
from portal.models import Company, SmtpSettings
from portal.routes.decorators import role_required
from portal.routes.reauth import reauth_required
from portal.services import company_settings as cs
from portal.services import email_invoices, email_templates, mailer

bp = Blueprint("email", __name__, url_prefix="/email")
MANAGERS = ("admin", "accountant")


def _company(company_id: int) -> Company:
    company = get_session().get(Company, company_id)
    if company is None:
        abort(404)
    return company


def _index(errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
           test: str | None = None, test_ok: bool = True):  # type: ignore[no-untyped-def]
    session = get_session()
    companies = session.scalars(sa.select(Company).order_by(Company.qbo_name)).all()
    delivery = {c.id: cs.get_settings(session, c).email_delivery for c in companies}
    return render("email/index.html", companies=companies, delivery=delivery,
                  smtp=session.get(SmtpSettings, 1), errors=errors or {},
                  values=values or {}, security=mailer.SECURITY,
                  can_admin=current_user.role.value == "admin", test=test, test_ok=test_ok)


@bp.get("/", endpoint="index")
@role_required(*MANAGERS)
def index():  # type: ignore[no-untyped-def]
    """Companies with their delivery, and the SMTP server."""
    return _index()


@bp.post("/smtp")
@role_required("admin")
@reauth_required
def smtp_save():  # type: ignore[no-untyped-def]
    session = get_session()
    form = mailer.SmtpForm(**{name: request.form.get(name, "") for name in (
        "host", "port", "security", "username", "password", "timeout", "from_address")})
    errors = mailer.save(session, form, current_user)
    if errors:
        session.rollback()
        values = {k: v for k, v in vars(form).items() if k != "password"}
        return _index(errors, values), 422
    session.commit()
    flash("SMTP server saved.", "success")
    return redirect(url_for("email.index"), 303)


@bp.post("/smtp/test")
@role_required("admin")
def smtp_test():  # type: ignore[no-untyped-def]
    """Send a test mail to the signed-in admin and show the outcome in place."""
    session = get_session()
    error = mailer.send_test(session, current_user.email)
    session.commit()
    message = error or f"A test email went to {current_user.email}."
    return render("email/_smtp_test.html", test=message, test_ok=error is None)


@bp.get("/<int:company_id>")
@role_required(*MANAGERS)
def company(company_id: int):  # type: ignore[no-untyped-def]
    """The invoices portal posted for the company, with their email status."""
    session = get_session()
    company = _company(company_id)
    status = request.args.get("status", "")
    status = status if status in email_invoices.STATUSES else ""
    number = request.args.get("number", "")[:40]
    before = request.args.get("before", type=int)
    rows = email_invoices.invoice_rows(session, company, status, number, before,
                                       email_invoices.PAGE + 1)
    more = len(rows) > email_invoices.PAGE
    rows = rows[:email_invoices.PAGE]
    return render("email/company.html", company=company, rows=rows, more=more,
                  status=status, number=number, statuses=email_invoices.STATUSES,
                  settings=cs.get_settings(session, company))


def _send(company_id: int, qbo_id: str, resend: bool):  # type: ignore[no-untyped-def]
    session = get_session()
    company = _company(company_id)
    target = email_invoices.target_for(session, company, qbo_id)
    if target is None:
        abort(404)
    try:
        row = email_invoices.queue(session, company, target, by=current_user, resend=resend)
    except email_invoices.SendRefused as exc:
        session.rollback()
        if is_fragment_request():
            return render("email/_row_message.html", qbo_id=qbo_id, message=str(exc)), 409
        flash(str(exc), "error")
        return redirect(url_for("email.company", company_id=company_id), 303)
    session.commit()
    email_invoices.enqueue(row.id)
    flash(f"Invoice {target.cw_number} is queued to be emailed (send {row.send_seq}).",
          "success")
    return redirect(url_for("email.company", company_id=company_id), 303)


@bp.post("/<int:company_id>/invoices/<qbo_id>/send")
@role_required(*MANAGERS)
def send(company_id: int, qbo_id: str):  # type: ignore[no-untyped-def]
    """Email an invoice that has not been emailed (refused otherwise)."""
    return _send(company_id, qbo_id, resend=False)


@bp.get("/<int:company_id>/invoices/<qbo_id>/resend")
@role_required(*MANAGERS)
def resend_confirm(company_id: int, qbo_id: str):  # type: ignore[no-untyped-def]
    """Ask before the customer gets another copy (GET changes nothing)."""
    session = get_session()
    company = _company(company_id)
    target = email_invoices.target_for(session, company, qbo_id)
    if target is None:
        abort(404)
    return render("email/resend.html", company=company, target=target,
                  history=email_invoices.history(session, company, qbo_id))


@bp.post("/<int:company_id>/invoices/<qbo_id>/resend")
@role_required(*MANAGERS)
def resend(company_id: int, qbo_id: str):  # type: ignore[no-untyped-def]
    """Email it again: explicit and audited, as send_seq + 1."""
    return _send(company_id, qbo_id, resend=True)


@bp.post("/<int:company_id>/preview")
@role_required(*MANAGERS)
def preview(company_id: int):  # type: ignore[no-untyped-def]
    """The live preview of the Email tab: both templates rendered with sample data (the
    same code as the save check and the real mail). Writes nothing."""
    _company(company_id)
    subject = request.form.get("subject_template", "")
    body = request.form.get("body_template", "")
    try:
        rendered = email_templates.render(subject, body, email_templates.sample())
        problem = None
    except email_templates.TemplateProblem as exc:
        rendered, problem = None, exc
    return render("email/_preview.html", rendered=rendered, problem=problem)


@bp.post("/<int:company_id>/test")
@role_required(*MANAGERS)
def test(company_id: int):  # type: ignore[no-untyped-def]
    """Send a test email to the signed-in user through the company's channel."""
    session = get_session()
    company = _company(company_id)
    if request.form.get("confirm_quickbooks") != "1" and \
            cs.get_settings(session, company).email_delivery == "QuickBooks":
        return render("email/_test_result.html", ok=False,
                      message="Tick the box first: QuickBooks records the test on a real "
                              "invoice."), 422
    try:
        message = email_invoices.send_test(
            session, company, current_user, subject=request.form.get("subject_template"),
            body=request.form.get("body_template"))
    except email_invoices.SendRefused as exc:
        session.rollback()
        return render("email/_test_result.html", ok=False, message=str(exc)), 422
    session.commit()
    return render("email/_test_result.html", ok=True, message=message)
