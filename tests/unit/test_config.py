"""Configuration: secrets are required, *_FILE variants, types are checked."""

from __future__ import annotations

import pytest
from flask import Flask

from portal import config
from portal.config import ConfigError
from portal.crypto import generate_key

KEY = generate_key()


def _load(monkeypatch: pytest.MonkeyPatch, tmp_path, **env: str) -> Flask:
    for name in list(__import__("os").environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = Flask("portal", instance_path=str(tmp_path))
    config.load(app)
    return app


def test_missing_secret_key_names_the_variable_and_a_command(monkeypatch, tmp_path):
    with pytest.raises(ConfigError) as caught:
        _load(monkeypatch, tmp_path, PORTAL_ENCRYPTION_KEY=KEY)
    message = str(caught.value)
    assert message.startswith("PORTAL_SECRET_KEY is not set")
    assert "secrets.token_urlsafe" in message
    assert "\n" not in message


def test_missing_encryption_key_points_at_keys_generate(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_ENCRYPTION_KEY is not set.*portal keys generate"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40)


def test_invalid_encryption_key_is_refused(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="key 2 is not a Fernet key"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40,
              PORTAL_ENCRYPTION_KEY=f"{KEY},not-a-key")


def test_all_digit_secret_is_rejected_with_a_hint(monkeypatch, tmp_path):
    # from_prefixed_env JSON-decodes values, so 123456 arrives as an int.
    with pytest.raises(ConfigError, match="PORTAL_SECRET_KEY must be a string"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="1234567890", PORTAL_ENCRYPTION_KEY=KEY)


def test_file_variants_are_read(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file-secret\n")
    app = _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY_FILE=str(secret_file),
                PORTAL_ENCRYPTION_KEY=KEY)
    assert app.config["SECRET_KEY"] == "from-a-file-secret"


def test_variable_and_file_together_is_an_error(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("x" * 40)
    with pytest.raises(ConfigError, match="either PORTAL_SECRET_KEY or PORTAL_SECRET_KEY_FILE"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="y" * 40,
              PORTAL_SECRET_KEY_FILE=str(secret_file), PORTAL_ENCRYPTION_KEY=KEY)


def test_unreadable_file_is_named(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_SECRET_KEY_FILE names .* cannot be read"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY_FILE=str(tmp_path / "missing"),
              PORTAL_ENCRYPTION_KEY=KEY)


def test_numbers_are_checked(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_SESSION_IDLE_MINUTES must be a positive"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY,
              PORTAL_SESSION_IDLE_MINUTES="soon")


def test_unknown_environment_is_refused(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_ENV must be one of"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY,
              PORTAL_ENV="staging")


def test_defaults_select_sqlite_in_the_instance_folder(monkeypatch, tmp_path):
    app = _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY)
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path}/portal.db"
    assert app.config["REDIS_URL"] is None
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-portal_session"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_postgres_urls_use_psycopg3(monkeypatch, tmp_path):
    app = _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY,
                PORTAL_DATABASE_URL="postgres://u@db/portal")
    assert app.config["DATABASE_URL"] == "postgresql+psycopg://u@db/portal"


def test_demo_uses_a_plain_http_cookie(monkeypatch, tmp_path):
    app = _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY,
                PORTAL_ENV="demo")
    assert app.config["SESSION_COOKIE_NAME"] == "portal_session"
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_locale_is_checked_at_start(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_LOCALE: 'xx_QQ' is not a locale"):
        _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY,
              PORTAL_LOCALE="xx_QQ")
    app = _load(monkeypatch, tmp_path, PORTAL_SECRET_KEY="s" * 40, PORTAL_ENCRYPTION_KEY=KEY,
                PORTAL_LOCALE="de-CH")
    assert app.config["LOCALE"] == "de-CH"
