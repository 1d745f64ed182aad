"""Pacing in the real Redis: QuickBooks per-minute windows, /batch windows and calls in
flight; ConnectWise calls in flight shared by every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from portal import jobs
from portal.services.batching.pacing import Pacer, Semaphore

pytestmark = pytest.mark.integration


def _pacer(app, **limits) -> Pacer:  # type: ignore[no-untyped-def]
    options = {"per_minute": 100, "batch_per_minute": 100, "concurrent": 4, "window": 0.6,
               **limits}
    return Pacer(jobs.get_redis(app), "123", **options)


def test_requests_beyond_the_window_limit_wait_for_the_oldest_to_leave(app):
    pacer = _pacer(app, per_minute=3)
    started = time.monotonic()
    for _ in range(3):
        pacer(False)()
    assert pacer.waited == 0
    pacer(False)()  # the fourth waits until the first is older than the window
    assert time.monotonic() - started >= 0.5 and pacer.waited > 0


def test_batch_requests_have_their_own_lower_limit(app):
    pacer = _pacer(app, batch_per_minute=1)
    pacer(True)()
    for _ in range(5):
        pacer(False)()  # plain requests are not held by the /batch limit
    assert pacer.waited == 0
    pacer(True)()
    assert pacer.waited > 0.3


def test_calls_in_flight_are_capped_and_a_release_frees_the_slot(app):
    pacer = _pacer(app, concurrent=2)
    first, _second = pacer(False), pacer(False)
    third_at: list[float] = []
    thread = threading.Thread(target=lambda: (pacer(False), third_at.append(time.monotonic())))
    started = time.monotonic()
    thread.start()
    time.sleep(0.3)
    assert not third_at  # both slots are taken
    first()
    thread.join(timeout=5)
    assert third_at and third_at[0] - started >= 0.3


def test_the_client_is_paced_through_the_app_config(app, connected):
    from portal import clients
    from portal.db import session_scope
    from portal.models import Company

    window = f"portal:qbo-pace:{connected.realm_id}:all"
    before = jobs.get_redis(app).zcard(window)  # connecting read CompanyInfo, Preferences
    assert before >= 2
    with app.app_context(), session_scope(app) as session:
        qbo = clients.quickbooks(session, session.get(Company, connected.id))
        assert isinstance(qbo.pace, Pacer)
        assert (qbo.pace.per_minute, qbo.pace.batch_per_minute, qbo.pace.concurrent) == (
            500, 40, 10)
        qbo.company_info()
    assert jobs.get_redis(app).zcard(window) == before + 1


def test_connectwise_calls_in_flight_are_shared_by_every_client(app):
    """Two clients (two processes, in production) share one limit of calls in flight."""
    redis = jobs.get_redis(app)
    one, other = (Semaphore(redis, "portal:cw-test", 2) for _ in range(2))
    release_a, _release_b = one(), other()
    third: list[bool] = []
    thread = threading.Thread(target=lambda: (one(), third.append(True)))
    thread.start()
    thread.join(timeout=0.5)
    assert not third  # both slots are taken, whichever client took them
    release_a()
    thread.join(timeout=10)
    assert third == [True]
    assert redis.zcard("portal:cw-test") == 2


HOLDER = """
import sys, time, redis
from portal.services.batching.pacing import Semaphore
where = sys.argv[1]
client = redis.Redis.from_url(where) if "://" in where else \\
    redis.Redis(unix_socket_path=where)
Semaphore(client, "portal:cw-lease", 1, lease=float(sys.argv[2]))()  # never released
print("held", flush=True)
time.sleep(600)
"""


def _redis_address(app) -> str:  # type: ignore[no-untyped-def]
    return app.config.get("REDIS_URL") or \
        jobs.get_redis(app).connection_pool.connection_kwargs["path"]


def test_a_connectwise_slot_held_by_a_killed_process_frees_itself(app):
    """The holder renews its slot while it lives; SIGKILLed, it cannot, and the slot is
    free one lease later (not minutes later, with every kill keeping another slot)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, _redis_address(app), "1.0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert holder.stdout.readline().strip() == b"held"
        time.sleep(2.5)  # beyond its lease: renewed, so still taken
        redis = jobs.get_redis(app)
        assert redis.zcount("portal:cw-lease", time.time(), "+inf") == 1
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    taken_at = time.monotonic()
    Semaphore(redis, "portal:cw-lease", 1, lease=1.0)()()  # waits for the dead lease
    assert time.monotonic() - taken_at < 30
    assert redis.zcard("portal:cw-lease") == 0  # the dead lease dropped, the new one freed


def test_a_slow_call_keeps_its_slot_past_the_lease(app):
    redis = jobs.get_redis(app)
    semaphore = Semaphore(redis, "portal:cw-slow", 1, lease=0.3)
    release = semaphore()
    second: list[bool] = []
    thread = threading.Thread(target=lambda: (semaphore()(), second.append(True)))
    thread.start()
    thread.join(timeout=1.5)  # five leases
    assert not second  # the slot is renewed while its call lasts
    release()
    thread.join(timeout=10)
    assert second == [True]
