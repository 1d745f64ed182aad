"""Pacing of QuickBooks calls per realm, in Redis (SPEC 6.7), so portal stays under Intuit's
limits instead of meeting 429s: requests per minute, `/batch` requests per minute, and
requests in flight. Every process (web, workers) shares the same counters.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Sliding one-minute windows in sorted sets; in-flight calls are leases that expire, so a
# killed worker cannot hold a slot for ever. Returns -1 when the slot is taken, else the
# seconds to wait before asking again.
_ACQUIRE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_minute, batch_per_minute = tonumber(ARGV[3]), tonumber(ARGV[4])
local concurrent, token, lease = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local function wait_for(key, limit)
  if redis.call('ZCARD', key) < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(0.01, tonumber(oldest[2]) + window - now)
end
local wait = wait_for(KEYS[1], per_minute)
if batch_per_minute > 0 then wait = math.max(wait, wait_for(KEYS[2], batch_per_minute)) end
if wait > 0 then return tostring(wait) end
if redis.call('ZCARD', KEYS[3]) >= concurrent then return '0.05' end
redis.call('ZADD', KEYS[1], now, token)
if batch_per_minute > 0 then redis.call('ZADD', KEYS[2], now, token) end
redis.call('ZADD', KEYS[3], now + lease, token)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], math.ceil(window * 2 + lease)) end
return '-1'
"""


class Pacer:
    """Call before each QuickBooks request; the returned function frees the in-flight slot."""

    def __init__(self, redis: Any, realm_id: str, *, per_minute: int, batch_per_minute: int,
                 concurrent: int, window: float = 60.0, lease: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.redis = redis
        self.keys = [f"portal:qbo-pace:{realm_id}:{name}" for name in ("all", "batch",
                                                                       "inflight")]
        self.per_minute = per_minute
        self.batch_per_minute = batch_per_minute
        self.concurrent = concurrent
        self.window = window
        self.lease = lease
        self._sleep = sleep
        self._script = redis.register_script(_ACQUIRE)
        self.waited = 0.0

    def __call__(self, is_batch: bool) -> Callable[[], None]:
        token = uuid.uuid4().hex
        while True:
            try:
                answer = float(self._script(keys=self.keys, args=[
                    time.time(), self.window, self.per_minute,
                    self.batch_per_minute if is_batch else 0, self.concurrent, token,
                    self.lease]))
            except Exception:  # noqa: BLE001 - pacing is a courtesy; Redis down must not stop posting
                log.warning("QuickBooks pacing is unavailable (Redis); calling unpaced",
                            exc_info=True)
                return lambda: None
            if answer < 0:
                return lambda: self._release(token)
            self.waited += answer
            self._sleep(answer)

    def _release(self, token: str) -> None:
        try:
            self.redis.zrem(self.keys[2], token)
        except Exception:  # noqa: BLE001 - the lease expires by itself
            log.warning("could not free a QuickBooks pacing slot", exc_info=True)
