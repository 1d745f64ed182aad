"""The embedded Redis belongs to the process that started it; RQ's bursts give the
signals back to their caller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from portal.jobs import embedded_redis
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration


def test_a_burst_gives_the_signal_handlers_back(app):
    def mine(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        interrupt = signal.getsignal(signal.SIGINT)
        run_jobs(app)  # an empty queue: RQ still installs its handlers
        assert signal.getsignal(signal.SIGINT) is interrupt
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_joining_processes_never_stop_the_owners_server(tmp_path):
    path = str(tmp_path / "redis.db")
    owner = embedded_redis.connect(path)
    owner.set("kept", "yes")
    server = embedded_redis.server_pid(path)
    join = (f"from portal.jobs import embedded_redis; "
            f"print(embedded_redis.connect({path!r}).get('kept').decode())")
    for _ in range(2):
        joined = subprocess.run([sys.executable, "-c", join], capture_output=True, text=True,
                                timeout=60)
        assert joined.stdout.strip() == "yes", joined.stderr
        assert embedded_redis.server_pid(path) == server
    embedded_redis.stop(path)
    assert embedded_redis.server_pid(path) is None
    assert sorted(os.listdir(tmp_path)) == ["redis.db", "redis.db.lock"]  # data saved
    again = embedded_redis.connect(path)  # a new server on the saved data
    assert again.get("kept") == b"yes" and embedded_redis.server_pid(path) != server
    embedded_redis.stop(path)


def test_a_live_owner_is_known_after_the_wall_clock_steps(tmp_path):
    """NTP or a resumed virtual machine steps the clock: psutil then reports other
    start times for every process. A worker starting after that joins the server of
    the owner, alive all along, instead of stopping it as an orphan's."""
    path = str(tmp_path / "redis.db")
    owner = embedded_redis.connect(path)
    owner.set("kept", "yes")
    server = embedded_redis.server_pid(path)
    join = ("import psutil._pslinux as linux; boot = linux.boot_time; "
            "linux.boot_time = lambda: boot() + 30; "  # the clock stepped 30 s forward
            "from portal.jobs import embedded_redis; "
            f"print(embedded_redis.connect({path!r}).get('kept').decode())")
    try:
        joined = subprocess.run([sys.executable, "-c", join], capture_output=True,
                                text=True, timeout=60)
        assert joined.stdout.strip() == "yes", joined.stderr
        assert embedded_redis.server_pid(path) == server
        assert owner.get("kept") == b"yes"
    finally:
        embedded_redis.stop(path)
