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


def test_the_batch_list_and_its_csv_show_what_a_run_applied(app, client, connected,
                                                            cw_sandbox, qbo_sandbox):
    import csv
    import io

    from tests.integration.payments import qbo_edit_payment, save_settings

    save_settings(app, payment_sync_overlap_minutes=0)
    run_sync(app)  # the demo data's payments: later runs start after them
    shape_cw_invoice(cw_sandbox, INVOICE, "1000.00")
    invoice = qbo_invoice(app, "10087", "1000.00")
    payment = qbo_payment(app, "2026-11-03", ("Invoice", invoice["Id"], "300.00"))
    first = run_sync(app)
    qbo_edit_payment(app, payment, ("Invoice", invoice["Id"], "250.00"))
    second = run_sync(app)
    third = run_sync(app)  # nothing changed: nothing applied
    assert items_of(app, first)[0].totals == {"USD": "300.00"}
    assert items_of(app, second)[0].totals == {"USD": "-50.00"}
    assert set(items_of(app, third)[0].totals.values()) <= {"0.00"}  # nothing applied

    listing = client.get("/batches/").get_data(as_text=True)
    assert "$300.00 of $300.00" in listing and "-$50.00 of -$50.00" in listing
    assert "Applied in ConnectWise</dt><dd" in _page(client, first) and \
        "$300.00" in _page(client, first)
    rows = {r["batch"]: r for r in csv.DictReader(io.StringIO(
        client.get("/batches/export.csv").get_data(as_text=True)))}
    assert (rows[str(first)]["currency"], rows[str(first)]["posted_amount"]) == ("USD", "300.00")
    assert rows[str(second)]["posted_amount"] == "-50.00"
    assert rows[str(third)]["posted_amount"] in ("", "0.00")
