"""`requestid` replay: the first answer to a write is kept per company and returned for repeats."""

from __future__ import annotations

import threading
from typing import Any, Callable

MAX_REQUESTID = 50
MAX_BATCH_REQUESTID = 36


class RequestIds:
    """Stored answers keyed by (realm, requestid), forgotten after the configured window."""

    def __init__(self, now: Callable[[], float], switches: dict[str, Any]) -> None:
        self.now = now
        self.switches = switches
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], tuple[float, int, bytes, str]] = {}

    def lookup(self, realm: str, request_id: str) -> tuple[int, bytes, str] | None:
        """The stored answer for a repeated requestid, unless expired or broken mode."""
        if self.switches.get("sim.qbo_requestid_broken"):
            return None
        window = float(self.switches["sim.qbo_requestid_window_seconds"])
        with self._lock:
            hit = self._answers.get((realm, request_id))
            if hit is None:
                return None
            if self.now() - hit[0] > window:
                del self._answers[(realm, request_id)]
                return None
            return hit[1], hit[2], hit[3]

    def remember(self, realm: str, request_id: str, status: int, body: bytes, mimetype: str) -> None:
        """Keep the answer unless the request never ran (auth, throttle or server failure)."""
        if status in (401, 403, 429) or status >= 500:
            return
        with self._lock:
            self._answers[(realm, request_id)] = (self.now(), status, body, mimetype)
            if len(self._answers) > 200_000:
                oldest = sorted(self._answers.items(), key=lambda kv: kv[1][0])[:50_000]
                for key, _ in oldest:
                    del self._answers[key]

    def clear(self) -> None:
        """Forget every stored answer (reset)."""
        with self._lock:
            self._answers.clear()
