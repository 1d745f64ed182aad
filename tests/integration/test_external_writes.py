"""perform_once (SPEC 6.5): a write with no natural key happens at most once, even when
its answer is lost, and the reconciler of the scheduler tick settles what a crash left."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.integrations import errors
from portal.models import ExternalWrite, WriteStatus
from portal.models.types import utcnow
from portal.services import cw_payments, scheduler, writes
from tests.integration.batching import clear_faults, fault

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 20)


def _open_invoice(cw_sandbox) -> int:  # type: ignore[no-untyped-def]
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return next(i["id"] for i in sandbox.store.tables["invoices"].values()
                    if i.get("type") != "CreditMemo" and i["total"] > 100
                    and not i.get("payments"))


def _payments(cw_sandbox, invoice_id: int) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return [dict(p) for p in sandbox.store.tables["payments"].values()
                if p["invoice"]["id"] == invoice_id]


def _pay(app, invoice_id: int, key: str, amount: str = "25.00"):  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        return cw_payments.create(session, clients.connectwise(session), invoice_id=invoice_id,
                                  amount=Decimal(amount), day=DAY, key=key)


def _row(app, key: str) -> ExternalWrite:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        row = session.scalar(sa.select(ExternalWrite).where(ExternalWrite.key == key))
        session.expunge(row)
        return row


def test_a_write_happens_once_per_key(app, connected, cw_sandbox):
    invoice_id = _open_invoice(cw_sandbox)
    first = _pay(app, invoice_id, "pay:1")
    again = _pay(app, invoice_id, "pay:1")
    assert first.sent and not again.sent and again.result["id"] == first.result["id"]
    assert _row(app, "pay:1").status is WriteStatus.DONE
    assert len(_payments(cw_sandbox, invoice_id)) == 1


def test_a_lost_answer_is_looked_up_before_anything_is_sent_again(app, connected, cw_sandbox):
    _sandbox, server = cw_sandbox
    invoice_id = _open_invoice(cw_sandbox)
    fault(server, kind="drop_after_commit", method="POST",
          path_regex=f"/finance/invoices/{invoice_id}/payments$", count=1)
    with pytest.raises(errors.Transient):
        _pay(app, invoice_id, "pay:lost")
    assert _row(app, "pay:lost").status is WriteStatus.SENDING  # the intent was kept
    clear_faults(server)
    again = _pay(app, invoice_id, "pay:lost")
    assert not again.sent and _row(app, "pay:lost").status is WriteStatus.DONE
    assert len(_payments(cw_sandbox, invoice_id)) == 1  # found, not written twice


def test_the_reconciler_settles_what_a_crash_left_open(app, connected, cw_sandbox):
    _sandbox, server = cw_sandbox
    invoice_id = _open_invoice(cw_sandbox)
    fault(server, kind="drop_after_commit", method="POST",
          path_regex=f"/finance/invoices/{invoice_id}/payments$", count=1)
    with pytest.raises(errors.Transient):
        _pay(app, invoice_id, "pay:crash")
    clear_faults(server)
    with session_scope(app) as session:  # a while later, nobody working on it
        session.execute(sa.update(ExternalWrite).values(
            updated_at=utcnow() - writes.SETTLE_AFTER - timedelta(seconds=1)))
    report = scheduler.tick(app)
    assert report.settled_writes == 1
    row = _row(app, "pay:crash")
    assert row.status is WriteStatus.DONE and row.remote_id
    assert len(_payments(cw_sandbox, invoice_id)) == 1


def test_a_refused_write_fails_and_may_be_sent_again(app, connected, cw_sandbox):
    invoice_id = _open_invoice(cw_sandbox)
    with pytest.raises(errors.Invalid):
        _pay(app, invoice_id, "pay:big", amount="999999.00")  # more than the invoice
    assert _row(app, "pay:big").status is WriteStatus.FAILED
    done = _pay(app, invoice_id, "pay:big", amount="10.00")  # the caller fixed the amount
    assert done.sent and _row(app, "pay:big").attempts == 2
