"""`portal demo` as a person runs it: it prints a URL and logins that work, stops with
everything it started, and never runs in production."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

pytestmark = pytest.mark.integration
PORTAL = str(Path(sys.executable).parent / "portal")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path: Path, port: int, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path)
    process = subprocess.Popen(
        [PORTAL, "demo", "--port", str(port), "--cw-port", str(_free_port()),
         "--qbo-port", str(_free_port()), "--mail-port", str(_free_port()), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "Ctrl+C stops" in line:
            return process, lines
    process.kill()
    raise AssertionError("demo did not start:\n" + "\n".join(lines))


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def _redis_servers(folder: Path) -> list[int]:
    """The running redis-server processes of an instance folder (Redis works in the
    folder that holds its data)."""
    pids = []
    for process in psutil.process_iter(["name", "cwd", "status"]):
        info = process.info
        if "redis" in (info["name"] or "") and info["status"] != psutil.STATUS_ZOMBIE \
                and info["cwd"] and Path(info["cwd"]).is_relative_to(folder):
            pids.append(process.pid)
    return pids


@pytest.fixture()
def demo_folder(tmp_path):
    """An instance folder whose Redis servers are killed after the test, in any case."""
    yield tmp_path
    for pid in _redis_servers(tmp_path):
        psutil.Process(pid).kill()


def _sign_in(base: str, email: str, password: str) -> requests.Response:
    http = requests.Session()
    page = http.get(f"{base}/auth/login", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return http.post(f"{base}/auth/login", data={"email": email, "password": password,
                                                 "csrf_token": token}, timeout=10)


def test_demo_prints_url_and_logins_that_work(tmp_path):
    port = _free_port()
    process, lines = _start(tmp_path, port)
    try:
        output = "\n".join(lines)
        base = f"http://127.0.0.1:{port}"
        assert f"portal demo is running at {base}/" in output
        password = re.search(r"admin\s+admin@demo\.test\s+password: (\S+)", output).group(1)
        assert "ConnectWise sandbox: http://127.0.0.1:" in output
        assert "QuickBooks sandbox: http://127.0.0.1:" in output
        assert requests.get(f"{base}/auth/login", timeout=10).status_code == 200
        dashboard = _sign_in(base, "admin@demo.test", password)
        assert dashboard.status_code == 200 and "Setup checklist" in dashboard.text
        wrong = _sign_in(base, "admin@demo.test", "not the password")
        assert "Invalid email or password." in wrong.text
    finally:
        assert _stop(process) in (0, -signal.SIGINT, 130)
    # A restart keeps keys, users and passwords.
    process, lines = _start(tmp_path, port)
    try:
        again = re.search(r"admin\s+admin@demo\.test\s+password: (\S+)", "\n".join(lines))
        assert again.group(1) == password
        assert _sign_in(f"http://127.0.0.1:{port}", "admin@demo.test", password).status_code == 200
    finally:
        _stop(process)


def test_the_demo_mails_go_to_its_smtp_sink_and_show_in_the_sandbox(tmp_path):
    """The demo's SMTP settings point at its sink; what it receives is listed on the
    QuickBooks sandbox's mailbox page."""
    import smtplib
    from email.message import EmailMessage

    port = _free_port()
    process, lines = _start(tmp_path, port)
    try:
        output = "\n".join(lines)
        sink = re.search(r"SMTP sink: 127\.0\.0\.1:(\d+), received mails at (\S+)", output)
        assert sink, output
        password = re.search(r"admin\s+admin@demo\.test\s+password: (\S+)", output).group(1)
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        page = http.get(f"{base}/auth/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        http.post(f"{base}/auth/login", data={"email": "admin@demo.test",
                                              "password": password, "csrf_token": token},
                  timeout=10)
        email_page = http.get(f"{base}/email/", timeout=10).text
        assert f'value="{sink.group(1)}"' in email_page and 'value="127.0.0.1"' in email_page
        message = EmailMessage()
        message["From"], message["To"] = "billing@northwind.example", "admin@demo.test"
        message["Subject"] = "Invoice 1042 from Northwind Managed IT"
        message.set_content("Pay online.")
        with smtplib.SMTP("127.0.0.1", int(sink.group(1)), timeout=10) as server:
            server.send_message(message)
        mailbox = requests.get(sink.group(2), timeout=10).text
        assert "Invoice 1042 from Northwind Managed IT" in mailbox
    finally:
        _stop(process)


def test_portal_sandbox_runs_both_with_one_data_set(tmp_path):
    cw_port, qbo_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    process = subprocess.Popen([PORTAL, "sandbox", "--cw-port", str(cw_port), "--qbo-port",
                                str(qbo_port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        assert f"ConnectWise sandbox: http://127.0.0.1:{cw_port}" in lines[0]
        assert f"QuickBooks sandbox:  http://127.0.0.1:{qbo_port}" in lines[1]
        info = requests.get(f"http://127.0.0.1:{cw_port}/login/companyinfo/northwind",
                            timeout=5).json()
        assert info["CompanyName"] == "Northwind Managed IT"
        discovery = requests.get(f"http://127.0.0.1:{qbo_port}/.well-known/"
                                 "openid_sandbox_configuration", timeout=5).json()
        assert discovery["token_endpoint"].startswith(f"http://127.0.0.1:{qbo_port}/")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_stopping_the_demo_stops_its_redis(demo_folder, stop):
    port = _free_port()
    process, _lines = _start(demo_folder, port)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/auth/login", timeout=10).ok
        assert len(_redis_servers(demo_folder)) == 1
    finally:
        process.send_signal(stop)
        assert process.wait(timeout=60) == 0
    assert process.stdout.read().rstrip().endswith("portal demo stopped.")
    assert _redis_servers(demo_folder) == []


def test_a_killed_demos_redis_is_stopped_by_the_next_start(demo_folder):
    process, _lines = _start(demo_folder, _free_port())
    (orphan,) = _redis_servers(demo_folder)
    process.kill()
    process.wait(timeout=30)
    assert _redis_servers(demo_folder) == [orphan]  # nothing could stop it
    port = _free_port()
    process, _lines = _start(demo_folder, port)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/auth/login", timeout=10).ok
        (server,) = _redis_servers(demo_folder)
        assert server != orphan  # the orphan was stopped (or is a zombie awaiting init)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert _redis_servers(demo_folder) == []


@pytest.mark.parametrize("command", [
    ("demo", "--port", "0", "--cw-port", "0", "--qbo-port", "0"),
    ("sandbox", "--cw-port", "0", "--qbo-port", "0"),
    ("sandbox", "connectwise", "--port", "0"),
    ("sandbox", "quickbooks", "--port", "0"),
], ids=["demo", "sandbox", "sandbox-connectwise", "sandbox-quickbooks"])
@pytest.mark.parametrize("how", ["variable", "file"])
def test_the_simulators_never_start_in_production(tmp_path, command, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env["PORTAL_INSTANCE_PATH"] = str(tmp_path)
    if how == "variable":
        env["PORTAL_ENV"] = "production"
    else:
        (tmp_path / "env").write_text("production\n")
        env["PORTAL_ENV_FILE"] = str(tmp_path / "env")
    result = subprocess.run([PORTAL, *command], env=env, capture_output=True, text=True,
                            timeout=30)
    name = " ".join(word for word in command if word[0] not in "-0")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: `portal {name}` runs the ConnectWise and QuickBooks simulators, "
        "which never start with PORTAL_ENV=production; unset PORTAL_ENV or set it to "
        "development to run them."]
    assert result.stdout == "" and sorted(tmp_path.iterdir()) == sorted(
        [tmp_path / "env"] if how == "file" else [])
