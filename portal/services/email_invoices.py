"""Emailing invoices (SPEC 14.3): the email_log, sending through QuickBooks or SMTP, the
reconciler, Resend, AfterBatch, and the per-company invoice list.

Never twice by accident (invariant I5): a send happens only from a `queued` row that the job
moves to `sending` with a conditional update committed before the call; an automatic send
is queued only for an invoice with no row in sent, sending, unknown or queued; a crash or a
lost answer leaves the row `sending` or `unknown`, and nothing sends it again: in QuickBooks
mode the reconciler reads the invoice and marks it `sent` when QuickBooks recorded a
delivery after the attempt started. Only Resend (explicit, audited) makes `send_seq + 1`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.models import (
    AutoSyncCompany,
    Batch,
    BatchItem,
    BatchStatus,
    BatchType,
    Company,
    EmailLog,
    EmailStatus,
    ItemState,
    User,
)
from portal.models.types import utcnow
from portal.services import audit, email_templates, mailer
from portal.services import company_settings as cs

log = logging.getLogger(__name__)
BLOCKING = (EmailStatus.SENT, EmailStatus.SENDING, EmailStatus.UNKNOWN, EmailStatus.QUEUED)
SENDABLE = (ItemState.POSTED, ItemState.MARKED, ItemState.DONE)
PAGE = 50
JOB = "portal.jobs.email.send_email"


class SendRefused(Exception):
    """Why this send is not queued (already sent, delivery off …)."""


@dataclass(frozen=True)
class Target:
    """One invoice portal posted: what the log and the send need to find it again."""

    qbo_id: str
    entity: str
    cw_number: str | None
    cw_id: int | None
    batch_id: int | None


def _target(session: Session, company: Company, qbo_id: str) -> Target | None:
    item = session.scalar(sa.select(BatchItem).join(Batch).where(
        Batch.company_id == company.id, BatchItem.qbo_id == qbo_id,
        BatchItem.qbo_entity.in_(["Invoice", "CreditMemo"]),
        BatchItem.state.in_(SENDABLE)).order_by(BatchItem.id.desc()).limit(1))
    if item is None:
        return None
    return Target(item.qbo_id, item.qbo_entity, item.cw_number, item.cw_id, item.batch_id)


def _latest(session: Session, company_id: int, qbo_id: str) -> EmailLog | None:
    return session.scalar(sa.select(EmailLog).where(
        EmailLog.company_id == company_id, EmailLog.qbo_invoice_id == qbo_id)
        .order_by(EmailLog.send_seq.desc()).limit(1))


def queue(session: Session, company: Company, target: Target, *, by: User | None,
          resend: bool = False, settings: cs.CompanySettings | None = None) -> EmailLog:
    """Add a `queued` row (the caller commits, then enqueues `enqueue(row.id)`).

    Without `resend`, refused when the invoice has a row in sent, sending, unknown or
    queued; with it, the next `send_seq`, audited as `email.resend`."""
    settings = settings or cs.get_settings(session, company)
    if settings.email_delivery == "Off":
        raise SendRefused("Email delivery is Off for this company: choose QuickBooks or SMTP "
                          "on its Email tab.")
    if target.entity == "CreditMemo" and not settings.send_credit_memos:
        raise SendRefused("Credit memos are not emailed (“Send credit memos” on the Email "
                          "tab).")
    latest = _latest(session, company.id, target.qbo_id)
    if latest is not None and latest.status in (EmailStatus.QUEUED, EmailStatus.SENDING):
        raise SendRefused(f"Invoice {target.cw_number} is being sent already.")
    if not resend and latest is not None and latest.status in BLOCKING:
        raise SendRefused(f"Invoice {target.cw_number} was emailed already "
                          f"({latest.status.value}); use Resend to send it again.")
    if resend and latest is None:
        raise SendRefused(f"Invoice {target.cw_number} was never emailed; use Send.")
    row = EmailLog(company_id=company.id, qbo_invoice_id=target.qbo_id,
                   qbo_entity=target.entity, cw_invoice_number=target.cw_number,
                   cw_invoice_id=target.cw_id, batch_id=target.batch_id,
                   send_seq=(latest.send_seq + 1) if latest else 1,
                   channel=settings.email_delivery, recipients=[],
                   status=EmailStatus.QUEUED,
                   requested_by=by.email if by else "system")
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise SendRefused(f"Invoice {target.cw_number} was just queued by someone else."
                          ) from None
    if resend:
        audit.record(session, "email.resend", target=row, company_id=company.id,
                     after={"invoice": target.cw_number, "send_seq": row.send_seq})
    return row


def enqueue(log_id: int) -> None:
    from portal import jobs

    jobs.enqueue(JOB, log_id, queue="email")


# ---- sending ---------------------------------------------------------------------------

@dataclass
class Prepared:
    """What the send needs, read before the `sending` row is committed."""

    to: list[str]
    invoice: dict[str, Any]
    skip: str | None = None


def _cw_contact_email(cw: Any, cw_invoice_id: int | None) -> str | None:
    if cw is None or cw_invoice_id is None:
        return None
    invoice = cw.get(f"/finance/invoices/{cw_invoice_id}") or {}
    company_id = ((invoice.get("billToCompany") or invoice.get("company")) or {}).get("id")
    contact_id = (invoice.get("billingContact") or {}).get("id")
    if contact_id is None and company_id is not None:
        company = cw.get(f"/company/companies/{company_id}") or {}
        contact_id = (company.get("billingContact") or company.get("defaultContact")
                      or {}).get("id")
    if contact_id is None:
        return None
    contact = cw.get(f"/company/contacts/{contact_id}") or {}
    emails = [c for c in contact.get("communicationItems") or []
              if c.get("communicationType") == "Email" and c.get("value")]
    emails.sort(key=lambda c: not c.get("defaultFlag"))
    return emails[0]["value"].strip() if emails else None


def _qbo_customer_email(qbo: Any, invoice: dict[str, Any]) -> str | None:
    customer_id = (invoice.get("CustomerRef") or {}).get("value")
    if not customer_id:
        return None
    customer = qbo.read("Customer", customer_id)
    return ((customer.get("PrimaryEmailAddr") or {}).get("Address") or "").strip() or None


def recipient(settings: cs.CompanySettings, qbo: Any, cw: Any, invoice: dict[str, Any],
              cw_invoice_id: int | None) -> str | None:
    """The To address from the chosen source, else from the other one (SPEC 14.1)."""
    sources = [lambda: _cw_contact_email(cw, cw_invoice_id),
               lambda: _qbo_customer_email(qbo, invoice)]
    if settings.recipient_source == "QboCustomerEmail":
        sources.reverse()
    for source in sources:
        try:
            found = source()
        except errors.NotFound:
            found = None
        if found and cs.EMAIL.match(found):
            return found
    return None


def _prepare(settings: cs.CompanySettings, qbo: Any, cw: Any, row: EmailLog) -> Prepared:
    include = "invoiceLink" if (row.channel == "Smtp" and settings.include_payment_link
                                and row.qbo_entity == "Invoice") else None
    invoice = qbo.read(row.qbo_entity, row.qbo_invoice_id, include=include)
    if settings.skip_zero_balance and row.qbo_entity == "Invoice" and \
            Decimal(str(invoice.get("Balance", "0") or "0")) == 0:
        return Prepared([], invoice, "already paid (balance 0)")
    to = recipient(settings, qbo, cw, invoice, row.cw_invoice_id)
    if to is None:
        return Prepared([], invoice, "no address")
    return Prepared([to], invoice)


def template_data(company: Company, invoice: dict[str, Any], customer_name: str,
                  contact_name: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The names of SPEC 14.2 for one QuickBooks invoice."""
    info = info or {}
    return {"invoice": {"number": invoice.get("DocNumber") or invoice.get("Id"),
                        "date": invoice.get("TxnDate"), "due_date": invoice.get("DueDate"),
                        "total": Decimal(str(invoice.get("TotalAmt", "0") or "0")),
                        "balance": Decimal(str(invoice.get("Balance", "0") or "0")),
                        "currency": (invoice.get("CurrencyRef") or {}).get("value")
                        or company.home_currency or "USD",
                        "payment_link": invoice.get("InvoiceLink") or None,
                        "po_number": _po_number(invoice)},
            "customer": {"name": customer_name, "contact_name": contact_name},
            "company": {"name": info.get("CompanyName") or company.qbo_name,
                        "email": (info.get("Email") or {}).get("Address") or "",
                        "phone": (info.get("PrimaryPhone") or {}).get("FreeFormNumber")
                        or ""}}


