"""Entry point of an invoice email: sends one queued email_log row (ids only, no secrets)."""

from __future__ import annotations

from portal.db import session_scope
from portal.services import email_invoices


def send_email(log_id: int) -> None:
    """Send the row if it is still queued; a second copy of the job finds it taken."""
    with session_scope() as session:
        email_invoices.send(session, log_id)
