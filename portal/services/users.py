"""Users: creation, sign-in checks, roles, disabling, reset links, sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from portal.db import get_session
from portal.models import PasswordReset, Role, User, UserSession
from portal.models.types import utcnow
from portal.services import audit, passwords

RESET_LIFETIME = timedelta(minutes=60)


class UserError(ValueError):
    """A request about a user that cannot be done; the message says why."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def load_user(user_id: str) -> User | None:
    """flask-login's loader: disabled users are treated as signed out."""
    try:
        user = get_session().get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return user if user is not None and user.active else None


def count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def create(session: Session, *, email: str, name: str, role: Role, password: str | None,
           hasher: passwords.Hasher | None = None) -> User:
    """Add a user after checking the email and the password policy; flushes.

    Without a password (an admin inviting someone) the account gets an unusable random
    one, and the admin hands over a reset link: admins never choose others' passwords.
    """
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise UserError("Enter a valid email address.")
    if by_email(session, email) is not None:
        raise UserError(f"A user with the email {email} already exists.")
    if password is None:
        password = secrets.token_urlsafe(32)
    problems = passwords.problems(password, email)
    if problems:
        raise UserError(" ".join(problems))
    hasher = hasher or passwords.hasher_for(current_app.config)
    user = User(email=email, name=name.strip() or email.split("@")[0], role=role,
                password_hash=hasher.hash(password), active=True)
    session.add(user)
    session.flush()
    audit.record(session, "user.create", target=user,
                 after={"email": email, "name": user.name, "role": role, "active": True})
    return user


def authenticate(session: Session, email: str, password: str,
                 hasher: passwords.Hasher) -> User | None:
    """The user when the password matches an active account, else None.

    A missing account still costs one hash, so timing does not reveal which emails exist.
    """
    user = by_email(session, email)
    if user is None:
        hasher.verify(_DUMMY_HASH.get(hasher), password)
        return None
    if not hasher.verify(user.password_hash, password) or not user.active:
        return None
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.last_login_at = utcnow()
    return user


class _DummyHash:
    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def get(self, hasher: passwords.Hasher) -> str:
        key = id(hasher)
        if key not in self._cache:
            self._cache = {key: hasher.hash(secrets.token_urlsafe(16))}
        return self._cache[key]


_DUMMY_HASH = _DummyHash()


def _refuse_last_admin(session: Session, user: User, change: str) -> None:
    """Raise unless another active admin remains when `user` stops being one.

    The active admins' rows are locked until commit first (PostgreSQL), so two admins
    demoting or disabling each other at the same moment cannot both succeed: the second
    waits for the first, then counts again.
    """
    admins = sa.select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
    session.execute(admins.with_for_update()).all()
    others = session.scalar(sa.select(sa.func.count()).select_from(
        admins.where(User.id != user.id).subquery())) or 0
    if others == 0:
        raise UserError(f"{user.email} is the last active admin and cannot be {change}: "
                        "make another user an admin first, so someone can still manage "
                        "users and connections.")


def end_sessions(session: Session, user: User) -> int:
    """Delete every session of the user (they must sign in again)."""
    result = session.execute(sa.delete(UserSession).where(UserSession.user_id == user.id))
    return result.rowcount or 0


def change_role(session: Session, user: User, role: Role, *, by: User) -> None:
    if user.role == role:
        return
    if user.role == Role.ADMIN and user.active:
        _refuse_last_admin(session, user, f"made {role.label.lower()}")
    before = {"role": user.role}
    user.role = role
    end_sessions(session, user)
    audit.record(session, "user.role_change", target=user, before=before, after={"role": role})


def set_active(session: Session, user: User, active: bool, *, by: User) -> None:
    if user.active == active:
        return
    if not active:
        if user.id == by.id:
            raise UserError("You cannot disable your own account.")
        if user.role == Role.ADMIN:
            _refuse_last_admin(session, user, "disabled")
    user.active = active
    if not active:
        end_sessions(session, user)
    audit.record(session, "user.enable" if active else "user.disable", target=user,
                 before={"active": not active}, after={"active": active})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_reset(session: Session, user: User, *, by: User | None) -> str:
    """A single-use reset token valid for 60 minutes; only its hash is stored.

    Earlier unused links of the user stop working.
    """
    now = utcnow()
    session.execute(sa.update(PasswordReset).where(
        PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)).values(used_at=now))
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(token_hash=_hash(token), user_id=user.id,
                              created_by_id=by.id if by else None, created_at=now,
                              expires_at=now + RESET_LIFETIME))
    audit.record(session, "user.reset_link", target=user)
    return token


def request_reset(session: Session, email: str) -> None:
    """Someone on the sign-in page forgot their password: audit it.

    No email is sent yet (SPEC 1.2 sends a link only when SMTP is configured), so the page
    tells them to ask an admin. Email delivery goes here and nowhere else: for an active
    account, `create_reset(session, user, by=None)` and send the link. The person's answer
    stays the same whether the account exists or not, so nothing here changes it.
    """
    email = normalise_email(email)
    user = by_email(session, email)
    known = user is not None and user.active
    audit.record(session, "auth.forgot", actor=email or "anonymous", target_type="user",
                 target_id=user.id if user else email, after={"account": known, "sent": False})


def find_reset(session: Session, token: str) -> PasswordReset | None:
    """The reset row for a token that is unused and unexpired, else None."""
    row = session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == _hash(token)))
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        return None
    if not row.user.active:
        return None
    return row


def complete_reset(session: Session, reset: PasswordReset, password: str,
                   hasher: passwords.Hasher) -> User:
    """Set the new password, spend the link and end the user's sessions."""
    user = reset.user
    problems = passwords.problems(password, user.email)
    if problems:
        raise UserError(" ".join(problems))
    now = utcnow()
    user.password_hash = hasher.hash(password)
    user.password_changed_at = now
    reset.used_at = now
    end_sessions(session, user)
    audit.record(session, "user.password_reset", target=user, actor=user.email,
                 user_id=user.id, after={"password": "set"})
    return user
