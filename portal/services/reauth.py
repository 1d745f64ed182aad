"""Re-authentication: the password entered again before actions that are hard to undo.

SPEC 1.2 asks for it within the last 10 minutes before connecting or disconnecting a
QuickBooks company, replacing a secret, changing a role, clearing or undoing clearing,
and unbatching more than 10 records. A stolen or unattended session then cannot do those
on its own. Signing in counts as entering the password. The time lives in the server-side
session (portal/sessions.py); portal/routes/reauth.py asks for the password.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from portal.models import User
from portal.models.types import utcnow
from portal.services import audit, passwords
from portal.services.throttle import LoginThrottle

WINDOW = timedelta(minutes=10)


def is_recent(entered_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a password entered at `entered_at` still covers a sensitive action."""
    return entered_at is not None and (now or utcnow()) - entered_at < WINDOW


def confirm(session: Session, user: User, password: str, *, hasher: passwords.Hasher,
            throttle: LoginThrottle, ip: str | None) -> str | None:
    """Check the signed-in user's password: None when right, else the message to show.

    A wrong password counts toward the account's sign-in throttle, so the prompt is no
    way around it, and every attempt is audited (`auth.reauth`). The caller commits and,
    on success, records the time in the session.
    """
    verdict = throttle.check(user.email, ip)
    if not verdict.allowed:
        audit.record(session, "auth.lockout", result="denied", target=user)
        return f"Too many attempts; try again in {verdict.retry_after_minutes} minutes."
    if not hasher.verify(user.password_hash, password):
        throttle.record(user.email, ip)
        audit.record(session, "auth.reauth", result="denied", target=user)
        return "That is not your password; try again."
    audit.record(session, "auth.reauth", target=user)
    return None
