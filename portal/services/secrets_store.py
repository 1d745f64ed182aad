"""Encrypted credential columns: sealing with PORTAL_ENCRYPTION_KEY and the rotation registry."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

from portal import crypto
from portal.logs import remember_secret


def seal(value: str) -> str:
    """Encrypt a secret for storage; the log filter learns the value so it is never printed."""
    remember_secret(value)
    return crypto.encrypt(current_app.config["ENCRYPTION_KEY"], value)


def unseal(token: str) -> str:
    value = crypto.decrypt(current_app.config["ENCRYPTION_KEY"], token)
    remember_secret(value)
    return value


def _columns() -> list[tuple[type, str]]:
    from portal.models import CwConnection, QboApp, QboToken, SmtpSettings, WebhookConfig

    return [(CwConnection, "private_key_enc"), (QboApp, "client_secret_enc"),
            (QboToken, "access_token_enc"), (QboToken, "refresh_token_enc"),
            (SmtpSettings, "password_enc"), (WebhookConfig, "verifier_token_enc")]


def rotate_all(session: Session, keys: str) -> int:
    """Re-encrypt every stored secret with the first key; the caller commits."""
    count = 0
    for model, attribute in _columns():
        for row in session.query(model).yield_per(500):
            token = getattr(row, attribute)
            if token:
                setattr(row, attribute, crypto.rotate(keys, token))
                count += 1
    return count
