"""Pacing of outside calls, shared by every process through Redis.

QuickBooks (SPEC 6.7), per realm: requests per sliding minute, `/batch` requests per
sliding minute, and requests in flight, so portal stays under Intuit's limits instead of
meeting 429s. ConnectWise (SPEC 6.6): one semaphore of calls in flight for every job.
In-flight slots are short leases that their process renews while the call lasts, so a
killed worker's slots free themselves within one lease.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
LEASE = 15.0  # seconds an in-flight slot outlives the process holding it


class _Leases:
    """The in-flight slots this process holds, renewed by one daemon thread (three
    times a lease) until released. A slot outlives a slow call but not its process:
    with fixed leases of minutes, a worker SIGKILLed during its calls kept their slots
    that long, and a few kills held every ConnectWise slot while the run went on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[Any, str, float]] = {}  # token: (redis, key, lease)
        self._thread: threading.Thread | None = None
        self._shortest = LEASE  # the shortest lease held: renewed a third of it apart
        self._shorter = threading.Event()  # set when a shorter lease comes in

    def hold(self, redis: Any, key: str, token: str, lease: float) -> None:
        with self._lock:
            self._held[token] = (redis, key, lease)
            if lease < self._shortest:
                self._shortest = lease
                self._shorter.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew, daemon=True,
                                                name="pacing-leases")
                self._thread.start()

    def drop(self, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)

    def _renew(self) -> None:
        while True:
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
                self._shortest = min(held[2] for held in self._held.values())
                every = min(1.0, self._shortest / 3)
            self._shorter.wait(every)
            self._shorter.clear()
            with self._lock:
                held = list(self._held.items())
            for token, (redis, key, lease) in held:
                try:  # XX: a slot released meanwhile is not taken again
                    renew = redis.pipeline(transaction=False)
                    renew.zadd(key, {token: time.time() + lease}, xx=True)
                    renew.expire(key, math.ceil(lease * 2))
                    renew.execute()
                except Exception:  # noqa: BLE001 - it expires by itself; calls go on
                    log.warning("could not renew a pacing slot", exc_info=True)


_leases = _Leases()

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
                 concurrent: int, window: float = 60.0, lease: float = LEASE,
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
                _leases.hold(self.redis, self.keys[2], token, self.lease)
                return lambda: self._release(token)
            self.waited += answer
            self._sleep(answer)

    def _release(self, token: str) -> None:
        """Free the in-flight slot, and count the request at the time its answer came: the
        server counted it on arrival, somewhere between our send and our receive, so only
        the receive time is sure not to let the next window start early."""
        _leases.drop(token)
        now = time.time()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(self.keys[0], {token: now}, xx=True)
            pipe.zadd(self.keys[1], {token: now}, xx=True)
            pipe.zrem(self.keys[2], token)
            pipe.execute()
        except Exception:  # noqa: BLE001 - the lease expires by itself
            log.warning("could not free a QuickBooks pacing slot", exc_info=True)


_TAKE = """
local now, limit, token, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + lease, token)
redis.call('EXPIRE', KEYS[1], math.ceil(lease * 2))
return 1
"""


class Semaphore:
    """At most `limit` calls in flight across every process (ConnectWise: 4, SPEC 6.6).

    Call it before a request; the returned function frees the slot. A slot is a lease of
    `lease` seconds, renewed while the call lasts, so a killed process's slot frees
    itself.
    When Redis cannot be reached the call goes ahead unpaced, as with QuickBooks.
    """

    def __init__(self, redis: Any, key: str, limit: int, *, lease: float = LEASE,
                 poll: float = 0.01, sleep: Callable[[float], None] = time.sleep) -> None:
        self.redis = redis
        self.key = key
        self.limit = limit
        self.lease = lease
        self.poll = poll
        self._sleep = sleep
        self._script = redis.register_script(_TAKE)

    def __call__(self, _is_batch: bool = False) -> Callable[[], None]:
        token = uuid.uuid4().hex
        delay = self.poll
        while True:
            try:
                taken = int(self._script(keys=[self.key], args=[
                    time.time(), self.limit, token, self.lease]))
            except Exception:  # noqa: BLE001 - pacing is a courtesy; Redis down must not stop work
                log.warning("ConnectWise pacing is unavailable (Redis); calling unpaced",
                            exc_info=True)
                return lambda: None
            if taken:
                _leases.hold(self.redis, self.key, token, self.lease)
                return lambda: self._release(token)
            self._sleep(delay)
            delay = min(0.1, delay * 1.5)

    def _release(self, token: str) -> None:
        _leases.drop(token)
        try:
            self.redis.zrem(self.key, token)
        except Exception:  # noqa: BLE001 - the lease expires by itself
            log.warning("could not free a ConnectWise pacing slot", exc_info=True)
