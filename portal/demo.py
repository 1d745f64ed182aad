"""`portal demo`: one process with embedded SQLite and Redis, both sandboxes, web and worker.

Keys and demo passwords are generated on first start and kept in the instance folder, so a
restarted demo keeps its sessions and data; `--reset` starts from scratch.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import click
from flask import Flask

DEMO_USERS = (("admin@demo.test", "admin", "Demo Admin"),
              ("accountant@demo.test", "accountant", "Demo Accountant"),
              ("viewer@demo.test", "viewer", "Demo Viewer"))


def instance_folder() -> Path:
    base = os.environ.get("PORTAL_INSTANCE_PATH") or Flask("portal").instance_path
    return Path(base) / "demo"


def _secrets(folder: Path) -> dict[str, Any]:
    """Load or create the demo's keys and passwords (file mode 0600)."""
    path = folder / "demo-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from portal.crypto import generate_key

    data = {"secret_key": secrets.token_urlsafe(48), "encryption_key": generate_key(),
            "passwords": {email: "demo-" + secrets.token_urlsafe(12)
                          for email, _role, _name in DEMO_USERS}}
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return data


def build_app(folder: Path, demo_secrets: dict[str, Any]) -> Flask:
    """The portal configured for the demo: embedded stores in the demo's own folder."""
    for name in ("PORTAL_DATABASE_URL", "PORTAL_REDIS_URL"):
        os.environ.pop(name, None)  # never seed demo data into a real database
    os.environ.update({
        "PORTAL_ENV": "demo", "PORTAL_INSTANCE_PATH": str(folder),
        "PORTAL_SECRET_KEY": demo_secrets["secret_key"],
        "PORTAL_ENCRYPTION_KEY": demo_secrets["encryption_key"],
        "PORTAL_LOG_FORMAT": os.environ.get("PORTAL_LOG_FORMAT", "text"),
        "PORTAL_LOG_LEVEL": os.environ.get("PORTAL_LOG_LEVEL", "WARNING"),
    })
    from portal import create_app

    return create_app()


def seed_users(app: Flask, passwords: dict[str, str]) -> None:
    from portal.db import session_scope
    from portal.models import Role
    from portal.services import users

    with app.app_context(), session_scope(app) as session:
        for email, role, name in DEMO_USERS:
            if users.by_email(session, email) is None:
                users.create(session, email=email, name=name, role=Role(role),
                             password=passwords[email])


def start_sandboxes(folder: Path, host: str, cw_port: int, qbo_port: int,
                    data: dict[str, Any]) -> list[Any]:
    """Both simulators on loopback ports, their state saved in the demo folder."""
    from portal.sandbox import connectwise, quickbooks

    cw = connectwise.ConnectWiseSandbox(data=data["connectwise"],
                                        state_path=folder / "sandbox-connectwise.json")
    qbo = quickbooks.QuickBooksSandbox(data=data["quickbooks"],
                                       state_path=folder / "sandbox-quickbooks.json")
    return [("ConnectWise sandbox", connectwise.serve(cw, host=host, port=cw_port), cw),
            ("QuickBooks sandbox", quickbooks.serve(qbo, host=host, port=qbo_port), qbo)]


def preconfigure(app: Flask, data: dict[str, Any], cw_url: str, qbo_url: str,
                 qbo_sandbox: Any, portal_url: str) -> None:
    """Fill in the ConnectWise member and the Intuit app of the data set (once), so the
    demo starts at "Test connection" and "Connect to QuickBooks"."""
    import sqlalchemy as sa

    from portal.db import session_scope
    from portal.models import User
    from portal.services import cw_setup, qbo_setup

    app_creds = data["quickbooks"]["apps"][0]
    qbo_sandbox.oauth.add_app({**app_creds, "redirect_uris": [
        f"{portal_url}setup/quickbooks/callback", *app_creds.get("redirect_uris", [])]})
    with app.test_request_context(base_url=portal_url), session_scope(app) as session:
        admin = session.scalar(sa.select(User).where(User.email == DEMO_USERS[0][0]))
        if cw_setup.current(session) is None:
            creds = data["connectwise"]["credentials"]
            cw_setup.save(session, site=cw_url, company_id=creds["company_id"],
                          public_key=creds["public_key"], private_key=creds["private_key"],
                          client_id=creds["client_id"], verify_tls=True, by=admin)
        row = qbo_setup.app_row(session)
        if row is None or row.discovery_url != \
                f"{qbo_url}/.well-known/openid_sandbox_configuration":
            qbo_setup.save_app(session, client_id=app_creds["client_id"],
                               client_secret=app_creds["client_secret"], environment="custom",
                               discovery_url=f"{qbo_url}/.well-known/"
                                             "openid_sandbox_configuration",
                               api_base_url=qbo_url, by=admin)
        from portal.services.payments import webhooks

        webhooks.connect_demo(session, qbo_sandbox, f"{portal_url}webhooks/qbo", admin)


