"""The payment sync screens (SPEC 10.1) and the webhook receiver (SPEC 10.3), over HTTP with
a real worker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import (AuditEvent, Batch, BatchType, Notification, PaymentSyncState,
                           WebhookConfig, WebhookEvent)
from portal.models.types import utcnow
from portal.services import scheduler
from tests.conftest import run_jobs
from tests.integration.payments import (cash_rows, qbo_invoice, qbo_payment, run_sync,
                                        shape_cw_invoice)

pytestmark = pytest.mark.integration
TOKEN = "verifier-token-for-tests-0001"


def _batches(app) -> list[int]:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return list(session.scalars(sa.select(Batch.id).where(Batch.type == BatchType.PAYMENT)
                                    .order_by(Batch.id)))


def test_the_sync_page_starts_from_the_cursor_and_confirms_a_backdated_run(
        app, client, connected, cw_sandbox, qbo_sandbox):
    page = client.get(f"/payments/{connected.id}/sync")
    assert page.status_code == 200
    since = re.search(r'id="payment-since" name="since" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    token = client.csrf_token(f"/payments/{connected.id}/sync")
    started = client.post(f"/payments/{connected.id}/sync",
                          data={"since": since, "csrf_token": token})
    assert started.status_code == 303, started.get_data(as_text=True)
    [first] = _batches(app)
    assert started.headers["Location"].endswith(f"/payments/batches/{first}")
    run_jobs(app)
    shown = client.get(f"/payments/batches/{first}").get_data(as_text=True)
    assert "Finished" in shown and "Download the invoices as CSV" in shown
    assert client.get(f"/batches/{first}").headers["Location"].endswith(
        f"/payments/batches/{first}")
    progress = client.get(f"/payments/batches/{first}/progress", headers={"HX-Request": "true"})
    assert progress.status_code == 286 and progress.headers["HX-Trigger"] == "run-finished"
    with session_scope(app) as session:
        cursor = session.get(PaymentSyncState, connected.id).cursor_at
    assert cursor is not None

    # the cursor now preloads the form; an earlier time asks for confirmation first
    page = client.get(f"/payments/{connected.id}/sync").get_data(as_text=True)
    assert f'value="{since}"' not in page
    earlier = (utcnow() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    asked = client.post(f"/payments/{connected.id}/sync",
                        data={"since": earlier, "csrf_token": token})
    text = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Backdated run." in text
    assert "Every invoice with payment activity in this range is rebuilt in ConnectWise; " \
           "this may take a while." in text
    assert _batches(app) == [first]  # nothing started yet
    confirmed = client.post(f"/payments/{connected.id}/sync",
                            data={"since": earlier, "confirmed": "1", "csrf_token": token})
    assert confirmed.status_code == 303
    run_jobs(app)
    with session_scope(app) as session:
        assert session.get(PaymentSyncState, connected.id).cursor_at >= cursor  # never back
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "payments.backdated_run")) == 1

    # a bad date is a 422 naming the field; the re-run link only shows a confirmation
    bad = client.post(f"/payments/{connected.id}/sync", data={"since": "soon",
                                                               "csrf_token": token})
    assert bad.status_code == 422 and "Sync payments changed since" in bad.get_data(as_text=True)
    rerun = client.get(f"/payments/{connected.id}/rerun?since={earlier}&batch={first}")
    assert rerun.status_code == 200 and f'value="rerun-of:{first}"' in rerun.get_data(
        as_text=True)
    assert len(_batches(app)) == 2


def test_a_busy_company_refuses_a_second_sync(app, client, connected, cw_sandbox, qbo_sandbox):
    token = client.csrf_token(f"/payments/{connected.id}/sync")
    page = client.get(f"/payments/{connected.id}/sync").get_data(as_text=True)
    since = re.search(r'name="since" value="([^"]+)"', page).group(1)
    assert client.post(f"/payments/{connected.id}/sync",
                       data={"since": since, "csrf_token": token}).status_code == 303
    again = client.post(f"/payments/{connected.id}/sync", data={"since": since,
                                                                 "csrf_token": token})
    assert again.status_code == 409 and "is busy with batch #" in again.get_data(as_text=True)
    run_jobs(app)


def _one_paid_invoice(app, cw_sandbox) -> int:  # type: ignore[no-untyped-def]
    """Invoice 10087 of 100.00 with a payment of 60.00 in QuickBooks, synced."""
    shape_cw_invoice(cw_sandbox, 87, "100.00")
    invoice = qbo_invoice(app, "10087", "100.00")
    qbo_payment(app, "2026-10-05", ("Invoice", invoice["Id"], "60.00"))
    return run_sync(app, since=utcnow() - timedelta(minutes=1))


def test_the_batch_csv_lists_each_invoice(app, client, connected, cw_sandbox, qbo_sandbox):
    batch_id = _one_paid_invoice(app, cw_sandbox)
    body = client.get(f"/payments/batches/{batch_id}.csv").get_data(as_text=True)
    header, *rows = body.strip().splitlines()
    assert header.startswith("qbo_invoice_id,qbo_doc_number,cw_invoice_id")
    row = next(r for r in rows if ",10087," in r)
    assert ",60.00,0.00,40.00," in row.replace('"', "") and "done" in row


# ---- webhooks -------------------------------------------------------------------------------

def _sign(body: bytes, token: str = TOKEN) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def _enable(client, debounce: int = 0) -> None:  # type: ignore[no-untyped-def]
    token = client.csrf_token("/payments/webhooks")
    saved = client.post("/payments/webhooks", data={
        "enabled": "y", "verifier_token": TOKEN, "debounce_seconds": str(debounce),
        "csrf_token": token})
    assert saved.status_code == 200 and "Saved." in saved.get_data(as_text=True)


def test_webhook_settings_keep_the_token_secret(app, client, connected):
    token = client.csrf_token("/payments/webhooks")
    refused = client.post("/payments/webhooks", data={"enabled": "y", "debounce_seconds": "60",
                                                       "csrf_token": token})
    assert refused.status_code == 422 and "verifier token" in refused.get_data(as_text=True)
    _enable(client, 60)
    page = client.get("/payments/webhooks").get_data(as_text=True)
    assert TOKEN not in page and "A token is stored" in page
    assert "/webhooks/qbo" in page
    with session_scope(app) as session:
        row = session.get(WebhookConfig, 1)
        assert row.enabled and TOKEN not in row.verifier_token_enc
        logged = session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "settings.webhooks.update")).all()
        assert logged and all(TOKEN not in json.dumps(e.after) for e in logged)


def test_a_signed_webhook_starts_a_sync_after_the_debounce(
        app, client, connected, cw_sandbox, qbo_sandbox):
    _enable(client, debounce=0)
    shape_cw_invoice(cw_sandbox, 87, "100.00")
    invoice = qbo_invoice(app, "10087", "100.00")
    qbo_payment(app, "2026-10-05", ("Invoice", invoice["Id"], "40.00"))
    with session_scope(app) as session:  # the cursor is before the payment
        state = PaymentSyncState(company_id=connected.id, retry_set=[],
                                 cursor_at=utcnow() - timedelta(minutes=2))
        session.add(state)
        session.commit()
    body = json.dumps([{"specversion": "1.0", "id": "e1", "source": "intuit.x",
                        "type": "qbo.payment.created.v1", "time": "2026-12-02T10:00:00Z",
                        "intuitentityid": "999", "intuitaccountid": connected.realm_id,
                        "data": {}}]).encode()
    answer = client.post("/webhooks/qbo", data=body, headers={
        "intuit-signature": _sign(body), "Content-Type": "application/json"})
    assert answer.status_code == 200
    assert client.post("/webhooks/qbo", data=body, headers={   # a replay is stored once
        "intuit-signature": _sign(body), "Content-Type": "application/json"}).status_code == 200
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 1
        assert session.get(PaymentSyncState, connected.id).requested_at is not None
    assert _batches(app) == []  # the receiver did nothing inline
    scheduler.tick(app)
    [batch_id] = _batches(app)
    with session_scope(app) as session:
        assert session.get(Batch, batch_id).trigger == "webhook"
        assert session.get(PaymentSyncState, connected.id).requested_at is None
    run_jobs(app)
    assert cash_rows(cw_sandbox, 87)[0][0].to_eng_string() == "40.00"


def test_a_webhook_waits_for_the_debounce(app, client, connected):
    _enable(client, debounce=3600)
    body = json.dumps({"eventNotifications": [{"realmId": connected.realm_id, "dataChangeEvent": {
        "entities": [{"id": "5", "operation": "Update", "name": "Invoice",
                      "lastUpdated": "2026-12-02T10:00:00.000Z"}]}}]}).encode()
    assert client.post("/webhooks/qbo", data=body,
                       headers={"intuit-signature": _sign(body)}).status_code == 200
    scheduler.tick(app)
    assert _batches(app) == []


def test_a_bad_signature_is_401_and_audited_and_an_oversized_body_is_refused(
        app, client, connected):
    _enable(client)
    body = b'[{"type": "qbo.payment.created.v1"}]'
    for _ in range(3):
        answer = client.post("/webhooks/qbo", data=body,
                             headers={"intuit-signature": _sign(body, "wrong-token")})
        assert answer.status_code == 401
    assert client.post("/webhooks/qbo", data=body).status_code == 401  # no signature
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "webhook.signature_mismatch")) == 1  # rate-limited
        assert session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0
        [told] = session.scalars(sa.select(Notification).where(
            Notification.kind == "webhook_signature")).all()  # admins are told once
        assert "/payments/webhooks" in (told.link or "")
    big = b"[" + b" " * (1024 * 1024) + b"]"
    assert client.post("/webhooks/qbo", data=big,
                       headers={"intuit-signature": _sign(big)}).status_code == 413


def test_the_receiver_is_off_until_enabled(app, client, connected):
    body = b"[]"
    assert client.post("/webhooks/qbo", data=body,
                       headers={"intuit-signature": _sign(body)}).status_code == 404


def test_the_batch_page_and_its_fragments(app, client, connected, cw_sandbox, qbo_sandbox):
    batch_id = _one_paid_invoice(app, cw_sandbox)
    page = client.get(f"/payments/batches/{batch_id}").get_data(as_text=True)
    assert f'id="payment-batch-{batch_id}-items"' in page and "<html" in page
    fragment = client.get(f"/payments/batches/{batch_id}/items?status=done",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith(
        f'<section class="card" id="payment-batch-{batch_id}-items"')
    assert "10087" in fragment and "payment 60.00 dated 2026-10-05" in fragment
    empty = client.get(f"/payments/batches/{batch_id}/items?status=pending",
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No invoice of this batch has this status." in empty
    assert client.get("/payments/").headers["Location"].endswith(f"/payments/{connected.id}/sync")


def test_the_receiver_answers_at_once_and_limits_each_address(app, client, connected):
    import time

    _enable(client)
    body = json.dumps([{"specversion": "1.0", "id": f"e{n}", "source": "intuit.x",
                        "type": "qbo.invoice.updated.v1", "time": f"2026-12-02T10:00:{n:02d}Z",
                        "intuitentityid": str(n), "intuitaccountid": connected.realm_id,
                        "data": {}} for n in range(30)]).encode()
    started = time.monotonic()
    assert client.post("/webhooks/qbo", data=body,
                       headers={"intuit-signature": _sign(body)}).status_code == 200
    assert time.monotonic() - started < 1.0
    codes = [client.post("/webhooks/qbo", data=b"[]",
                         headers={"intuit-signature": _sign(b"[]")}).status_code
             for _ in range(60)]
    assert codes[:59] == [200] * 59 and codes[59] == 429