def _po_number(invoice: dict[str, Any]) -> str | None:
    for field in invoice.get("CustomField") or []:
        if str(field.get("Name", "")).lower() in ("p.o. number", "po number", "customer po"):
            return field.get("StringValue")
    return None


def build_message(settings: cs.CompanySettings, rendered: email_templates.Rendered,
                  to: list[str], pdf: bytes | None, pdf_name: str) -> EmailMessage:
    message = EmailMessage()
    if settings.from_address:
        message["From"] = formataddr((settings.from_name, settings.from_address)) \
            if settings.from_name else settings.from_address
    message["To"] = ", ".join(to)
    if settings.cc:
        message["Cc"] = ", ".join(settings.cc)
    if settings.bcc:
        message["Bcc"] = ", ".join(settings.bcc)
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["Subject"] = rendered.subject
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if pdf is not None:
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
    return message


def _pdf(settings: cs.CompanySettings, qbo: Any, cw: Any, row: EmailLog) -> bytes:
    if settings.pdf_source == "ConnectWise" and cw is not None and row.cw_invoice_id:
        return cw.request("GET", f"/finance/invoices/{row.cw_invoice_id}/pdf").content
    return qbo.pdf(row.qbo_entity, row.qbo_invoice_id)


def _start(session: Session, log_id: int, recipients: list[str]) -> bool:
    """queued → sending, committed before the call; False when another worker has it."""
    now = utcnow()
    done = session.execute(sa.update(EmailLog).where(
        EmailLog.id == log_id, EmailLog.status == EmailStatus.QUEUED).values(
        status=EmailStatus.SENDING, started_at=now, recipients=recipients)
        .execution_options(synchronize_session=False))
    session.commit()
    return done.rowcount == 1


