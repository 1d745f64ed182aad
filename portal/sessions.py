"""Server-side sessions: the cookie holds an opaque random token, the database its SHA-256.

Idle timeout and absolute lifetime are enforced when the session is opened; logging in
rotates the token; disabling a user or changing their role deletes their rows. The session
also remembers when its user last entered their password (re-authentication, SPEC 1.2).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, Request, Response, session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from portal.db import session_scope
from portal.models import UserSession
from portal.models.types import utcnow

TOUCH_EVERY = timedelta(seconds=30)  # last_seen_at granularity: fewer writes
PASSWORD_AT = "password_entered_at"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The session dict, plus what the interface needs to save it."""

    def __init__(self, initial: dict[str, Any] | None = None, token: str | None = None,
                 last_seen: datetime | None = None, expired: bool = False) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.last_seen = last_seen
        self.expired = expired
        self.rotate = False
        self.destroy = False
        self.modified = False


class ServerSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > 128:
            return ServerSession()
        now = utcnow()
        with session_scope(app) as db:
            row = db.scalar(sa.select(UserSession).where(
                UserSession.token_hash == hash_token(token)))
            if row is None:
                return ServerSession(expired=True)
            idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"])
            lifetime = timedelta(hours=app.config["SESSION_MAX_HOURS"])
            if now - row.last_seen_at > idle or now - row.created_at > lifetime:
                db.delete(row)
                return ServerSession(expired=True)
            return ServerSession(dict(row.data or {}), token=token, last_seen=row.last_seen_at)

    def save_session(self, app: Flask, session: ServerSession,  # type: ignore[override]
                     response: Response) -> None:
        from flask import g, request

        # The response is rendered: end the request's own transaction first, so that on
        # SQLite it holds no lock while the session row is written on another connection.
        request_db = g.pop("db_session", None)
        if request_db is not None:
            request_db.close()
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if session.destroy or (session.token and not session and session.modified):
            if session.token:
                _delete(app, session.token)
            response.delete_cookie(name, domain=domain, path=path)
            return
        if not session and not session.token:
            return
        now = utcnow()
        stale = session.last_seen is None or now - session.last_seen > TOUCH_EVERY
        if not (session.modified or session.rotate or stale):
            return
        user_id = session.get("_user_id")
        with session_scope(app) as db:
            if session.rotate and session.token:
                db.execute(sa.delete(UserSession).where(
                    UserSession.token_hash == hash_token(session.token)))
                session.token = None
            if session.token is None:
                session.token = secrets.token_urlsafe(32)  # 256 bits
                db.add(UserSession(
                    token_hash=hash_token(session.token), data=dict(session),
                    user_id=int(user_id) if user_id else None, created_at=now,
                    last_seen_at=now, ip=request.remote_addr,
                    user_agent=(request.user_agent.string or "").replace("\x00", "")[:255]))
            else:
                db.execute(sa.update(UserSession).where(
                    UserSession.token_hash == hash_token(session.token)).values(
                    data=dict(session), last_seen_at=now,
                    user_id=int(user_id) if user_id else None))
        response.set_cookie(
            name, session.token, httponly=True, secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app), domain=domain, path=path)
        response.vary.add("Cookie")


def _delete(app: Flask, token: str) -> None:
    with session_scope(app) as db:
        db.execute(sa.delete(UserSession).where(UserSession.token_hash == hash_token(token)))


def purge_expired(db: Any) -> int:
    """Delete sessions past their idle timeout or lifetime (anonymous ones included) in the
    caller's transaction (sign-in runs it, so the table never grows without bound)."""
    from flask import current_app

    now = utcnow()
    idle = now - timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    oldest = now - timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    result = db.execute(sa.delete(UserSession).where(sa.or_(
        UserSession.last_seen_at < idle, UserSession.created_at < oldest)))
    return result.rowcount or 0


def rotate() -> None:
    """Give the current session a new token (at login), dropping the old row."""
    session.rotate = True  # type: ignore[attr-defined]
    session.modified = True


def destroy() -> None:
    """Forget the session (logout): its row is deleted and the cookie cleared."""
    session.clear()
    session.destroy = True  # type: ignore[attr-defined]


def mark_password_entered() -> None:
    """Remember that the user just typed their password (sign-in or re-authentication)."""
    session[PASSWORD_AT] = utcnow().isoformat()


def password_entered_at() -> datetime | None:
    """When the user last typed their password in this session, if known."""
    raw = session.get(PASSWORD_AT)
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def init_app(app: Flask) -> None:
    app.session_interface = ServerSessionInterface()
