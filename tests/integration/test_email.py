"""Emailing invoices end to end (SPEC 14): QuickBooks' send and our SMTP (to a real local
SMTP sink) with the PDF and the pay link, the log's rules (never twice without Resend, a
crash settled by reading QuickBooks), template errors, AfterBatch, notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, Company, EmailStatus, SmtpSettings
from portal.models.types import utcnow
from portal.services import email_invoices, notify
from tests.conftest import run_jobs
from tests.integration.batching import clear_faults, fault, qbo_state
from tests.integration.mail import email_rows, post_clean_invoices, save_tab, use_sink

pytestmark = pytest.mark.integration


@pytest.fixture()
def posted(app, connected, qbo_sandbox):  # type: ignore[no-untyped-def]
    """Three invoices posted with online card payment allowed (so they have a pay link)."""
    save_tab(app, connected.id, "sales", allow_epayments=["", "y"],
             allow_card_payments=["", "y"])
    return post_clean_invoices(app, qbo_sandbox)


def _outbox(server):  # type: ignore[no-untyped-def]
    return requests.get(f"{server.url}/_sim/outbox", timeout=5).json()["messages"]


def _send(client, company_id, qbo_id, action="send"):  # type: ignore[no-untyped-def]
    token = client.csrf_token(f"/email/{company_id}")
    return client.post(f"/email/{company_id}/invoices/{qbo_id}/{action}",
                       data={"csrf_token": token})


def _invoice(server, realm, qbo_id):  # type: ignore[no-untyped-def]
    return next(d for d in qbo_state(server, realm)["Invoice"] if d["Id"] == qbo_id)


def test_smtp_settings_keep_the_password_encrypted_and_the_test_reaches_the_sink(
        app, client, login_as, mailbox):
    admin = login_as("admin")
    token = client.csrf_token("/email/")
    bad = client.post("/email/smtp", data={"csrf_token": token, "host": "", "port": "99999",
                                           "security": "starttls", "timeout": "20",
                                           "from_address": "nope"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "Enter the server&#39;s host name" in page and "Enter a port from 1 to 65535" in page
    response = client.post("/email/smtp", data={
        "csrf_token": token, "host": mailbox.host, "port": str(mailbox.port),
        "security": "none", "username": "", "password": "s3cret-smtp-pass", "timeout": "5",
        "from_address": "billing@northwind.example"})
    assert response.status_code == 303, response.get_data(as_text=True)
    with session_scope(app) as session:
        row = session.get(SmtpSettings, 1)
        assert row.password_enc and "s3cret-smtp-pass" not in row.password_enc
        audit = session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "smtp.update")).one()
        assert "s3cret-smtp-pass" not in str(audit.after)
    assert "s3cret-smtp-pass" not in client.get("/email/").get_data(as_text=True)
    test = client.hx("POST", "/email/smtp/test", token_from="/email/")
    assert test.status_code == 200 and f"A test email went to {admin.email}" in \
        test.get_data(as_text=True)
    assert [m["to"] for m in mailbox.messages()] == [admin.email]
    with session_scope(app) as session:
        assert session.get(SmtpSettings, 1).last_test_ok is True


def test_smtp_delivery_sends_the_pdf_and_the_pay_link_once_and_resend_is_explicit(
        app, client, connected, posted, qbo_sandbox, mailbox):
    use_sink(app, mailbox)
    save_tab(app, connected.id, "email", email_delivery="Smtp", pdf_source="QuickBooks",
             from_name="Northwind Billing", from_address="ar@northwind.example",
             cc="books@northwind.example")
    item = posted[0]
    page = client.get(f"/email/{connected.id}").get_data(as_text=True)
    assert f'id="email-row-{item.qbo_id}"' in page and "unsent" in page
    assert _send(client, connected.id, item.qbo_id).status_code == 303
    run_jobs(app)
    [mail] = mailbox.messages()
    assert mail["subject"] == f"Invoice {item.qbo_doc_number} from {connected.qbo_name}"
    assert mail["from"] == "Northwind Billing <ar@northwind.example>"
    assert mail["cc"] == "books@northwind.example"
    assert "https://connect.intuit.com/portal/app/CommerceNetwork/view/scs-v1-" in mail["text"]
    assert '<a href="https://connect.intuit.com/' in mail["html"]
    [pdf] = mail["attachments"]
    assert pdf["content_type"] == "application/pdf" and pdf["starts"] == "%PDF-"
    [row] = email_rows(app)
    assert (row.status, row.send_seq, row.channel) == (EmailStatus.SENT, 1, "Smtp")
    assert row.recipients == mail["envelope_to"][:1] and row.provider_message_id
    # Send again is refused: I5, no second mail without Resend
    again = _send(client, connected.id, item.qbo_id)
    assert again.status_code == 303
    run_jobs(app)
    assert len(mailbox.messages()) == 1 and len(email_rows(app)) == 1
    assert "was emailed already" in client.get(f"/email/{connected.id}").get_data(
        as_text=True)
    confirm = client.get(f"/email/{connected.id}/invoices/{item.qbo_id}/resend")
    assert confirm.status_code == 200 and "Email invoice" in confirm.get_data(as_text=True)
    assert _send(client, connected.id, item.qbo_id, "resend").status_code == 303
    run_jobs(app)
    assert len(mailbox.messages()) == 2
    assert [(r.send_seq, r.status) for r in email_rows(app)] == [
        (1, EmailStatus.SENT), (2, EmailStatus.SENT)]
    sent = client.get(f"/email/{connected.id}?status=sent").get_data(as_text=True)
    unsent = client.get(f"/email/{connected.id}?status=unsent").get_data(as_text=True)
    assert f'id="email-row-{item.qbo_id}"' in sent and "Resend…" in sent
    assert f'id="email-row-{item.qbo_id}"' not in unsent
    assert f'id="email-row-{posted[1].qbo_id}"' in unsent and "Send</button>" in unsent
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "email.resend")) == 1


def test_the_connectwise_pdf_can_be_attached(app, client, connected, posted, mailbox):
    use_sink(app, mailbox)
    save_tab(app, connected.id, "email", email_delivery="Smtp", pdf_source="ConnectWise")
    _send(client, connected.id, posted[1].qbo_id)
    run_jobs(app)
    [mail] = mailbox.messages()
    [pdf] = mail["attachments"]
    assert pdf["starts"] == "%PDF-" and pdf["filename"].endswith(".pdf")


def test_quickbooks_delivery_sends_with_an_explicit_send_to(app, client, connected, posted,
                                                            qbo_sandbox):
    _qbo, server = qbo_sandbox
    save_tab(app, connected.id, "email", email_delivery="QuickBooks",
             cc="books@northwind.example", bcc="audit@northwind.example")
    item = posted[0]
    _send(client, connected.id, item.qbo_id)
    run_jobs(app)
    [row] = email_rows(app)
    assert row.status is EmailStatus.SENT, row.error
    [sent] = _outbox(server)
    assert sent["id"] == item.qbo_id and sent["to"] == row.recipients[0]
    invoice = _invoice(server, connected.realm_id, item.qbo_id)
    assert invoice["EmailStatus"] == "EmailSent" and invoice["DeliveryInfo"]["DeliveryTime"]
    assert invoice["BillEmailCc"] == {"Address": "books@northwind.example"}
    assert invoice["BillEmailBcc"] == {"Address": "audit@northwind.example"}


def test_a_lost_answer_ends_unknown_and_the_reconciler_settles_it_without_sending_again(
        app, client, connected, posted, qbo_sandbox):
    _qbo, server = qbo_sandbox
    save_tab(app, connected.id, "email", email_delivery="QuickBooks")
    item = posted[0]
    fault(server, target="qbo", method="POST", path_regex=r"/invoice/\d+/send",
          kind="drop_after_commit", count=1)
    _send(client, connected.id, item.qbo_id)
    run_jobs(app)
    clear_faults(server)
    [row] = email_rows(app)
    assert row.status is EmailStatus.UNKNOWN, row.error
    assert len(_outbox(server)) == 1  # QuickBooks did send it once
    with app.app_context(), session_scope(app) as session:
        assert email_invoices.reconcile(app, session) == 1
    [row] = email_rows(app)
    assert row.status is EmailStatus.SENT and row.sent_at
    assert len(_outbox(server)) == 1  # never sent again


def test_a_crash_between_sending_and_the_call_stays_unknown_until_resend(
        app, client, connected, posted, qbo_sandbox):
    """The row was committed `sending` and the worker died before calling QuickBooks."""
    _qbo, server = qbo_sandbox
    save_tab(app, connected.id, "email", email_delivery="QuickBooks")
    item = posted[0]
    with app.test_request_context(), session_scope(app) as session:
        company = session.get(Company, connected.id)
        target = email_invoices.target_for(session, company, item.qbo_id)
        row = email_invoices.queue(session, company, target, by=None)
        session.commit()
        assert email_invoices._start(session, row.id, ["someone@example.test"])
    with app.app_context(), session_scope(app) as session:
        later = utcnow() + timedelta(seconds=app.config["RUN_STALE_SECONDS"] + 1)
        assert email_invoices.reconcile(app, session, now=later) == 0
    [row] = email_rows(app)
    assert row.status is EmailStatus.UNKNOWN and "never sent again" in row.error
    assert _outbox(server) == []
    run_jobs(app)  # nothing queued: nothing sent
    assert _outbox(server) == []
    _send(client, connected.id, item.qbo_id)  # refused: unknown blocks an automatic send
    run_jobs(app)
    assert _outbox(server) == [] and len(email_rows(app)) == 1
    _send(client, connected.id, item.qbo_id, "resend")
    run_jobs(app)
    assert len(_outbox(server)) == 1
    assert [(r.send_seq, r.status) for r in email_rows(app)] == [
        (1, EmailStatus.UNKNOWN), (2, EmailStatus.SENT)]


def test_template_errors_are_shown_beside_the_field_and_the_preview_renders(
        app, client, login_as, connected):
    url = f"/setup/quickbooks/{connected.id}/settings/email"
    page = client.get(url).get_data(as_text=True)
    assert 'id="setting-body_template"' in page and 'id="email-preview"' in page
    token = client.csrf_token(url)
    response = client.hx("POST", url, current_url=url, token_from=url, data={
        "email_delivery": "Off", "subject_template": "Invoice {{ invoice.number",
        "body_template": "Hello {{ invoice.secret }}", "csrf_token": token})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="setting-subject_template-error">Line 1:' in body
    assert 'id="setting-body_template-error">Unknown name:' in body
    assert "invoice.payment_link" in body
    response = client.hx("POST", url, current_url=url, token_from=url, data={
        "body_template": "{{ invoice.total|upper }}", "csrf_token": token})
    assert response.status_code == 422 and "No filter named" in response.get_data(
        as_text=True)
    preview = client.hx("POST", f"/email/{connected.id}/preview", token_from=url, data={
        "subject_template": "Invoice {{ invoice.number }}",
        "body_template": "Total {{ invoice.total|money }} for {{ customer.name }}"})
    text = preview.get_data(as_text=True)
    assert "Invoice 10042" in text and "Total 1,234.50 for Acme Corp" in text


def test_smtp_delivery_needs_the_smtp_server(app, client, connected):
    url = f"/setup/quickbooks/{connected.id}/settings/email"
    response = client.hx("POST", url, current_url=url, token_from=url,
                         data={"email_delivery": "Smtp"})
    assert response.status_code == 422
    assert "Set up the SMTP server first" in response.get_data(as_text=True)


def test_the_accountant_edits_the_email_tab_only(app, client, make_user, connected):
    accountant = make_user("accountant", email="acc@example.test")
    other = app.test_client()
    assert other.login(accountant.email).status_code == 303
    url = f"/setup/quickbooks/{connected.id}/settings/email"
    ok = other.hx("POST", url, current_url=url, token_from=url,
                  data={"email_delivery": "QuickBooks"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    sales = f"/setup/quickbooks/{connected.id}/settings/sales"
    assert other.hx("POST", sales, current_url=sales, token_from=url,
                    data={"payment_sync_overlap_minutes": "20"}).status_code == 403


def test_after_batch_queues_every_done_invoice_once(app, connected, qbo_sandbox):
    _qbo, server = qbo_sandbox
    save_tab(app, connected.id, "email", email_delivery="QuickBooks", send_mode="AfterBatch")
    with app.app_context(), session_scope(app) as session:
        email_invoices.tick(app, session)  # the cursor starts here
    items = post_clean_invoices(app, qbo_sandbox, count=2)
    for _ in range(2):  # a second tick queues nothing more
        with app.app_context(), session_scope(app) as session:
            email_invoices.tick(app, session)
        run_jobs(app)
    rows = email_rows(app)
    assert sorted(r.qbo_invoice_id for r in rows) == sorted(i.qbo_id for i in items)
    assert {r.status for r in rows} == {EmailStatus.SENT}
    assert sorted(m["id"] for m in _outbox(server)) == sorted(i.qbo_id for i in items)


def test_a_quickbooks_test_email_goes_to_the_user_and_bill_email_is_restored(
        app, client, connected, posted, qbo_sandbox):
    _qbo, server = qbo_sandbox
    save_tab(app, connected.id, "email", email_delivery="QuickBooks")
    url = f"/setup/quickbooks/{connected.id}/settings/email"
    refused = client.hx("POST", f"/email/{connected.id}/test", token_from=url)
    assert refused.status_code == 422 and "Tick the box first" in refused.get_data(
        as_text=True)
    newest = max(posted, key=lambda i: i.id)
    before = _invoice(server, connected.realm_id, newest.qbo_id).get("BillEmail")
    response = client.hx("POST", f"/email/{connected.id}/test", token_from=url,
                         data={"confirm_quickbooks": "1"})
    assert response.status_code == 200, response.get_data(as_text=True)
    [sent] = _outbox(server)
    assert sent["to"] == "admin@example.test" and sent["id"] == newest.qbo_id
    assert _invoice(server, connected.realm_id, newest.qbo_id).get("BillEmail") == before
    assert email_rows(app) == []  # a test is not a send of the invoice


def test_notifications_are_throttled_per_kind_and_company_and_digested_hourly(
        app, connected, mailbox):
    use_sink(app, mailbox)
    now = utcnow()
    with app.app_context(), session_scope(app) as session:
        for minute in (0, 5, 10):
            notify.event(session, "batch_red", connected.id, f"Batch {minute} is red", "body",
                         "http://portal/batches/1", ["ops@example.test"],
                         now=now + timedelta(minutes=minute))
        notify.event(session, "reconnect", connected.id, "Reconnect needed", "body", None,
                     ["ops@example.test"], now=now + timedelta(minutes=11))
        assert notify.send_digests(session, now=now + timedelta(minutes=30)) == 0
    assert [m["subject"] for m in mailbox.messages()] == ["Batch 0 is red", "Reconnect needed"]
    with app.app_context(), session_scope(app) as session:
        assert notify.send_digests(session, now=now + timedelta(minutes=72)) == 1
        assert notify.send_digests(session, now=now + timedelta(minutes=200)) == 0
    digest = mailbox.messages()[-1]
    assert digest["subject"] == "portal digest: 2 event(s)"
    assert "Batch 5 is red" in digest["text"] and "Batch 10 is red" in digest["text"]
    assert len(mailbox.messages()) == 3


def test_a_reconnect_needed_company_is_mailed_once(app, connected, mailbox):
    from portal.services import tokens

    use_sink(app, mailbox)
    with app.app_context(), session_scope(app) as session:
        tokens.mark_reconnect_needed(session, session.get(Company, connected.id),
                                     "invalid_grant")
    for _ in range(2):
        with app.app_context(), session_scope(app) as session:
            email_invoices.tick(app, session)
    [mail] = mailbox.messages()
    assert mail["subject"] == f"Reconnect {connected.qbo_name} to QuickBooks"
    assert "invalid_grant" in mail["text"] and "/setup/quickbooks" in mail["text"]
    assert "admin@example.test" in mail["envelope_to"]


def test_checklist_step_6_follows_the_saved_tabs_and_the_smtp_test(app, client, connected,
                                                                   mailbox):
    from portal.services import dashboard

    def step6():  # type: ignore[no-untyped-def]
        with app.app_context(), session_scope(app) as session:
            return next(s for s in dashboard.checklist(session) if s.number == 6)

    assert step6().state == "todo" and "Email tab" in step6().reason
    use_sink(app, mailbox)
    save_tab(app, connected.id, "email", email_delivery="Smtp")
    save_tab(app, connected.id, "sales", payment_sync_overlap_minutes="10")
    assert step6().state == "done"
    mailbox.stop()  # the server goes away: the test fails
    test = client.hx("POST", "/email/smtp/test", token_from="/email/")
    assert "could not be reached" in test.get_data(as_text=True)
    assert step6().state == "warning" and "last test email failed" in step6().reason


def test_webhook_signature_failures_mail_the_admins_at_most_hourly(app, make_user, mailbox):
    use_sink(app, mailbox)
    make_user("admin", email="boss@example.test")
    make_user("accountant", email="acc@example.test")
    with app.app_context(), session_scope(app) as session:
        for _ in range(3):
            notify.webhook_signature_failed(session, "intuit-signature did not match")
    [mail] = mailbox.messages()
    assert mail["envelope_to"] == ["boss@example.test"]
    assert mail["subject"] == "A QuickBooks webhook failed its signature check"


def test_checklist_step_10_follows_the_newest_payment_sync(app):
    from portal.models import Batch, BatchStatus, BatchType
    from portal.services import dashboard

    def step10():  # type: ignore[no-untyped-def]
        with app.app_context(), session_scope(app) as session:
            return next(s for s in dashboard.checklist(session) if s.number == 10)

    assert step10().state == "todo"
    with session_scope(app) as session:
        company = Company(realm_id="1", qbo_name="Acme", country="US", is_us=True,
                          is_default=True)
        session.add(company)
        session.flush()
        for colour in ("green", "yellow"):
            session.add(Batch(type=BatchType.PAYMENT, company_id=company.id,
                              status=BatchStatus.FINISHED, colour=colour, trigger="user:1",
                              options={}, counts={}, totals={}, preflight=[],
                              message="2 payments applied"))
            session.flush()
            if colour == "green":
                session.commit()
                assert step10().state == "done"
    assert step10().state == "warning" and "is yellow" in step10().reason


def test_a_red_manual_batch_is_mailed_with_a_link_once(app, connected, mailbox):
    from tests.integration.batching import submit

    use_sink(app, mailbox)
    with app.app_context(), session_scope(app) as session:
        email_invoices.tick(app, session)  # the cursor starts here: older batches are old news
    batch_id = submit(app)  # the whole backlog: pre-flight blocks it, red
    run_jobs(app)
    for _ in range(2):
        with app.app_context(), session_scope(app) as session:
            email_invoices.tick(app, session)
    [mail] = mailbox.messages()
    assert mail["subject"] == f"Batch #{batch_id} (invoices) for {connected.qbo_name} is red"
    assert f"/batches/{batch_id}" in mail["text"] and "Pre-flight found" in mail["text"]


def test_a_crash_after_quickbooks_sent_is_settled_as_sent_by_the_reconciler(
        app, connected, posted, qbo_sandbox):
    """The worker died after QuickBooks sent the mail, before the row said so: the row is
    `sending`; the reconciler makes it unknown, reads the invoice and settles it sent."""
    from portal import clients

    _qbo, server = qbo_sandbox
    save_tab(app, connected.id, "email", email_delivery="QuickBooks")
    item = posted[0]
    with app.test_request_context(), session_scope(app) as session:
        company = session.get(Company, connected.id)
        row = email_invoices.queue(session, company,
                                   email_invoices.target_for(session, company, item.qbo_id),
                                   by=None)
        session.commit()
        assert email_invoices._start(session, row.id, ["ap@example.test"])
        clients.quickbooks(session, company).send("Invoice", item.qbo_id, "ap@example.test")
    with app.app_context(), session_scope(app) as session:
        later = utcnow() + timedelta(seconds=app.config["RUN_STALE_SECONDS"] + 1)
        assert email_invoices.reconcile(app, session, now=later) == 1
    [row] = email_rows(app)
    assert row.status is EmailStatus.SENT and row.provider_message_id.startswith("qbo:")
    assert len(_outbox(server)) == 1
