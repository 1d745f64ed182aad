"""Login throttling per account and per client address, in Redis (moving windows)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis
from limits import parse
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
    """Counts every attempt, failed or not; a lock is temporary and ends no session."""

    def __init__(self, client: redis.Redis, per_account: str, per_ip: str) -> None:
        storage = RedisStorage("redis://", connection_pool=client.connection_pool,
                               key_prefix="portal:login")
        self._limiter = MovingWindowRateLimiter(storage)
        self._account = parse(per_account)
        self._ip = parse(per_ip)

    def hit(self, email: str, ip: str | None) -> Verdict:
        """Count an attempt; refuse it when either window is full."""
        checks = [(self._account, "account", email.strip().lower())]
        if ip:
            checks.append((self._ip, "ip", ip))
        for item, scope, key in checks:
            if not self._limiter.hit(item, scope, key):
                reset_at, _remaining = self._limiter.get_window_stats(item, scope, key)
                return Verdict(False, max(1, int(reset_at - time.time())))
        return Verdict(True)
