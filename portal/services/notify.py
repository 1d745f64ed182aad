"""Notifications (SPEC 14.4): red batches, AutoSync failures and auto-disable,
reconnect-needed and webhook signature failures, mailed to the configured recipients with a
deep link. At most one mail per kind per company per hour; later events of the hour wait
for the digest, which the scheduler tick sends once the hour since the last mail is over.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Notification
from portal.models.types import utcnow
from portal.services import mailer

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
KINDS = {"batch_red": "Red batch", "autosync_failure": "AutoSync failure",
         "autosync_disabled": "AutoSync turned off", "reconnect": "Reconnect needed",
         "webhook_signature": "Webhook signature failure"}


def _last_mail(session: Session, kind: str | None, company_id: int | None) -> datetime | None:
    query = sa.select(sa.func.max(sa.func.coalesce(Notification.sent_at,
                                                   Notification.digest_at)))
    if kind is not None:
        query = query.where(Notification.kind == kind)
    query = query.where(Notification.company_id.is_(None) if company_id is None
                        else Notification.company_id == company_id)
    return session.scalar(query)


def event(session: Session, kind: str, company_id: int | None, subject: str, body: str,
          link: str | None, recipients: list[str], now: datetime | None = None
          ) -> Notification:
    """Record an event and mail it now, unless a mail of this kind for this company went
    within the hour (then it joins the digest). Mail errors are kept on the row, never
    raised: a notification must not stop the work that raised it."""
    now = now or utcnow()
    row = Notification(kind=kind, company_id=company_id, subject=subject[:300], body=body,
                       link=link, recipients=list(recipients), created_at=now)
    session.add(row)
    session.flush()
    last = _last_mail(session, kind, company_id)
    if not recipients or (last is not None and last > now - HOUR):
        return row  # throttled (or nobody to tell): the digest carries it
    text = body + (f"\n\nOpen: {link}" if link else "")
    try:
        mailer.send(session, mailer.plain(recipients, subject, text))
    except mailer.MailError as exc:
        row.error = str(exc)
        log.warning("notification %s not mailed: %s", kind, exc)
    row.sent_at = now
    return row


def send_digests(session: Session, now: datetime | None = None) -> int:
    """Mail one digest per company of the events held back, once the hour since that
    company's last mail is over; the number of digests sent."""
    now = now or utcnow()
    pending = list(session.scalars(sa.select(Notification).where(
        Notification.sent_at.is_(None), Notification.digest_at.is_(None))
        .order_by(Notification.company_id, Notification.id)))
    groups: dict[int | None, list[Notification]] = {}
    for row in pending:
        groups.setdefault(row.company_id, []).append(row)
    sent = 0
    for company_id, rows in groups.items():
        last = _last_mail(session, None, company_id)
        if last is not None and last > now - HOUR:
            continue
        recipients = sorted({r for row in rows for r in row.recipients})
        lines = [f"{len(rows)} event(s) since the last mail:", ""]
        for row in rows:
            lines.append(f"- {row.created_at:%Y-%m-%d %H:%M} UTC · {KINDS.get(row.kind, row.kind)}"
                         f": {row.subject}" + (f" ({row.link})" if row.link else ""))
        error = None
        if recipients:
            try:
                mailer.send(session, mailer.plain(
                    recipients, f"portal digest: {len(rows)} event(s)", "\n".join(lines)))
            except mailer.MailError as exc:
                error = str(exc)
        for row in rows:
            row.digest_at = now
            row.error = error
        sent += 1
    return sent


def webhook_signature_failed(session: Session, detail: str, link: str | None = None
                             ) -> Notification:
    """For the webhook receiver: a delivery whose signature did not verify, told to every
    active admin at most once an hour (the rest join the digest). The detail must hold
    no payload and no secret."""
    from portal.models import Role, User

    admins = list(session.scalars(sa.select(User.email).where(
        User.active.is_(True), User.role == Role.ADMIN).order_by(User.email)))
    return event(session, "webhook_signature", None,
                 "A QuickBooks webhook failed its signature check", detail, link, admins)
