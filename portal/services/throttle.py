"""Password attempts per account and per client address, in Redis (moving windows)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int = 0

    @property
    def retry_after_minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_seconds / 60))


class LoginThrottle:
    """Refuse attempts once an account's or an address's window is full.

    What counts is up to the caller, as with Flask-Limiter's `deduct_when`: `check` only
    looks, `record` counts one attempt. Sign-in records failures alone, so someone who
    signs in often is never locked out; a lock is temporary and ends no session. `scope`
    keeps separate counts for separate doors (sign-in, forgotten password).
    """

    def __init__(self, client: redis.Redis, per_account: str, per_ip: str,
                 scope: str = "login") -> None:
        storage = RedisStorage("redis://", connection_pool=client.connection_pool,
                               key_prefix=f"portal:{scope}")
        self._limiter = MovingWindowRateLimiter(storage)
        self._account = parse(per_account)
        self._ip = parse(per_ip)

    def _windows(self, email: str, ip: str | None) -> list[tuple[RateLimitItem, str, str]]:
        windows = [(self._account, "account", email.strip().lower())]
        if ip:
            windows.append((self._ip, "ip", ip))
        return windows

    def check(self, email: str, ip: str | None) -> Verdict:
        """Whether one more attempt is allowed; counts nothing."""
        for item, scope, key in self._windows(email, ip):
            if not self._limiter.test(item, scope, key):
                reset_at, _remaining = self._limiter.get_window_stats(item, scope, key)
                return Verdict(False, max(1, int(reset_at - time.time())))
        return Verdict(True)

    def record(self, email: str, ip: str | None) -> None:
        """Count one attempt in both windows."""
        for item, scope, key in self._windows(email, ip):
            self._limiter.hit(item, scope, key)