def start_mailbox(folder: Path, host: str, port: int, qbo_sandbox: Any) -> Any:
    """The local SMTP sink, shown by the QuickBooks sandbox at /_sim/mailbox."""
    from portal.sandbox.mailbox import Mailbox

    box = Mailbox(host=host, port=port, state_path=folder / "sandbox-mailbox.json").start()
    qbo_sandbox.mailbox = box
    return box


def preconfigure_smtp(app: Flask, host: str, port: int) -> None:
    """Point the SMTP settings at the sink (once), so a test email lands in the mailbox."""
    from portal.db import session_scope
    from portal.services import mailer

    with app.test_request_context(), session_scope(app) as session:
        if mailer.current(session) is None:
            mailer.save(session, mailer.SmtpForm(host=host, port=str(port), security="none",
                                                 username="", password="", timeout="20",
                                                 from_address="billing@northwind.example"),
                        None)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(*, host: str = "127.0.0.1", port: int = 5000, cw_port: int = 5001,
        qbo_port: int = 5002, reset: bool = False, mail_port: int = 5025) -> None:
    """Run until Ctrl+C or SIGTERM, then stop the web server, the worker, both sandboxes
    and the embedded Redis, whichever had started. (A SIGKILL leaves the Redis server
    behind; the next start stops it: portal.jobs.embedded_redis.)"""
    from werkzeug.serving import make_server

    from portal import jobs
    from portal.cli import _upgrade

    # Until the worker installs its own handlers (warm shutdown on SIGINT and SIGTERM),
    # SIGTERM unwinds like Ctrl+C instead of ending the process where it stands.
    signal.signal(signal.SIGTERM, _interrupt)
    folder = instance_folder()
    if reset and folder.exists():
        shutil.rmtree(folder)
        click.echo(f"Removed the demo data in {folder}.")
    demo_secrets = _secrets(folder)
    app = build_app(folder, demo_secrets)
    with contextlib.ExitStack() as running:
        try:
            running.callback(jobs.stop_embedded_redis, app)
            with app.app_context():
                _upgrade(app)
            seed_users(app, demo_secrets["passwords"])
            jobs.get_redis(app).ping()  # starts the embedded Redis, owned by this one
            from portal.sandbox import demo_data

            data = demo_data.generate()
            servers = start_sandboxes(folder, host, cw_port, qbo_port, data)
            for _label, server, _sandbox in servers:
                running.callback(server.stop)
            mailbox = start_mailbox(folder, host, mail_port, servers[1][2])
            running.callback(mailbox.stop)
            preconfigure_smtp(app, host, mailbox.port)
            web = make_server(host, port, app, threaded=True)
            running.callback(web.server_close)
            preconfigure(app, data, servers[0][1].url, servers[1][1].url,
                         servers[1][2], f"http://{host}:{web.port}/")
            threading.Thread(target=web.serve_forever, name="portal-web",
                             daemon=True).start()
            running.callback(web.shutdown)
            url = f"http://{host}:{web.port}/"
            click.echo("")
            click.echo(f"portal demo is running at {url}")
            for email, role, _name in DEMO_USERS:
                click.echo(f"  {role:<10} {email:<22} password: "
                           f"{demo_secrets['passwords'][email]}")
            for label, server, _sandbox in servers:
                click.echo(f"  {label}: {server.url}")
            click.echo(f"  SMTP sink: {host}:{mailbox.port}, received mails at "
                       f"{servers[1][1].url}/_sim/mailbox")
            click.echo(f"Data and keys are kept in {folder} (--reset starts again). "
                       "Ctrl+C stops.")
            from portal.services import scheduler

            ticker = scheduler.Ticker(app).start()  # takes over runs a killed worker left
            running.callback(ticker.stop)
            jobs.make_worker(app).work(with_scheduler=False, logging_level="WARNING")
        except KeyboardInterrupt:
            pass  # stopped before the worker took over the signals
    click.echo("portal demo stopped.")
