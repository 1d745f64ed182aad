"""A long-running worker (`portal worker`): with nothing to do it keeps waiting for
work."""

from __future__ import annotations

import logging

import pytest

from portal import jobs

pytestmark = pytest.mark.integration


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