def _close(session: Session, row: EmailLog, status: EmailStatus, error: str | None = None,
           message_id: str | None = None) -> None:
    row.status = status
    row.error = error[:2000] if error else None
    row.provider_message_id = message_id
    if status is EmailStatus.SENT:
        row.sent_at = utcnow()
    session.commit()


def send(session: Session, log_id: int) -> EmailStatus | None:
    """Send one queued row (the job's work); its final status, or None when it was not
    queued (sent by someone else, or already settled)."""
    from portal import clients

    row = session.get(EmailLog, log_id)
    if row is None or row.status is not EmailStatus.QUEUED:
        return None
    company = session.get(Company, row.company_id)
    settings = cs.get_settings(session, company)
    cw = clients.connectwise(session)
    try:
        qbo = clients.quickbooks(session, company)
        prepared = _prepare(settings, qbo, cw, row)
        info = qbo.company_info() if row.channel == "Smtp" else None
        pdf = _pdf(settings, qbo, cw, row) if row.channel == "Smtp" and not prepared.skip \
            else None
        if row.channel == "QuickBooks" and not prepared.skip and (settings.cc or settings.bcc):
            _set_copies(qbo, row.qbo_entity, prepared.invoice, settings)  # before: idempotent
    except errors.IntegrationError as exc:
        _close(session, row, EmailStatus.FAILED, f"Not sent: {exc.message}")
        return EmailStatus.FAILED
    if prepared.skip:
        _close(session, row, EmailStatus.SKIPPED, prepared.skip)
        return EmailStatus.SKIPPED
    message = None
    if row.channel == "Smtp":
        invoice = prepared.invoice
        customer = (invoice.get("CustomerRef") or {}).get("name") or ""
        data = template_data(company, invoice, customer, customer, info)
        try:
            rendered = email_templates.render(settings.subject_template,
                                              settings.body_template, data)
        except email_templates.TemplateProblem as problem:
            _close(session, row, EmailStatus.FAILED, f"The template cannot be rendered: "
                                                     f"{problem.message}")
            return EmailStatus.FAILED
        message = build_message(settings, rendered, prepared.to, pdf,
                                f"Invoice-{data['invoice']['number']}.pdf")
    if not _start(session, log_id, prepared.to):
        return None
    session.refresh(row)
    if row.channel == "QuickBooks":
        return _send_quickbooks(session, row, settings, qbo, prepared)
    assert message is not None
    try:
        message_id = mailer.send(session, message)
    except mailer.MailUnknown as exc:
        _close(session, row, EmailStatus.UNKNOWN, f"Outcome unknown: {exc} Use Resend if the "
                                                  "customer did not get it.")
        return EmailStatus.UNKNOWN
    except mailer.MailError as exc:
        _close(session, row, EmailStatus.FAILED, str(exc))
        return EmailStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - the server may have taken it: unknown
        _close(session, row, EmailStatus.UNKNOWN, f"Outcome unknown ({exc.__class__.__name__})"
                                                  "; use Resend if the customer did not get "
                                                  "it.")
        return EmailStatus.UNKNOWN
    _close(session, row, EmailStatus.SENT, message_id=message_id)
    return EmailStatus.SENT


