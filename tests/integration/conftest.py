"""Fixtures of the integration tests beyond tests/conftest.py."""

from __future__ import annotations

from tests.integration.mail import mailbox  # noqa: F401 - the SMTP sink fixture
