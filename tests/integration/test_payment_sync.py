"""Payment sync end to end (SPEC 10): QuickBooks payments written through the real client,
a real RQ worker running the sync, ConnectWise checked in its sandbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.models import BatchStatus, PaymentStatus
from portal.models.types import utcnow
from tests.integration.payments import (cash_rows, credit_rows, cw_invoice, items_of,
                                        qbo_credit_memo, qbo_delete, qbo_edit_payment,
                                        qbo_invoice, qbo_payment, run_sync, shape_cw_invoice)

pytestmark = pytest.mark.integration
INVOICE, MEMO = 87, 142  # ConnectWise invoice 10087 and credit memo 10142 (one customer)
D = Decimal


def _paid(cw_sandbox, invoice_id: int) -> tuple[D, D, D]:  # type: ignore[no-untyped-def]
    inv = cw_invoice(cw_sandbox, invoice_id)
    return D(str(inv["payments"])), D(str(inv["credits"])), D(str(inv["balance"]))


def test_partial_payments_converge_step_by_step(app, connected, cw_sandbox, qbo_sandbox):
    """SPEC 10.6's regression case: one cash row that follows QuickBooks, never two."""
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    shape_cw_invoice(cw_sandbox, MEMO, "-100.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)

    p1 = qbo_payment(app, "2026-11-01", ("Invoice", invoice["Id"], "300.00"))
    batch_id = run_sync(app, since=since)
    batch, items = items_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].warnings
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-01")]

    p2 = qbo_payment(app, "2026-11-05", ("Invoice", invoice["Id"], "200.00"))
    run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("500.00"), "2026-11-05")]

    qbo_edit_payment(app, p1, ("Invoice", invoice["Id"], "250.00"))
    run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("450.00"), "2026-11-05")]

    qbo_delete(app, "Payment", p2)
    run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("250.00"), "2026-11-01")]

    memo = qbo_credit_memo(app, "10142", "100.00")
    qbo_payment(app, "2026-11-07", ("Invoice", invoice["Id"], "100.00"),
                ("CreditMemo", memo["Id"], "100.00"))
    batch_id = run_sync(app)
    assert cash_rows(cw_sandbox, INVOICE) == [(D("250.00"), "2026-11-01")]
    assert credit_rows(cw_sandbox, INVOICE) == [(MEMO, D("100.00"))]
    cash, credits, balance = _paid(cw_sandbox, INVOICE)
    assert (cash, credits, balance) == (D("250.00"), D("100.00"), D("650.00"))
    _batch, items = items_of(app, batch_id)
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].warnings
    assert items["10087"].after["balance"] == "650.00"

    # convergence: a second run on unchanged data writes nothing
    before = cash_rows(cw_sandbox, INVOICE), credit_rows(cw_sandbox, INVOICE)
    batch_id = run_sync(app, since=since)
    _batch, items = items_of(app, batch_id)
    assert items["10087"].actions == [] and items["10087"].status is PaymentStatus.DONE
    assert (cash_rows(cw_sandbox, INVOICE), credit_rows(cw_sandbox, INVOICE)) == before