def _send_quickbooks(session: Session, row: EmailLog, settings: cs.CompanySettings,
                     qbo: Any, prepared: Prepared) -> EmailStatus:
    try:
        answer = qbo.send(row.qbo_entity, row.qbo_invoice_id, prepared.to[0])
    except (errors.Invalid, errors.NotFound, errors.Forbidden, errors.AuthError) as exc:
        _close(session, row, EmailStatus.FAILED, exc.message)
        return EmailStatus.FAILED
    except errors.RateLimited as exc:
        _close(session, row, EmailStatus.FAILED, exc.message)
        return EmailStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - may have gone: the reconciler reads the invoice
        message = exc.message if isinstance(exc, errors.IntegrationError) else \
            exc.__class__.__name__
        _close(session, row, EmailStatus.UNKNOWN, f"Outcome unknown: {message}")
        return EmailStatus.UNKNOWN
    delivered = (answer.get("DeliveryInfo") or {}).get("DeliveryTime")
    _close(session, row, EmailStatus.SENT, message_id=f"qbo:{delivered}" if delivered else None)
    return EmailStatus.SENT


def _set_copies(qbo: Any, entity: str, invoice: dict[str, Any],
                settings: cs.CompanySettings) -> None:
    """cc and bcc are invoice fields in QuickBooks mode (BillEmailCc, BillEmailBcc)."""
    wanted = {"BillEmailCc": {"Address": ", ".join(settings.cc)} if settings.cc else None,
              "BillEmailBcc": {"Address": ", ".join(settings.bcc)} if settings.bcc else None}
    change = {k: v for k, v in wanted.items() if v and invoice.get(k) != v}
    if change:
        qbo.sparse_update(entity, {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"],
                                   **change})


# ---- the reconciler (scheduler tick) -----------------------------------------------------

def _delivered_after(invoice: dict[str, Any], started: datetime) -> bool:
    if invoice.get("EmailStatus") != "EmailSent":
        return False
    text = (invoice.get("DeliveryInfo") or {}).get("DeliveryTime")
    if not text:
        return False
    try:
        at = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return False
    if at.tzinfo is None:
        return False
    return at >= started.replace(microsecond=0)


