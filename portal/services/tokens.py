"""QuickBooks tokens: one refresher at a time, rotation stored before use, reconnect marking.

Web requests and workers share this path. A refresh takes a Redis lock per company, then
re-reads the row: if another process refreshed meanwhile (the `version` moved), its token is
used. The new tokens are committed on a session of their own before the access token is
used, so a job that later rolls back can never lose a rotated refresh token.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from portal import jobs
from portal.db import session_scope
from portal.integrations import errors, qbo_auth
from portal.models import Company, CompanyStatus, QboToken
from portal.models.types import utcnow
from portal.services import audit
from portal.services.secrets_store import seal, unseal

log = logging.getLogger(__name__)
EARLY = timedelta(seconds=300)
LOCK_TTL = 90


class ReconnectNeeded(errors.AuthError):
    """The company's refresh token is dead; only an admin's reconnect fixes it."""


def store(session, token: QboToken | None, company: Company,  # type: ignore[no-untyped-def]
          tokens: qbo_auth.TokenSet) -> QboToken:
    """Seal and set both tokens and their expiries (the caller commits)."""
    if token is None:
        token = QboToken(company_id=company.id, version=0)
        session.add(token)
    token.access_token_enc = seal(tokens.access_token)
    token.refresh_token_enc = seal(tokens.refresh_token)
    token.access_expires_at = tokens.access_expires_at
    token.refresh_expires_at = tokens.refresh_expires_at
    if tokens.refresh_hard_expires_at is not None:
        token.refresh_hard_expires_at = tokens.refresh_hard_expires_at
    token.version = (token.version or 0) + 1
    token.updated_at = utcnow()
    return token


def _store_if(session, company_id: int, seen: int,  # type: ignore[no-untyped-def]
              tokens: qbo_auth.TokenSet) -> bool:
    """Write rotated tokens unless the row moved past version `seen`; the caller commits."""
    values = {"access_token_enc": seal(tokens.access_token),
              "refresh_token_enc": seal(tokens.refresh_token),
              "access_expires_at": tokens.access_expires_at,
              "refresh_expires_at": tokens.refresh_expires_at,
              "version": seen + 1, "updated_at": utcnow()}
    if tokens.refresh_hard_expires_at is not None:
        values["refresh_hard_expires_at"] = tokens.refresh_hard_expires_at
    result = session.execute(sa.update(QboToken).where(
        QboToken.company_id == company_id, QboToken.version == seen).values(**values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


class DbTokenSource:
    """The TokenSource of a company, for QuickBooksClient."""

    def __init__(self, company_id: int, app_credentials: qbo_auth.AppCredentials,
                 app: Flask | None = None) -> None:
        self.company_id = company_id
        self.app_credentials = app_credentials
        # The app, held: a client may be called from a job's threads, outside any context.
        self.app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        self.refreshes = 0

    def _context(self) -> Any:
        """The app's context for a call from a thread that has none (a job's workers)."""
        return nullcontext() if has_app_context() else self.app.app_context()

    def access_token(self) -> str:
        with self._context():
            return self._access_token()

    def force_refresh(self, rejected: str) -> str:
        """The API said 401 to `rejected`: refresh unless someone already has."""
        with self._context():
            return self._force_refresh(rejected)

    def _access_token(self) -> str:
        with session_scope(self.app) as session:
            token = _token(session, self.company_id)
            if token.access_expires_at - utcnow() > EARLY:
                return unseal(token.access_token_enc)
            seen = token.version
        return self._refresh(seen, force=False)

    def _force_refresh(self, rejected: str) -> str:
        with session_scope(self.app) as session:
            token = _token(session, self.company_id)
            current = unseal(token.access_token_enc)
            if current != rejected:
                return current
            seen = token.version
        return self._refresh(seen, force=True)

    def _refresh(self, seen_version: int, *, force: bool) -> str:
        lock = jobs.get_redis(self.app).lock(f"portal:qbo-refresh:{self.company_id}",
                                             timeout=LOCK_TTL, blocking_timeout=LOCK_TTL)
        if not lock.acquire():
            raise errors.Transient("Another process is refreshing the QuickBooks token; "
                                   "try again.")
        try:
            return self._refresh_locked(seen_version, force=force)
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - the TTL expired: nothing to release
                log.warning("company=%s refresh lock expired before release", self.company_id)

    def _refresh_locked(self, seen_version: int, *, force: bool) -> str:
        """PostgreSQL holds the row (FOR UPDATE) through the token call (SPEC 3.6 step 2).
        SQLite holds nothing across it: a transaction that read before another connection
        committed could not write afterwards, so the new tokens are written by one
        `UPDATE … WHERE version = :seen` in a fresh transaction (step 4)."""
        with session_scope(self.app) as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            query = sa.select(QboToken).where(QboToken.company_id == self.company_id)
            if postgres:
                query = query.with_for_update()
            token = session.scalar(query.execution_options(populate_existing=True))
            if token is None:
                raise ReconnectNeeded("This company is not connected to QuickBooks.",
                                      hint="Connect it from Setup › QuickBooks Online.")
            fresh = token.access_expires_at - utcnow() > EARLY
            if token.version != seen_version or (fresh and not force):
                return unseal(token.access_token_enc)  # a sibling refreshed first
            sent, version = unseal(token.refresh_token_enc), token.version
            if not postgres:
                session.rollback()
            try:
                tokens = qbo_auth.refresh(self.app_credentials, sent)
            except errors.InvalidGrant:
                session.rollback()
                return self._after_invalid_grant(session, sent)
            if postgres:
                store(session, token, token.company, tokens)
            elif not _store_if(session, self.company_id, version, tokens):
                session.rollback()  # a sibling won: use its tokens
                return unseal(_token(session, self.company_id).access_token_enc)
            self.refreshes += 1
        log.info("company=%s access token refreshed", self.company_id)
        return tokens.access_token

    def _after_invalid_grant(self, session, sent: str) -> str:  # type: ignore[no-untyped-def]
        """Re-read once: another process may have rotated the token without our lock."""
        token = session.get(QboToken, self.company_id, populate_existing=True)
        stored = unseal(token.refresh_token_enc) if token else sent
        if token is not None and stored != sent:
            try:
                tokens = qbo_auth.refresh(self.app_credentials, stored)
            except errors.InvalidGrant:
                pass
            else:
                store(session, token, token.company, tokens)
                self.refreshes += 1
                return tokens.access_token
        company = session.get(Company, self.company_id)
        mark_reconnect_needed(session, company, "QuickBooks refused the refresh token "
                                                "(invalid_grant).")
        session.commit()
        raise ReconnectNeeded(
            f"QuickBooks connection for {company.qbo_name} needs to be reconnected by an admin.",
            hint="Open Setup › QuickBooks Online and click Reconnect.")


def _token(session, company_id: int) -> QboToken:  # type: ignore[no-untyped-def]
    token = session.get(QboToken, company_id)
    if token is None:
        raise ReconnectNeeded("This company is not connected to QuickBooks.",
                              hint="Connect it from Setup › QuickBooks Online.")
    return token


def mark_reconnect_needed(session, company: Company, reason: str) -> None:  # type: ignore[no-untyped-def]
    if company.status is CompanyStatus.RECONNECT_NEEDED:
        return
    before = {"status": company.status}
    company.status = CompanyStatus.RECONNECT_NEEDED
    company.last_error = reason[:500]
    audit.record(session, "connection.qbo.reconnect_needed", target=company,
                 company_id=company.id, actor="system:tokens", before=before,
                 after={"status": company.status})


def hard_expiry_soon(token: QboToken | None, days: int = 30) -> bool:
    return bool(token and token.refresh_hard_expires_at and
                token.refresh_hard_expires_at - utcnow() < timedelta(days=days))

