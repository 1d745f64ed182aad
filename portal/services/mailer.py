"""The one SMTP server (global settings, SPEC 14.1): saving it, sending through it, and the
"send test" that the dashboard checklist reads.

The password is sealed with the encryption key (services.secrets_store) and is unsealed only
for the SMTP login; it never reaches a page, a log line or a job argument.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy.orm import Session

from portal.models import SmtpSettings, User
from portal.models.types import utcnow
from portal.services import audit, secrets_store

SECURITY = (("starttls", "STARTTLS"), ("ssl", "SSL/TLS"), ("none", "None (local relay only)"))
HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


class MailError(Exception):
    """The server refused or could not be reached; the message says which and why."""


class MailUnknown(MailError):
    """The connection broke while the message was being handed over: it may have gone."""


def current(session: Session) -> SmtpSettings | None:
    row = session.get(SmtpSettings, 1)
    return row if row is not None and row.host else None


@dataclass
class SmtpForm:
    host: str
    port: str
    security: str
    username: str
    password: str  # empty: keep the stored one
    timeout: str
    from_address: str


def save(session: Session, form: SmtpForm, by: User | None) -> dict[str, str]:
    """Validate and store the server; {field: message} on errors (nothing saved)."""
    from portal.services.company_settings import EMAIL

    errors: dict[str, str] = {}
    host = form.host.strip()
    if not host or len(host) > 255 or set(host) - HOST_CHARS:
        errors["host"] = "Enter the server's host name, such as smtp.example.com."
    port = form.port.strip()
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        errors["port"] = "Enter a port from 1 to 65535 (587 for STARTTLS, 465 for SSL)."
    if form.security not in {v for v, _ in SECURITY}:
        errors["security"] = "Choose STARTTLS, SSL/TLS or None."
    timeout = form.timeout.strip()
    if not timeout.isdigit() or not 1 <= int(timeout) <= 120:
        errors["timeout"] = "Enter a timeout from 1 to 120 seconds."
    sender = form.from_address.strip()
    if not EMAIL.match(sender):
        errors["from_address"] = "Enter the address notifications come from."
    if len(form.username) > 255:
        errors["username"] = "Use at most 255 characters."
    if errors:
        return errors
    row = session.get(SmtpSettings, 1)
    before = None
    if row is None:
        row = SmtpSettings(id=1)
        session.add(row)
    else:
        before = {"host": row.host, "port": row.port, "security": row.security,
                  "username": row.username, "timeout": row.timeout,
                  "from_address": row.from_address}
    row.host, row.port, row.security = host, int(port), form.security
    row.username, row.timeout, row.from_address = form.username.strip(), int(timeout), sender
    changed_password = bool(form.password)
    if changed_password:
        row.password_enc = secrets_store.seal(form.password)
    session.flush()
    after = {"host": row.host, "port": row.port, "security": row.security,
             "username": row.username, "timeout": row.timeout, "from_address": sender}
    if changed_password:
        after["password"] = "changed"
    audit.record(session, "smtp.update", target=row, before=before, after=after)
    return {}


def send(session: Session, message: EmailMessage) -> str:
    """Send one message through the stored server; its Message-ID. MailError when the
    server is not set up, cannot be reached or refuses."""
    row = current(session)
    if row is None:
        raise MailError("Set up the SMTP server first (Email › SMTP server).")
    if not message.get("From"):
        message["From"] = row.from_address
    if not message.get("Message-ID"):
        message["Message-ID"] = make_msgid(domain=(row.from_address.split("@")[-1] or None))
    password = secrets_store.unseal(row.password_enc) if row.password_enc else ""
    server = _connect(row, password)
    try:
        with server:
            server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"The SMTP server refused the recipient(s) "
                        f"{', '.join(exc.recipients)}.") from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        raise MailError(f"The SMTP server refused the message: {str(exc)[:200]}") from None
    except (smtplib.SMTPException, OSError) as exc:  # mid-transfer: it may have gone
        raise MailUnknown(f"The connection to {row.host}:{row.port} broke while sending "
                          f"({exc.__class__.__name__}).") from None
    return str(message["Message-ID"])


def _connect(row: SmtpSettings, password: str) -> smtplib.SMTP:
    """A logged-in connection; MailError when it cannot be had (nothing was sent)."""
    try:
        if row.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(row.host, row.port, timeout=row.timeout,
                                                    context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(row.host, row.port, timeout=row.timeout)
        try:
            if row.security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if row.username:
                server.login(row.username, password)
        except BaseException:
            server.close()
            raise
    except smtplib.SMTPAuthenticationError:
        raise MailError("The SMTP server refused the username or password.") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"The SMTP server refused the connection: {str(exc)[:200]}") from None
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"The SMTP server {row.host}:{row.port} could not be reached "
                        f"({exc.__class__.__name__}: {str(exc)[:120]}).") from None
    return server


def plain(to: list[str], subject: str, text: str, *, sender: str | None = None
          ) -> EmailMessage:
    message = EmailMessage()
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    if sender:
        message["From"] = sender
    message.set_content(text)
    return message


def send_test(session: Session, to: str) -> str | None:
    """Send a test mail to `to` and record the outcome (dashboard step 6); the error, or
    None when it went."""
    row = session.get(SmtpSettings, 1)
    error = None
    try:
        send(session, plain([to], "portal test email", "The SMTP settings of portal work: "
                            "this message went through them."))
    except MailError as exc:
        error = str(exc)
    if row is not None:
        row.last_test_at = utcnow()
        row.last_test_ok = error is None
        row.last_test_error = error
    return error