def reconcile(app: Flask, session: Session, now: datetime | None = None) -> int:
    """Rows left `sending` past the stale window become `unknown`; in QuickBooks mode an
    unknown row is `sent` once the invoice shows a delivery after the attempt began.
    Nothing is sent again. Queued rows whose job was lost are enqueued again (the
    conditional start keeps a second copy from sending)."""
    from portal import clients

    now = now or utcnow()
    stale = now - timedelta(seconds=int(app.config["RUN_STALE_SECONDS"]))
    session.execute(sa.update(EmailLog).where(
        EmailLog.status == EmailStatus.SENDING, EmailLog.started_at < stale).values(
        status=EmailStatus.UNKNOWN, error="The worker stopped while sending; outcome "
                                          "unknown. It is never sent again by itself.")
        .execution_options(synchronize_session=False))
    session.commit()
    settled = 0
    rows = session.scalars(sa.select(EmailLog).where(
        EmailLog.status == EmailStatus.UNKNOWN, EmailLog.channel == "QuickBooks")
        .order_by(EmailLog.id).limit(100)).all()
    for row in rows:
        company = session.get(Company, row.company_id)
        try:
            invoice = clients.quickbooks(session, company).read(row.qbo_entity,
                                                                row.qbo_invoice_id)
        except errors.IntegrationError as exc:
            log.info("email %s not settled yet: %s", row.id, exc.message)
            continue
        if row.started_at and _delivered_after(invoice, row.started_at):
            delivered = (invoice.get("DeliveryInfo") or {}).get("DeliveryTime")
            row.status = EmailStatus.SENT
            row.sent_at = now
            row.provider_message_id = f"qbo:{delivered}"
            row.error = None
            settled += 1
        session.commit()
    lost = session.scalars(sa.select(EmailLog.id).where(
        EmailLog.status == EmailStatus.QUEUED, EmailLog.created_at < stale)).all()
    if lost:
        from portal import jobs

        redis = jobs.get_redis(app)
        for log_id in lost:  # once per stale window, not a copy every tick
            if redis.set(f"portal:email-requeued:{log_id}", 1, nx=True,
                         ex=max(60, int(app.config["RUN_STALE_SECONDS"]))):
                enqueue(log_id)
    return settled


def queue_after_batches(session: Session) -> list[int]:
    """AfterBatch: queue an email for every invoice of a finished batch once it is done
    (per company, batches after the cursor, in id order); the new rows' ids."""
    queued: list[int] = []
    for company in session.scalars(sa.select(Company)).all():
        settings = cs.get_settings(session, company)
        state = session.get(AutoSyncCompany, company.id)
        newest = session.scalar(sa.select(sa.func.max(Batch.id)).where(
            Batch.company_id == company.id)) or 0
        if settings.send_mode != "AfterBatch" or settings.email_delivery == "Off":
            if state is not None:
                state.emailed_batch_id = newest  # turning it on later mails new batches only
            continue
        if state is None:
            from portal.services import autosync

            state = autosync.company_state(session, company.id)
            state.emailed_batch_id = newest
            continue
        for batch in session.scalars(sa.select(Batch).where(
                Batch.company_id == company.id, Batch.id > (state.emailed_batch_id or 0))
                .order_by(Batch.id)).all():
            if batch.status.active:
                break
            if batch.type is BatchType.INVOICE and batch.status is BatchStatus.FINISHED:
                queued += _queue_batch(session, company, batch)
            state.emailed_batch_id = batch.id
        session.commit()
    for log_id in queued:
        enqueue(log_id)
    return queued


def _queue_batch(session: Session, company: Company, batch: Batch) -> list[int]:
    settings = cs.get_settings(session, company)
    ids = []
    for item in session.scalars(sa.select(BatchItem).where(
            BatchItem.batch_id == batch.id, BatchItem.state == ItemState.DONE,
            BatchItem.qbo_id.is_not(None)).order_by(BatchItem.position)):
        target = Target(item.qbo_id, item.qbo_entity or "Invoice", item.cw_number, item.cw_id,
                        batch.id)
        try:
            ids.append(queue(session, company, target, by=None, settings=settings).id)
        except SendRefused:
            continue
    return ids


# ---- test email -------------------------------------------------------------------------

