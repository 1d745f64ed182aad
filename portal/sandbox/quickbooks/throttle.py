"""Per-realm limits like Intuit's: requests per minute, batch requests per minute, concurrency."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from typing import Any, Callable


class Throttle:
    """Sliding one-minute windows on the sandbox clock, plus an in-flight counter per realm."""

    def __init__(self, now: Callable[[], float], switches: dict[str, Any]) -> None:
        self.now = now
        self.switches = switches
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    def _count(self, key: str, at: float, span: float) -> int:
        window = self._windows[key]
        while window and window[0] <= at - span:
            window.popleft()
        return len(window)

    def acquire(self, realm: str, client_id: str, is_batch: bool) -> float | None:
        """Count the request; None if allowed, else the seconds until a slot frees (429)."""
        at = self.now()
        limits = [(f"all:{realm}", int(self.switches["sim.qbo_rate_per_minute"]), 60.0)]
        per_second = int(self.switches.get("sim.qbo_rate_per_second") or 0)
        if per_second:
            limits.append((f"second:{realm}:{client_id}", per_second, 1.0))
        if is_batch:
            limits.append((f"batch:{realm}:{client_id}", int(self.switches["sim.qbo_batch_per_minute"]), 60.0))
            limits.append((f"batch:{realm}", int(self.switches["sim.qbo_batch_per_minute_realm"]), 60.0))
        with self._lock:
            for key, limit, span in limits:
                if self._count(key, at, span) >= limit:
                    return max(1.0, span - (at - self._windows[key][0]))
            if self._in_flight[realm] >= int(self.switches["sim.qbo_max_concurrent"]):
                return 1.0
            for key, _, _ in limits:
                self._windows[key].append(at)
            self._in_flight[realm] += 1
        return None

    def release(self, realm: str) -> None:
        """The request finished: one fewer in flight."""
        with self._lock:
            self._in_flight[realm] = max(0, self._in_flight[realm] - 1)

    def reset(self) -> None:
        """Forget all windows (reset)."""
        with self._lock:
            self._windows.clear()
            self._in_flight.clear()
