"""Webhook delivery: signed POSTs (intuit-signature) in CloudEvents or legacy format, off-thread."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from typing import Any, Callable

import requests

from .store import Event
from .util import utc_millis, utc_nanos

VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
         "Emailed": "emailed", "Merge": "merged"}


def sign(body: bytes, verifier_token: str) -> str:
    """base64(HMAC-SHA256(verifier token, raw body)) — the `intuit-signature` header."""
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def cloudevents_payload(events: list[Event], source: str) -> list[dict[str, Any]]:
    """The CloudEvents array Intuit sends since 2025 (one event per change)."""
    return [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": source,
             "type": f"qbo.{e.entity.lower()}.{VERBS.get(e.operation, e.operation.lower())}.v1",
             "datacontenttype": "application/json", "time": utc_nanos(e.at),
             "intuitentityid": e.entity_id, "intuitaccountid": e.realm_id, "data": {}}
            for e in events]


def legacy_payload(events: list[Event]) -> dict[str, Any]:
    """The older eventNotifications body, grouped by realm."""
    by_realm: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_realm.setdefault(e.realm_id, []).append(
            {"id": e.entity_id, "operation": e.operation, "name": e.entity, "lastUpdated": utc_millis(e.at)})
    return {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": entities}}
                                   for realm, entities in by_realm.items()]}


class Webhooks:
    """Queues events from API writes and delivers them from a daemon thread."""

    def __init__(self, switches: dict[str, Any], now: Callable[[], float]) -> None:
        self.switches = switches
        self.now = now
        self.config: dict[str, Any] = {"url": None, "verifier_token": None}
        self.deliveries: list[dict[str, Any]] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def configure(self, url: str | None, verifier_token: str | None, **extra: Any) -> None:
        """Set the endpoint URL and verifier token (as in Intuit's developer portal)."""
        with self._lock:
            self.config = {"url": url, "verifier_token": verifier_token, **extra}

    def wanted(self, entity: str) -> bool:
        """Only the configured entity types are notified (default Invoice and Payment)."""
        names = self.config.get("entities") or str(self.switches.get("sim.qbo_webhook_entities", ""))
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        return entity in names

    def publish(self, events: list[Event]) -> None:
        """Called after a write; never blocks the API request."""
        if not self.config.get("url") or not self.config.get("verifier_token"):
            return
        chosen = [e for e in events if self.wanted(e.entity)]
        if not chosen:
            return
        self._ensure_thread()
        for event in chosen:
            self._queue.put(event)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="qbo-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            time.sleep(float(self.switches.get("sim.qbo_webhook_delay_seconds", 0) or 0))
            batch = [first]
            while True:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.deliver(batch)
                    return
                batch.append(nxt)
            self.deliver(batch)

    def payload(self, events: list[Event]) -> bytes:
        """Compact JSON bytes in the configured format; these exact bytes are signed."""
        fmt = self.config.get("format") or self.switches.get("sim.qbo_webhook_format", "cloudevents")
        if fmt == "legacy":
            data: Any = legacy_payload(events)
        else:
            source = "intuit." + base64.b64encode(
                hashlib.sha256(str(self.config.get("verifier_token")).encode()).digest()).decode()
            data = cloudevents_payload(events, source)
        return json.dumps(data, separators=(",", ":")).encode()

    def deliver(self, events: list[Event]) -> dict[str, Any]:
        """POST one notification (with two quick retries) and record the outcome."""
        url, verifier = self.config.get("url"), self.config.get("verifier_token")
        body = self.payload(events)
        record: dict[str, Any] = {"at": self.now(), "url": url, "events": len(events),
                                  "body": body.decode(), "status": None, "error": None}
        if url and verifier:
            headers = {"Content-Type": "application/json", "intuit-signature": sign(body, verifier),
                       "User-Agent": "Intuit-Webhooks-Sandbox"}
            for attempt in range(3):
                try:
                    answer = requests.post(url, data=body, headers=headers, timeout=10)
                    record["status"], record["error"] = answer.status_code, None
                    if answer.status_code < 500:
                        break
                except requests.RequestException as exc:
                    record["error"] = str(exc)
                time.sleep(0.2 * (attempt + 1))
        with self._lock:
            self.deliveries.append(record)
            del self.deliveries[:-500]
        return record

    def stop(self) -> None:
        """Let the delivery thread finish."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
