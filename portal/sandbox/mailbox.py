"""A local SMTP sink on loopback (aiosmtpd): a real SMTP server that keeps every message it
receives, so tests and `portal demo` see exactly what customers would get. The QuickBooks
sandbox shows the messages at /_sim/mailbox (HTML) and /_sim/mailbox.json.

It accepts any sender and recipient and never relays. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

KEEP = 500


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.box.add(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        return "250 Message accepted for delivery"


def summary(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> dict[str, Any]:
    """A received message as JSON: headers, text and HTML parts, attachments (name, type,
    size)."""
    message: EmailMessage = message_from_bytes(raw, policy=policy.default)  # type: ignore[assignment]
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    attachments = [{"filename": part.get_filename(), "content_type": part.get_content_type(),
                    "size": len(part.get_payload(decode=True) or b""),
                    "starts": (part.get_payload(decode=True) or b"")[:5].decode("latin-1")}
                   for part in message.iter_attachments()]
    return {"received_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "envelope_from": mail_from, "envelope_to": rcpt_tos,
            "from": str(message.get("From", "")), "to": str(message.get("To", "")),
            "cc": str(message.get("Cc", "")), "reply_to": str(message.get("Reply-To", "")),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "attachments": attachments}


class Mailbox:
    """The sink: `start()` listens, `messages()` lists what came in (newest last)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 state_path: Path | None = None) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the mailbox listens on loopback only")
        self.host = host
        self.port = port
        self.state_path = state_path
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        if state_path is not None and state_path.exists():
            self._messages = json.loads(state_path.read_text())
        self._controller: Controller | None = None

    def start(self) -> Mailbox:
        if not self.port:
            self.port = _free_port(self.host)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def add(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        entry = summary(raw, mail_from, rcpt_tos)
        with self._lock:
            self._messages.append(entry)
            del self._messages[:-KEEP]
            if self.state_path is not None:
                self.state_path.write_text(json.dumps(self._messages))

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            if self.state_path is not None:
                self.state_path.write_text("[]")
