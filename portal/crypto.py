"""Encryption of stored credentials with MultiFernet, so keys can be rotated."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def _split(keys: str) -> list[str]:
    return [k.strip() for k in keys.split(",") if k.strip()]


def check_keys(keys: str) -> None:
    """Raise ValueError unless `keys` is a comma-separated list of Fernet keys."""
    parts = _split(keys)
    if not parts:
        raise ValueError("it holds no key.")
    for position, key in enumerate(parts, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(f"key {position} is not a Fernet key (32 url-safe base64 "
                             "bytes).") from None


def fernet(keys: str) -> MultiFernet:
    """The first key encrypts; every key decrypts (the rotation window)."""
    return MultiFernet([Fernet(k) for k in _split(keys)])


def generate_key() -> str:
    return Fernet.generate_key().decode()


def encrypt(keys: str, plaintext: str) -> str:
    return fernet(keys).encrypt(plaintext.encode()).decode()


def decrypt(keys: str, token: str) -> str:
    """Raise ValueError when no configured key opens the token."""
    try:
        return fernet(keys).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored secret cannot be decrypted with PORTAL_ENCRYPTION_KEY; "
                         "was the key changed without `portal keys rotate`?") from None


def rotate(keys: str, token: str) -> str:
    """Re-encrypt with the first key."""
    return fernet(keys).rotate(token.encode()).decode()
