"""Helpers for email tests: the local SMTP sink, the SMTP settings pointing at it, and a few
invoices posted by a real batch."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import BatchItem, Company, ItemState
from portal.sandbox.mailbox import Mailbox
from portal.services import company_settings, mailer
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, submit


@pytest.fixture()
def mailbox():  # type: ignore[no-untyped-def]
    """The local SMTP sink on loopback: what it receives is what customers would get."""
    box = Mailbox().start()
    yield box
    box.stop()


def use_sink(app: Any, box: Mailbox) -> None:
    with app.test_request_context(), session_scope(app) as session:
        errors = mailer.save(session, mailer.SmtpForm(
            host=box.host, port=str(box.port), security="none", username="", password="",
            timeout="5", from_address="billing@northwind.example"), None)
        assert not errors, errors


def save_tab(app: Any, company_id: int, tab: str, **values: Any) -> None:
    with app.test_request_context(), session_scope(app) as session:
        saved = company_settings.save_tab(session, session.get(Company, company_id), tab,
                                          values, None)
        assert not isinstance(saved, list), saved


def post_clean_invoices(app: Any, qbo_sandbox: Any, count: int = 3) -> list[BatchItem]:
    """Post `count` invoices that pass pre-flight (a blocked run first finds them)."""
    batch_id = submit(app)
    run_jobs(app)
    _batch, items = batch_of(app, batch_id)
    clean = sorted(i.cw_number for i in items if i.state is ItemState.SKIPPED
                   and i.cw_kind != "CreditMemo")[:count]
    assert len(clean) == count
    batch_id = submit(app, set(clean))
    run_jobs(app)
    _batch, items = batch_of(app, batch_id)
    assert {i.state for i in items} == {ItemState.DONE}, [(i.cw_number, i.message)
                                                          for i in items]
    return items


def email_rows(app: Any) -> list[Any]:
    from portal.models import EmailLog

    with session_scope(app) as session:
        rows = list(session.scalars(sa.select(EmailLog).order_by(EmailLog.id)))
        session.expunge_all()
        return rows
