"""Encrypted credential columns: the registry `portal keys rotate` walks."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal import crypto

# (model, attribute) pairs holding Fernet tokens; the connection features register theirs.
ENCRYPTED_COLUMNS: list[tuple[type, str]] = []


def rotate_all(session: Session, keys: str) -> int:
    """Re-encrypt every stored secret with the first key; the caller commits."""
    count = 0
    for model, attribute in ENCRYPTED_COLUMNS:
        for row in session.query(model).yield_per(500):
            token = getattr(row, attribute)
            if token:
                setattr(row, attribute, crypto.rotate(keys, token))
                count += 1
    return count
