"""Settings: defaults, then *_FILE variants, then PORTAL_* variables, then validate()."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

ENVIRONMENTS = ("production", "development", "demo")

DEFAULTS: dict[str, Any] = {
    "ENV": "production",
    "DATABASE_URL": None,
    "REDIS_URL": None,
    "SECRET_KEY": None,
    "ENCRYPTION_KEY": None,
    "BASE_URL": None,
    "PROXY_FIX": False,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
    "RUN_STALE_SECONDS": 60,
    "TICK_SECONDS": 30,
    "QBO_BATCH_SIZE": 30,
    "QBO_MAX_RPM": 500,
    "QBO_MAX_BATCH_RPM": 40,
    "QBO_MAX_CONCURRENT": 10,
    "CW_MAX_CONCURRENT": 4,
    "LOOKUP_DELAY_SECONDS": 5,
    "CLEAR_CHUNK_SIZE": 200,  # clear_chunk_size: records per CLEAR accounting batch
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_MAX_HOURS": 12,
    "LOGIN_LIMIT_ACCOUNT": "10/15minutes",
    "LOGIN_LIMIT_IP": "30/15minutes",
    "PASSWORD_HASH_TIME_COST": 3,
    "PASSWORD_HASH_MEMORY_KIB": 65536,
    "PASSWORD_HASH_PARALLELISM": 4,
    "WORKER_QUEUES": "default,sync,email",
    "QBO_CLIENT_ID": None,
    "QBO_CLIENT_SECRET": None,
    "LOCALE": None,  # amounts' format; None: the browser's Accept-Language (formatting.py)
    # Flask's own settings
    "WTF_CSRF_TIME_LIMIT": None,
    "WTF_CSRF_HEADERS": ["X-CSRFToken"],
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
}

# name, how to make one: printed when the variable is missing.
SECRETS = {
    "SECRET_KEY": 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"',
    "ENCRYPTION_KEY": "portal keys generate",
}

INTS = ("RUN_STALE_SECONDS", "TICK_SECONDS", "CW_MAX_CONCURRENT", "SESSION_IDLE_MINUTES", "SESSION_MAX_HOURS", "QBO_MAX_RPM",
        "QBO_MAX_BATCH_RPM", "QBO_MAX_CONCURRENT", "CLEAR_CHUNK_SIZE",
        "PASSWORD_HASH_TIME_COST", "PASSWORD_HASH_MEMORY_KIB", "PASSWORD_HASH_PARALLELISM")


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the variable and the fix."""


def load(app: Flask, test_config: Mapping[str, Any] | None = None) -> None:
    """Fill app.config and check it. Raises ConfigError with one actionable line."""
    app.config.from_mapping(DEFAULTS)
    if test_config is not None:
        app.config.update({"ENV": "development", "TESTING": True})
        app.config.update(test_config)
    else:
        app.config.update(_read_files(os.environ))
        app.config.from_prefixed_env("PORTAL")
    validate(app.config)
    _derive(app)


def _read_files(environ: Mapping[str, str]) -> dict[str, str]:
    """PORTAL_X_FILE holds the path of a file with X's value (Docker secrets)."""
    values: dict[str, str] = {}
    for name, path in environ.items():
        if not (name.startswith("PORTAL_") and name.endswith("_FILE")):
            continue
        key = name[len("PORTAL_"):-len("_FILE")]
        if f"PORTAL_{key}" in environ:
            raise ConfigError(f"Set either PORTAL_{key} or {name}, not both.")
        try:
            with open(path, encoding="utf-8") as handle:
                values[key] = handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"{name} names {path!r}, which cannot be read: "
                              f"{exc.strerror}.") from None
    return values


def validate(config: Mapping[str, Any] | Any) -> None:
    """Check presence and types; from_prefixed_env JSON-decodes, so an all-digit
    secret arrives as an int and `true` as a bool."""
    env = config.get("ENV")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}; got {env!r}.")
    for name, how in SECRETS.items():
        value = config.get(name)
        if value in (None, ""):
            raise ConfigError(f"PORTAL_{name} is not set; make one with: {how}")
        if not isinstance(value, str):
            raise ConfigError(f"PORTAL_{name} must be a string; quote it or make a new one "
                              f"with: {how}")
    for name in INTS:
        value = config.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"PORTAL_{name} must be a positive whole number; got {value!r}.")
    size = config.get("QBO_BATCH_SIZE")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 30:
        raise ConfigError(f"PORTAL_QBO_BATCH_SIZE must be a whole number from 1 to 30 "
                          f"(QuickBooks takes at most 30 operations per /batch); got {size!r}.")
    if config.get("QBO_MAX_CONCURRENT", 0) > 10:
        raise ConfigError("PORTAL_QBO_MAX_CONCURRENT must be at most 10 (QuickBooks allows 10 "
                          f"requests in flight per company); got {config['QBO_MAX_CONCURRENT']}.")
    delay = config.get("LOOKUP_DELAY_SECONDS")
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 60:
        raise ConfigError("PORTAL_LOOKUP_DELAY_SECONDS must be a number of seconds from 0 to "
                          f"60; got {delay!r}.")
    for name in ("DATABASE_URL", "REDIS_URL", "BASE_URL"):
        value = config.get(name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"PORTAL_{name} must be a URL string; got {value!r}.")
    locale = config.get("LOCALE")
    if locale is not None:
        from portal.formatting import parse_locale

        try:
            parse_locale(str(locale))
        except ValueError as exc:
            raise ConfigError(f"PORTAL_LOCALE: {exc}") from None
    from portal.crypto import check_keys

    try:
        check_keys(config["ENCRYPTION_KEY"])
    except ValueError as exc:
        raise ConfigError(f"PORTAL_ENCRYPTION_KEY is not valid: {exc} "
                          f"Make one with: {SECRETS['ENCRYPTION_KEY']}") from None


def _derive(app: Flask) -> None:
    """Settings computed from others: cookie names and flags, the database URL."""
    config = app.config
    plain_http = config["ENV"] in ("demo", "development") or config.get("TESTING")
    config["SESSION_COOKIE_SECURE"] = not plain_http
    config["SESSION_COOKIE_NAME"] = "portal_session" if plain_http else "__Host-portal_session"
    config["REMEMBER_COOKIE_SECURE"] = not plain_http
    config["DATABASE_URL"] = database_url(config.get("DATABASE_URL"), app.instance_path)


def database_url(url: str | None, instance_path: str) -> str:
    """SQLite in the instance folder by default; postgres:// names psycopg 3."""
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "portal.db")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
