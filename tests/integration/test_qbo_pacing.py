"""QuickBooks pacing in the real Redis: per-minute windows, /batch windows, calls in flight."""

from __future__ import annotations

import threading
import time

import pytest

from portal import jobs
from portal.services.batching.pacing import Pacer

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
    assert time.monotonic() - started < 0.3 and pacer.waited == 0
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
