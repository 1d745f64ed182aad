"""How a payment run finds its changes (SPEC 10.2): CDC, and paged queries on
`Metadata.LastUpdatedTime` when CDC's answer holds 1,000 objects or the window is longer
than 30 days. The method shows on the run's page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from portal.models import PaymentStatus
from portal.models.types import utcnow
from portal.sandbox.quickbooks.util import meta_time
from tests.integration.payments import (cash_rows, items_of, qbo_invoice, qbo_payment, run_sync,
                                        shape_cw_invoice)

pytestmark = pytest.mark.integration
INVOICE = 87  # ConnectWise invoice 10087


def _fill_cdc(qbo_sandbox, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` payments changed just now that apply to nothing, ahead of any created later,
    so CDC's answer is full before it reaches them."""
    sandbox, _server = qbo_sandbox
    with sandbox.lock:
        realm = next(iter(sandbox.realms.values()))
        now = sandbox.clock.now()
        stamp = {"CreateTime": meta_time(now), "LastUpdatedTime": meta_time(now)}
        for _n in range(count):
            pid = realm.new_id()
            realm.put("Payment", {"Id": pid, "SyncToken": "0", "domain": "QBO",
                                  "TxnDate": "2026-11-01", "TotalAmt": 0, "UnappliedAmt": 0,
                                  "CustomerRef": {"value": "1"}, "Line": [],
                                  "MetaData": dict(stamp)}, now)


def _page(client, batch_id: int) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/payments/batches/{batch_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_full_cdc_answer_falls_back_to_paged_queries(app, client, connected, cw_sandbox,
                                                       qbo_sandbox):
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)
    _fill_cdc(qbo_sandbox, 1000)
    # CDC lists the 1,000 fillers and stops: this payment and the invoice it changed are
    # only found by the queries
    qbo_payment(app, "2026-11-03", ("Invoice", invoice["Id"], "300.00"))
    batch_id = run_sync(app, since=since)
    batch, items = items_of(app, batch_id)
    assert batch.options["method"] == "query", batch.options
    assert batch.options["found_by"] == "Changes found by queries (CDC answered 1,000 objects)"
    assert items["10087"].status is PaymentStatus.DONE, items["10087"].warnings
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-03")]
    assert "Changes found by queries (CDC answered 1,000 objects)" in _page(client, batch_id)


def test_a_window_longer_than_30_days_uses_paged_queries(app, client, connected, cw_sandbox,
                                                         qbo_sandbox):
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    qbo_payment(app, "2026-11-04", ("Invoice", invoice["Id"], "250.00"))
    batch_id = run_sync(app, since=utcnow() - timedelta(days=40))
    batch, items = items_of(app, batch_id)
    assert batch.options["backdated"] and batch.options["method"] == "query"
    assert batch.options["found_by"] == \
        "Changes found by queries (the window is longer than 30 days)"
    assert cash_rows(cw_sandbox, INVOICE) == [(D("250.00"), "2026-11-04")]
    assert "Changes found by queries (the window is longer than 30 days)" in \
        _page(client, batch_id)


def test_a_short_window_is_found_by_cdc(app, client, connected, cw_sandbox, qbo_sandbox):
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    since = utcnow() - timedelta(minutes=1)
    _fill_cdc(qbo_sandbox, 10)
    qbo_payment(app, "2026-11-03", ("Invoice", invoice["Id"], "300.00"))
    batch_id = run_sync(app, since=since)
    batch, _items = items_of(app, batch_id)
    assert batch.options["found_by"] == "Changes found by CDC"
    assert cash_rows(cw_sandbox, INVOICE) == [(D("300.00"), "2026-11-03")]
    assert "Changes found by CDC" in _page(client, batch_id)
