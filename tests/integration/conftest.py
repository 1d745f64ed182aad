"""Fixtures of the integration tests beyond tests/conftest.py."""

from __future__ import annotations

import pytest

from portal.sandbox.mailbox import Mailbox


@pytest.fixture()
def mailbox():  # type: ignore[no-untyped-def]
    """The local SMTP sink on loopback: what it receives is what customers would get."""
    box = Mailbox().start()
    yield box
    box.stop()