def send_test(session: Session, company: Company, user: User, *,
              subject: str | None = None, body: str | None = None) -> str:
    """SMTP: the template with sample data to `user`. QuickBooks: the newest posted invoice
    sent to `user` (QuickBooks records it on the invoice), its BillEmail restored after.
    The outcome in words; raises SendRefused when there is nothing to send with."""
    from portal import clients

    settings = cs.get_settings(session, company)
    if settings.email_delivery == "Off":
        raise SendRefused("Choose QuickBooks or SMTP delivery first.")
    if settings.email_delivery == "Smtp":
        try:
            rendered = email_templates.render(subject or settings.subject_template,
                                              body or settings.body_template,
                                              email_templates.sample())
        except email_templates.TemplateProblem as problem:
            raise SendRefused(problem.message) from None
        message = build_message(settings, rendered, [user.email], None, "")
        try:
            mailer.send(session, message)
        except mailer.MailError as exc:
            raise SendRefused(str(exc)) from None
        audit.record(session, "email.test", company_id=company.id,
                     after={"channel": "Smtp", "to": user.email})
        return f"A test email went to {user.email}."
    item = session.scalar(sa.select(BatchItem).join(Batch).where(
        Batch.company_id == company.id, BatchItem.qbo_entity == "Invoice",
        BatchItem.state.in_(SENDABLE), BatchItem.qbo_id.is_not(None))
        .order_by(BatchItem.id.desc()).limit(1))
    if item is None:
        raise SendRefused("Post an invoice first: QuickBooks sends a real invoice's email.")
    qbo = clients.quickbooks(session, company)
    try:
        before = qbo.read("Invoice", item.qbo_id)
        qbo.send("Invoice", item.qbo_id, user.email)
        restore_bill_email(qbo, item.qbo_id, before.get("BillEmail"))
    except errors.IntegrationError as exc:
        raise SendRefused(f"QuickBooks did not send it: {exc.message}") from None
    audit.record(session, "email.test", company_id=company.id,
                 after={"channel": "QuickBooks", "invoice": item.cw_number, "to": user.email})
    return (f"QuickBooks sent invoice {item.cw_number} to {user.email}; its billing email "
            "was put back.")


def restore_bill_email(qbo: Any, qbo_id: str, original: dict[str, Any] | None) -> None:
    """`sendTo` is stored as BillEmail: put the customer's address back after a test."""
    current = qbo.read("Invoice", qbo_id)
    if current.get("BillEmail") == original:
        return
    qbo.sparse_update("Invoice", {"Id": qbo_id, "SyncToken": current["SyncToken"],
                                  "BillEmail": original or {"Address": ""}})


# ---- the invoice list -------------------------------------------------------------------

@dataclass
class Row:
    item: BatchItem
    email: EmailLog | None

    @property
    def status(self) -> str:
        return self.email.status.value if self.email else "unsent"


STATUSES = ("unsent", "queued", "sending", "sent", "failed", "unknown", "skipped")


def invoice_rows(session: Session, company: Company, status: str = "", number: str = "",
                 before: int | None = None, limit: int = PAGE) -> list[Row]:
    """The newest invoices portal posted for the company, with their latest email row."""
    latest = sa.select(EmailLog.qbo_invoice_id, sa.func.max(EmailLog.send_seq).label("seq")) \
        .where(EmailLog.company_id == company.id).group_by(EmailLog.qbo_invoice_id).subquery()
    query = (sa.select(BatchItem, EmailLog).join(Batch, Batch.id == BatchItem.batch_id)
             .outerjoin(latest, latest.c.qbo_invoice_id == BatchItem.qbo_id)
             .outerjoin(EmailLog, sa.and_(EmailLog.company_id == company.id,
                                          EmailLog.qbo_invoice_id == BatchItem.qbo_id,
                                          EmailLog.send_seq == latest.c.seq))
             .where(Batch.company_id == company.id, BatchItem.state.in_(SENDABLE),
                    BatchItem.qbo_entity.in_(["Invoice", "CreditMemo"]),
                    BatchItem.qbo_id.is_not(None)))
    if status == "unsent":
        query = query.where(EmailLog.id.is_(None))
    elif status in STATUSES:
        query = query.where(EmailLog.status == EmailStatus(status))
    if number.strip():
        query = query.where(BatchItem.cw_number.contains(number.strip()))
    if before:
        query = query.where(BatchItem.id < before)
    query = query.order_by(BatchItem.id.desc()).limit(limit)
    return [Row(item, email) for item, email in session.execute(query)]


def history(session: Session, company: Company, qbo_id: str) -> list[EmailLog]:
    return list(session.scalars(sa.select(EmailLog).where(
        EmailLog.company_id == company.id, EmailLog.qbo_invoice_id == qbo_id)
        .order_by(EmailLog.send_seq)))


def target_for(session: Session, company: Company, qbo_id: str) -> Target | None:
    return _target(session, company, qbo_id)


