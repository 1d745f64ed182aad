"""QuickBooks webhooks (SPEC 10.3): verify, store once, request a sync; the tick starts it.

The receiver does no work inline: it checks the size and the signature (HMAC-SHA256 of the
raw body with the verifier token, compared in constant time before anything is parsed),
stores each event once, and sets `requested_at` on the companies whose payments, credit
memos or invoices changed. The scheduler tick starts their payment sync once the request is
`debounce_seconds` old and the company is idle, and raises an attention item for a void or
delete of a document portal posted. CDC stays the source of truth: a webhook only triggers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (
    Batch,
    BatchItem,
    Company,
    CompanyStatus,
    ItemState,
    PaymentSyncState,
    User,
    WebhookConfig,
    WebhookEvent,
)
from portal.models.types import utcnow
from portal.services import attention, audit, secrets_store
from portal.services.payments import sync

log = logging.getLogger(__name__)
DOCUMENT_CHANGED = attention.register("qbo_document", "Changed in QuickBooks outside portal")
SIGNATURE_REFUSED = attention.register("webhook_signature", "Webhook signature refused")
ALERT_KINDS = (DOCUMENT_CHANGED, SIGNATURE_REFUSED)  # step 10 of the checklist
SETTINGS_PATH = "/payments/webhooks"
MAX_BODY = 1024 * 1024
SYNC_ENTITIES = {"Payment", "CreditMemo", "Invoice"}
ENTITY_NAMES = {"invoice": "Invoice", "creditmemo": "CreditMemo", "payment": "Payment"}
VERBS = {"created": "Create", "updated": "Update", "deleted": "Delete", "voided": "Void",
         "emailed": "Emailed", "merged": "Merge"}
AUDIT_EVERY_SECONDS = 60
RATE = parse("60/minute")  # per client address (SPEC 16.3)


# ---- settings -----------------------------------------------------------------------------

def config(session: Session) -> WebhookConfig:
    row = session.get(WebhookConfig, 1)
    return row if row is not None else WebhookConfig(id=1, enabled=False, debounce_seconds=60)


def save_config(session: Session, *, enabled: bool, verifier_token: str | None,
                debounce_seconds: int, by: User | None) -> list[str]:
    """Validate and store; an empty token keeps the stored one. The caller commits."""
    row = session.get(WebhookConfig, 1)
    problems = []
    if not 0 <= debounce_seconds <= 3600:
        problems.append("Debounce: enter a whole number of seconds from 0 to 3600.")
    has_token = bool(verifier_token) or bool(row and row.verifier_token_enc)
    if enabled and not has_token:
        problems.append("Enter the verifier token from the Intuit developer portal before "
                        "turning webhooks on.")
    if problems:
        return problems
    if row is None:
        row = WebhookConfig(id=1)
        session.add(row)
    before = {"enabled": row.enabled, "debounce_seconds": row.debounce_seconds}
    row.enabled = enabled
    row.debounce_seconds = debounce_seconds
    if verifier_token:
        row.verifier_token_enc = secrets_store.seal(verifier_token.strip())
    audit.record(session, "settings.webhooks.update", target_type="qbo_webhook_config",
                 target_id=1, before=before,
                 after={"enabled": enabled, "debounce_seconds": debounce_seconds,
                        **({"verifier_token": "changed"} if verifier_token else {})})
    return []


def connect_demo(session: Session, qbo_sandbox: Any, receiver_url: str,
                 by: User | None) -> None:
    """The demo: turn the receiver on with a fresh verifier token (once) and have the
    QuickBooks sandbox sign and send its notifications to it. The caller commits."""
    import secrets

    row = session.get(WebhookConfig, 1)
    if row is None or not row.verifier_token_enc:
        save_config(session, enabled=True, verifier_token=secrets.token_urlsafe(24),
                    debounce_seconds=60, by=by)
        session.flush()
        row = session.get(WebhookConfig, 1)
    qbo_sandbox.webhooks.configure(receiver_url, secrets_store.unseal(row.verifier_token_enc),
                                   entities="Invoice,Payment,CreditMemo")


# ---- the receiver -------------------------------------------------------------------------

def signature_ok(verifier_token: str, body: bytes, signature: str | None) -> bool:
    """`intuit-signature` = base64(HMAC-SHA256(verifier token, raw body)), constant time."""
    if not signature:
        return False
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.strip().encode())


@dataclass(frozen=True)
class Event:
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    time: str


def _entity(name: str) -> str:
    return ENTITY_NAMES.get(name.lower(), name[:1].upper() + name[1:])


def parse(body: bytes) -> list[Event]:
    """Events of a legacy (`eventNotifications`) or CloudEvents (array) payload; ValueError
    for anything else."""
    data = json.loads(body.decode("utf-8"))
    found: list[Event] = []
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        for note in data["eventNotifications"]:
            realm = str(note.get("realmId") or "")
            for e in (note.get("dataChangeEvent") or {}).get("entities") or []:
                found.append(Event(realm, _entity(str(e.get("name") or "")), str(e.get("id")),
                                   str(e.get("operation") or ""), str(e.get("lastUpdated") or "")))
        return found
    if isinstance(data, list):
        for e in data:
            parts = str(e.get("type") or "").split(".") if isinstance(e, dict) else []
            if len(parts) < 3 or parts[0] != "qbo":
                raise ValueError("not a QuickBooks CloudEvent")
            found.append(Event(str(e.get("intuitaccountid") or ""), _entity(parts[1]),
                               str(e.get("intuitentityid") or ""),
                               VERBS.get(parts[2], parts[2][:1].upper() + parts[2][1:]),
                               str(e.get("time") or "")))
        return found
    raise ValueError("neither a legacy nor a CloudEvents payload")


def store(session: Session, events: list[Event]) -> int:
    """Store each event once and request a sync for the companies concerned. Commits;
    returns how many events were new."""
    new = 0
    realms: set[str] = set()
    for event in events:
        try:
            with session.begin_nested():
                session.add(WebhookEvent(realm_id=event.realm_id[:40], entity=event.entity[:40],
                                         entity_id=event.entity_id[:40],
                                         operation=event.operation[:20],
                                         event_time=event.time[:40]))
                session.flush()
            new += 1
            if event.entity in SYNC_ENTITIES:
                realms.add(event.realm_id)
        except IntegrityError:
            continue  # a replay: stored once
    if realms:
        for company in session.scalars(sa.select(Company).where(Company.realm_id.in_(realms))):
            state = sync.state_of(session, company)
            if state.requested_at is None:
                state.requested_at = utcnow()
    session.commit()
    return new


def audit_bad_signature(session: Session, redis: Any, ip: str | None) -> None:
    """Audit a refused signature, at most once a minute per address."""
    key = f"portal:webhook-audit:{ip or 'unknown'}"
    if redis.set(key, "1", nx=True, ex=AUDIT_EVERY_SECONDS):
        audit.record(session, "webhook.signature_mismatch", target_type="webhook",
                     actor="system:webhook", result="refused")
        attention.raise_item(
            session, SIGNATURE_REFUSED, "verifier-token",
            "QuickBooks webhook requests are refused: their intuit-signature does not match "
            "the verifier token. Copy the verifier token of the Intuit app into the webhook "
            "settings.", link=SETTINGS_PATH, reopen=True)
        from portal.services import notify

        notify.webhook_signature_failed(
            session, "A request to /webhooks/qbo carried an intuit-signature that does not "
            "match the verifier token; it was refused with 401.", link=SETTINGS_PATH)
        session.commit()


def over_rate(redis: Any, ip: str | None) -> bool:
    """More than 60 requests in the last minute (a moving window) from this address."""
    storage = RedisStorage("redis://", connection_pool=redis.connection_pool,
                           key_prefix="portal:webhook-rate")
    return not MovingWindowRateLimiter(storage).hit(RATE, "webhook", ip or "unknown")


# ---- the tick -----------------------------------------------------------------------------

def _alerts(session: Session) -> None:
    """Voids and deletes of documents portal posted become attention items."""
    events = list(session.scalars(sa.select(WebhookEvent).where(
        WebhookEvent.processed.is_(False)).order_by(WebhookEvent.id).limit(500)))
    for event in events:
        event.processed = True
        if event.entity not in ("Invoice", "CreditMemo") or \
                event.operation not in ("Void", "Delete"):
            continue
        found = session.execute(sa.select(BatchItem, Batch.company_id)
                                .join(Batch, Batch.id == BatchItem.batch_id)
                                .join(Company, Company.id == Batch.company_id)
                                .where(Company.realm_id == event.realm_id,
                                       BatchItem.qbo_entity == event.entity,
                                       BatchItem.qbo_id == event.entity_id,
                                       BatchItem.state.in_([ItemState.POSTED.value,
                                                            ItemState.MARKED.value,
                                                            ItemState.DONE.value]))).first()
        if found is None:
            continue  # not ours, or voided by portal's own unbatch
        item, company_id = found
        noun = "invoice" if event.entity == "Invoice" else "credit memo"
        verb = "voided" if event.operation == "Void" else "deleted"
        attention.raise_item(
            session, DOCUMENT_CHANGED,
            f"{company_id}:{event.entity}:{event.entity_id}:{event.operation}",
            f"QuickBooks {noun} {item.qbo_doc_number} was {verb} outside portal; it is still "
            "batched in ConnectWise. Unbatch it or restore it.",
            company_id=company_id, link=f"/batches/{item.batch_id}")
    session.commit()


def start_requested(session: Session) -> list[int]:
    """The tick's part: attention items, then a payment sync for each company whose webhook
    request is `debounce_seconds` old and which is idle. Returns the batches started."""
    settings = config(session)
    _alerts(session)
    if not settings.enabled:
        return []
    due = utcnow() - timedelta(seconds=settings.debounce_seconds)
    started = []
    for state in list(session.scalars(sa.select(PaymentSyncState).where(
            PaymentSyncState.requested_at.is_not(None),
            PaymentSyncState.requested_at <= due))):
        company = session.get(Company, state.company_id)
        if company is None or company.status is not CompanyStatus.CONNECTED:
            continue
        try:
            batch = sync.start(session, company, trigger="webhook")
        except sync.SyncRefused:
            session.rollback()
            continue  # busy: the next tick tries again
        state.requested_at = None
        session.commit()
        sync.enqueue(batch)
        started.append(batch.id)
    return started


def open_alerts(session: Session, company_id: int | None = None) -> list[Any]:
    """The open attention items the payment sync raised (for its page and step 10)."""
    return attention.open_items(session, company_id=company_id,
                                kinds=ALERT_KINDS, limit=50)
