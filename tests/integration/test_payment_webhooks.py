"""The whole webhook path: the QuickBooks sandbox signs and POSTs its notifications (both
payload formats) to the portal over real HTTP; the tick starts the sync; a void of a
document portal posted raises an attention item (SPEC 10.3)."""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AttentionItem, Batch, BatchType, ItemState, WebhookEvent
from portal.services import scheduler
from tests.browser.conftest import live_server  # noqa: F401 - the app over real HTTP
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, submit
from tests.integration.payments import cash_rows, qbo, qbo_delete, qbo_payment, qbo_void
from tests.integration.test_invoice_batches import _blocked_then_clean, ready  # noqa: F401
from tests.integration.test_payment_pages import TOKEN, _enable

pytestmark = pytest.mark.integration


def _events(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return [(e.entity, e.entity_id, e.operation) for e in session.scalars(
            sa.select(WebhookEvent).order_by(WebhookEvent.id))]


def _wait_for(predicate, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("payload_format", ["cloudevents", "legacy"])
def test_sandbox_webhooks_sync_a_portal_invoice_and_flag_its_void(
        app, client, ready, qbo_sandbox, cw_sandbox, live_server,  # noqa: F811
        payload_format):
    _qbo, server = qbo_sandbox
    number = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[0]
    batch_id = submit(app, {number})
    run_jobs(app)
    _batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE, item.message
    _enable(client, debounce=0)
    requests.post(f"{server.url}/_sim/webhooks", timeout=5, json={
        "url": f"{live_server}/webhooks/qbo", "verifier_token": TOKEN,
        "format": payload_format, "entities": "Invoice,Payment,CreditMemo"})
    try:
        payment = qbo_payment(app, "2026-11-20", ("Invoice", item.qbo_id, "10.00"))
        _wait_for(lambda: ("Payment", payment["Id"], "Create") in _events(app),
                  "the payment's notification never arrived")
        scheduler.tick(app)
        run_jobs(app)
        with session_scope(app) as session:
            synced = session.scalars(sa.select(Batch).where(
                Batch.type == BatchType.PAYMENT)).all()
            assert [b.trigger for b in synced] == ["webhook"]
        assert cash_rows(cw_sandbox, item.cw_id) == [(D("10.00"), "2026-11-20")]

        qbo_delete(app, "Payment", payment)
        qbo_void(app, "Invoice", {"Id": item.qbo_id})
        _wait_for(lambda: ("Invoice", item.qbo_id, "Void") in _events(app),
                  "the void's notification never arrived")
        scheduler.tick(app)
        with session_scope(app) as session:
            [alert] = session.scalars(sa.select(AttentionItem)).all()
            assert alert.message == (f"QuickBooks invoice {item.qbo_doc_number} was voided "
                                     "outside portal; it is still batched in ConnectWise. "
                                     "Unbatch it or restore it.")
            assert alert.kind == "qbo_document" and alert.link == f"/batches/{item.batch_id}"
        card = client.get("/dashboard/attention",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
        assert f'<a href="/batches/{item.batch_id}">Open</a>' in card
        assert alert.message in client.get("/").get_data(as_text=True) or \
            alert.message in client.get("/dashboard/checklist",
                                        headers={"HX-Request": "true"}).get_data(as_text=True)
        run_jobs(app)  # the deletion's sync
        assert cash_rows(cw_sandbox, item.cw_id) == []
    finally:
        requests.delete(f"{server.url}/_sim/webhooks", timeout=5)
    assert qbo(app, lambda c: c.read("Invoice", item.qbo_id))["PrivateNote"] == "Voided"


def test_the_demo_connects_the_sandbox_to_the_receiver(app, connected, qbo_sandbox,
                                                      live_server):
    from portal.services.payments import webhooks

    sandbox, _server = qbo_sandbox
    with app.app_context(), session_scope(app) as session:
        webhooks.connect_demo(session, sandbox, f"{live_server}/webhooks/qbo", None)
        session.commit()
    try:
        invoice = qbo(app, lambda c: c.read("Invoice", "101"))
        payment = qbo_payment(app, "2026-11-21", ("Invoice", invoice["Id"], "1.00"))
        _wait_for(lambda: ("Payment", payment["Id"], "Create") in _events(app),
                  "the demo's sandbox never notified the receiver")
    finally:
        sandbox.webhooks.configure(None, None)