def tick(app: Flask, session: Session) -> None:
    """The email part of the scheduler tick: reconcile sends, queue AfterBatch emails, mail
    red-batch notifications and the hourly digests."""
    from portal.services import notify

    reconcile(app, session)
    queue_after_batches(session)
    notify_red_batches(app, session)
    notify_reconnects(app, session)
    notify.send_digests(session)
    session.commit()


def notify_red_batches(app: Flask, session: Session) -> int:
    """A mail for each red batch finished since the company's cursor (AutoSync runs are
    mailed by AutoSync itself, with their re-run link)."""
    from portal.services import autosync, notify

    count = 0
    for company in session.scalars(sa.select(Company)).all():
        state = autosync.company_state(session, company.id)
        newest = session.scalar(sa.select(sa.func.max(Batch.id)).where(
            Batch.company_id == company.id)) or 0
        if state.notified_batch_id is None:
            state.notified_batch_id = newest
            session.commit()
            continue
        settings = cs.get_settings(session, company)
        for batch in session.scalars(sa.select(Batch).where(
                Batch.company_id == company.id, Batch.id > state.notified_batch_id)
                .order_by(Batch.id)).all():
            if batch.status.active:
                break
            state.notified_batch_id = batch.id
            if batch.colour != "red" or batch.trigger == autosync.TRIGGER:
                continue
            recipients = notification_recipients(session, settings)
            notify.event(session, "batch_red", company.id,
                         f"Batch #{batch.id} ({batch.type.label.lower()}) for "
                         f"{company.qbo_name} is red", batch.message or "",
                         autosync._link(app, "batches.show", batch_id=batch.id), recipients)
            count += 1
        session.commit()
    return count


def notify_reconnects(app: Flask, session: Session) -> int:
    """A mail when a company needs a reconnect, once per time it fell into that state."""
    from portal.models import AuditEvent, CompanyStatus, Notification
    from portal.services import autosync, notify

    count = 0
    for company in session.scalars(sa.select(Company).where(
            Company.status == CompanyStatus.RECONNECT_NEEDED)).all():
        since = session.scalar(sa.select(sa.func.max(AuditEvent.at)).where(
            AuditEvent.action == "connection.qbo.reconnect_needed",
            AuditEvent.company_id == company.id))
        told = session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
            Notification.kind == "reconnect", Notification.company_id == company.id,
            *([Notification.created_at >= since] if since else [])))
        if told:
            continue
        settings = cs.get_settings(session, company)
        notify.event(session, "reconnect", company.id,
                     f"Reconnect {company.qbo_name} to QuickBooks",
                     f"QuickBooks refused portal's connection to {company.qbo_name}: "
                     f"{company.last_error or 'the authorization expired'}. Nothing posts "
                     "for this company until an admin reconnects it.",
                     autosync._link(app, "setup.quickbooks"),
                     notification_recipients(session, settings))
        session.commit()
        count += 1
    return count


def notification_recipients(session: Session, settings: cs.CompanySettings) -> list[str]:
    """The configured recipients (AutoSync tab), else every active admin and accountant."""
    from portal.models import Role

    ids = settings.autosync_error_user_ids
    query = sa.select(User.email).where(User.active.is_(True))
    query = query.where(User.id.in_(ids)) if ids else \
        query.where(User.role.in_([Role.ADMIN, Role.ACCOUNTANT]))
    emails = list(session.scalars(query.order_by(User.email)))
    return emails + [e for e in settings.autosync_error_extra_emails if e not in emails]


def attention(session: Session) -> dict[int, int]:
    """Per company, invoice emails whose latest send failed or ended unknown (dashboard)."""
    latest = sa.select(EmailLog.company_id, EmailLog.qbo_invoice_id,
                       sa.func.max(EmailLog.send_seq).label("seq")).group_by(
        EmailLog.company_id, EmailLog.qbo_invoice_id).subquery()
    rows = session.execute(sa.select(EmailLog.company_id, sa.func.count()).join(
        latest, sa.and_(latest.c.company_id == EmailLog.company_id,
                        latest.c.qbo_invoice_id == EmailLog.qbo_invoice_id,
                        latest.c.seq == EmailLog.send_seq))
        .where(EmailLog.status.in_([EmailStatus.FAILED, EmailStatus.UNKNOWN]))
        .group_by(EmailLog.company_id))
    return {company_id: count for company_id, count in rows}
