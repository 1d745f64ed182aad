"""A long-running worker (`portal worker`): with nothing to do it keeps waiting for
work, and what it leaves in Redis when it is killed outright expires in proportion to
the tick (SPEC 15.1)."""

from __future__ import annotations

import logging
import time

import pytest

from portal import jobs
from portal.services import scheduler

pytestmark = pytest.mark.integration

TICK = 1


def test_an_idle_worker_keeps_waiting_for_jobs(app, caplog):
    """RQ's worker waits for a job in one blocking call, longer than redis-py's 5 s
    socket timeout; a connection opened earlier (`portal worker`'s start-up tick and
    scheduler thread open some) must not serve that wait, or the worker quits."""
    shared = jobs.get_redis(app)
    listening = shared.pubsub()  # two connections left open in the shared pool
    listening.subscribe("portal:test")
    shared.ping()
    listening.close()
    worker = jobs.make_worker(app)
    caplog.set_level(logging.INFO, logger="rq.worker")
    worker.work(burst=False, with_scheduler=False, max_idle_time=7)
    said = [r.getMessage() for r in caplog.records if r.name == "rq.worker"]
    assert any("idle for 7 seconds" in text for text in said), said
    assert not any("timeout" in text.lower() for text in said), said


def test_what_a_dead_leader_leaves_lasts_in_proportion_to_the_tick(app):
    """A worker killed outright can release neither the leader lock nor its presence:
    they expire, after two ticks and twelve beats, so a short tick finds it soon."""
    redis = jobs.get_redis(app)
    dead = scheduler.Ticker(app, name="dead", every=TICK)
    assert scheduler.lead(redis, dead.token, dead.lock_ttl_ms)  # its loop's first tick
    scheduler.beat_presence(redis, dead.name, dead.presence_ttl)  # ... then SIGKILL
    assert 0 < redis.pttl(scheduler.LEADER_KEY) <= 2000 * TICK
    assert 0 < redis.ttl(f"{scheduler.PRESENCE_PREFIX}dead") <= 12 * TICK
    live = scheduler.Ticker(app, name="live", every=TICK).start()
    try:
        deadline = time.monotonic() + 30
        while not live.ticks:  # it leads once the dead leader's lock has expired
            assert time.monotonic() < deadline, redis.get(scheduler.LEADER_KEY)
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while scheduler.presence(redis).names != ["live"]:
            assert time.monotonic() < deadline, scheduler.presence(redis)
            time.sleep(0.1)
    finally:
        live.stop()
    # at the default tick, both are what SPEC 15.1 and the dashboard promise
    default = scheduler.Ticker(app, name="default")
    assert default.lock_ttl_ms == scheduler.LEADER_TTL_MS == 60_000
    assert default.presence_ttl == scheduler.WORKER_TTL
