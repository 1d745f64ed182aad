"""The scheduler tick (SPEC 15.1) and worker presence.

Every `portal worker` (and `portal demo`) runs a `Ticker` thread beside its RQ loop.
Each process announces itself every few seconds (`portal:worker-beat:<name>`, expiring
after twelve beats: WORKER_TTL at the default tick), so the dashboard counts live
workers only, and an idle worker is as fresh as a busy one. Every TICK_SECONDS one
process, the leader (Redis lock `portal:scheduler`, a TTL of two ticks: 60 s at the
default 30 s, renewed by its holder), runs the tick: the reconciler takes over runs
whose heartbeat is stale and queued runs nobody is working on, and settles writes left
open by a crash. A leader killed outright leaves its lock behind for two ticks at most,
so a killed worker's run resumes within the larger of `PORTAL_RUN_STALE_SECONDS` and two
ticks, plus one tick, while any worker is alive, with no restart. AutoSync and the email
reconciler join here.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import Flask
from rq.job import Job, JobStatus

from portal import jobs
from portal.db import session_scope
from portal.models import RunStatus
from portal.models.types import utcnow
from portal.services import autosync, email_invoices, runs, writes
from portal.services.payments import webhooks as payment_webhooks

log = logging.getLogger(__name__)
LEADER_KEY = "portal:scheduler"
LEADER_TTL_MS = 60_000  # at the default tick; a Ticker holds it for two of its ticks
PRESENCE_PREFIX = "portal:worker-beat:"
WORKER_TTL = 60  # at the default beat: a worker that missed twelve beats is gone
BEAT_EVERY = 5.0
WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}

_LEAD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def lead(redis: Any, token: str, ttl_ms: int = LEADER_TTL_MS) -> bool:
    """Take or renew the scheduler lock; True for the one process that holds it."""
    return bool(redis.eval(_LEAD, 1, LEADER_KEY, token, ttl_ms))


# ---- worker presence ----------------------------------------------------------------------

def beat_presence(redis: Any, name: str, ttl: int = WORKER_TTL) -> None:
    redis.set(f"{PRESENCE_PREFIX}{name}", utcnow().isoformat(), ex=ttl)


def leave(redis: Any, name: str) -> None:
    redis.delete(f"{PRESENCE_PREFIX}{name}")


@dataclass(frozen=True)
class Presence:
    """The live workers (each beat within WORKER_TTL) and the age of the newest beat."""

    names: list[str]
    newest_age_seconds: float | None

    @property
    def count(self) -> int:
        return len(self.names)


def presence(redis: Any) -> Presence:
    names: list[str] = []
    newest: datetime | None = None
    for key in redis.scan_iter(match=f"{PRESENCE_PREFIX}*", count=100):
        value = redis.get(key)
        if value is None:
            continue
        key = key.decode() if isinstance(key, bytes) else key
        names.append(key[len(PRESENCE_PREFIX):])
        at = datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value)
        newest = at if newest is None or at > newest else newest
    age = (datetime.now(timezone.utc) - newest).total_seconds() if newest else None
    return Presence(sorted(names), age)


# ---- the tick ------------------------------------------------------------------------------

@dataclass
class TickReport:
    resumed: list[int] = field(default_factory=list)  # run ids enqueued again
    failed: list[int] = field(default_factory=list)  # runs that cannot be resumed
    settled_writes: int = 0


def _waiting(redis: Any, run_id: int) -> bool:
    """Whether a job for this run already waits in a queue (enqueued, not started)."""
    from portal.jobs.registry import job_marker

    job_id = redis.get(job_marker(run_id))
    if not job_id:
        return False
    try:
        job = Job.fetch(job_id.decode() if isinstance(job_id, bytes) else job_id,
                        connection=redis)
    except Exception:  # noqa: BLE001 - no such job any more
        return False
    return job.get_status(refresh=True) in WAITING


def reconcile_runs(app: Flask, session: Any, redis: Any) -> TickReport:
    """Enqueue again what no live worker is doing: running runs whose heartbeat is older
    than RUN_STALE_SECONDS (the claim in the job takes them over), and queued runs whose
    job was lost (Redis down at submit, a flushed queue)."""
    from portal.jobs.registry import JOBS, enqueue_run

    report = TickReport()
    for run in runs.stale(session, app.config["RUN_STALE_SECONDS"]):
        if _waiting(redis, run.id):  # (a copy enqueued twice is harmless: one claims it)
            continue
        if run.kind not in JOBS:  # work done inside a web request that died
            runs.finish(session, run, RunStatus.FAILED, "Interrupted; start it again.")
            report.failed.append(run.id)
            continue
        log.warning("run=%s (%s) is %s with no live worker; enqueued again", run.id,
                    run.kind.value, run.status.value)
        enqueue_run(run.kind, run.id)
        report.resumed.append(run.id)
    return report


def tick(app: Flask) -> TickReport:
    """One scheduler tick (the leader's work): reconcile runs, then settle open writes."""
    redis = jobs.get_redis(app)
    with app.app_context(), session_scope(app) as session:
        report = reconcile_runs(app, session, redis)
        report.settled_writes = writes.reconcile(session)
        autosync.tick(app, session)
        email_invoices.tick(app, session)
        payment_webhooks.start_requested(session)
    return report


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


class Ticker:
    """The worker's scheduler thread: announces the worker every BEAT_EVERY seconds (or
    every tick, when shorter) and, while it holds the leader lock, runs `tick` every
    `every` seconds. A failing tick is logged and tried again at the next one; it never
    stops the worker.

    What a process killed outright leaves behind lasts in proportion to the tick: its
    lock two ticks and its presence twelve beats (60 s each at the defaults). With a
    fixed 60 s lock, a short tick and stale window (PORTAL_RUN_STALE_SECONDS=3) still
    waited a minute for a run whose worker was also the leader.
    """

    def __init__(self, app: Flask, name: str | None = None, every: float | None = None
                 ) -> None:
        self.app = app
        self.name = name or worker_name()
        self.every = float(every if every is not None else app.config["TICK_SECONDS"])
        self.beat_every = min(BEAT_EVERY, self.every)
        self.presence_ttl = max(1, round(WORKER_TTL * self.beat_every / BEAT_EVERY))
        self.lock_ttl_ms = max(1000, round(2000 * self.every))
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="portal-ticker", daemon=True)
        self.ticks = 0

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            redis = jobs.get_redis(self.app)
            leave(redis, self.name)
            if redis.get(LEADER_KEY) in (self.token, self.token.encode()):
                redis.delete(LEADER_KEY)
        except Exception:  # noqa: BLE001 - Redis gone at shutdown: keys expire by themselves
            pass

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                redis = jobs.get_redis(self.app)
                beat_presence(redis, self.name, self.presence_ttl)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.every
                    if lead(redis, self.token, self.lock_ttl_ms):
                        tick(self.app)
                        self.ticks += 1
            except Exception:  # noqa: BLE001 - logged; the next beat tries again
                log.exception("scheduler tick failed")
            self._stop.wait(self.beat_every)

