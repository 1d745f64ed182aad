"""The `portal` command: demo, serve, worker, db, users, keys, healthcheck, sandbox."""

from __future__ import annotations

import logging
import os
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from portal.config import ConfigError

log = logging.getLogger(__name__)


def _create_app() -> Flask:
    from portal import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False, set_debug_flag=False)
def cli() -> None:
    """portal: ConnectWise PSA to QuickBooks Online, self-hosted."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: configuration errors are one line, not a traceback."""
    try:
        cli.main(args=argv, prog_name="portal")
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


# ---- database -----------------------------------------------------------------------

@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the database.")
@with_appcontext
def db_upgrade(timeout: float) -> None:
    """Wait for the database, then apply every migration."""
    _upgrade(current_app, timeout)


def _upgrade(app: Flask, timeout: float = 60.0) -> None:
    from portal import migrate

    url = app.config["DATABASE_URL"]
    try:
        migrate.wait_for_database(url, timeout=timeout)
    except migrate.SchemaNotCurrent as exc:
        raise click.ClickException(str(exc)) from None
    migrate.upgrade(url)
    click.echo(f"Database schema is at {', '.join(migrate.current(url))}.")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    from portal import migrate

    url = current_app.config["DATABASE_URL"]
    click.echo(f"database: {', '.join(migrate.current(url)) or 'empty'}")
    click.echo(f"code:     {', '.join(migrate.heads(url))}")


@cli.command("migrate")
@click.option("--timeout", default=60.0, show_default=True)
@with_appcontext
def migrate_alias(timeout: float) -> None:
    """Alias of `portal db upgrade` (the container's one-shot step)."""
    _upgrade(current_app, timeout)


def _require_schema(app: Flask, wait: float = 60.0) -> None:
    """Wait for the database (containers start in any order), then insist on head."""
    from portal import migrate

    try:
        migrate.wait_for_database(app.config["DATABASE_URL"], timeout=wait)
        migrate.check_current(app.config["DATABASE_URL"])
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
        raise click.ClickException(str(exc).splitlines()[0]) from None


# ---- serving ------------------------------------------------------------------------

@cli.command("serve")
@click.option("--bind", default=lambda: os.environ.get("PORTAL_BIND", "0.0.0.0:8000"),
              show_default="0.0.0.0:8000 or PORTAL_BIND")
@click.option("--workers", default=lambda: int(os.environ.get("PORTAL_WEB_WORKERS", "2")),
              show_default="2 or PORTAL_WEB_WORKERS")
@with_appcontext
def serve(bind: str, workers: int) -> None:
    """Check the schema, then run gunicorn on portal:create_app()."""
    _require_schema(current_app)
    args = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
            "--access-logfile", "-", "--error-logfile", "-", "--forwarded-allow-ips", "*",
            "portal:create_app()"]
    os.execv(sys.executable, args)


cli.add_command(serve, "web")


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Work the queued jobs, then exit.")
@with_appcontext
def worker(burst: bool) -> None:
    """Check the schema, then run the RQ worker beside the scheduler tick (which takes over
    runs whose worker died, SPEC 15.1)."""
    from portal import jobs
    from portal.services import scheduler

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    _require_schema(app)
    report = scheduler.tick(app)  # at once: what died with an earlier worker resumes now
    if report.resumed:
        click.echo(f"Re-queued {len(report.resumed)} stale run(s).")
    ticker = scheduler.Ticker(app).start()
    try:
        jobs.make_worker(app).work(burst=burst, with_scheduler=False, logging_level="INFO")
    finally:
        ticker.stop()


# ---- users --------------------------------------------------------------------------

@cli.group("users")
def users_group() -> None:
    """Manage users."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError("No terminal to ask for the password: pipe it in with "
                               "--password-stdin.")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["admin", "accountant", "viewer"]), required=True)
@click.option("--name", default="", help="Display name (defaults to the email's first part).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def users_create(email: str, role: str, name: str, password_stdin: bool) -> None:
    """Create a user (the first admin, typically)."""
    _create_user(email, role, name, password_stdin)


@cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--password-stdin", is_flag=True)
@with_appcontext
def create_admin(email: str, name: str, password_stdin: bool) -> None:
    """Alias of `portal users create --role admin`."""
    _create_user(email, "admin", name, password_stdin)


def _create_user(email: str, role: str, name: str, password_stdin: bool) -> None:
    from portal.db import session_scope
    from portal.models import Role
    from portal.services import users

    _require_schema(current_app)
    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            user = users.create(session, email=email, name=name, role=Role(role),
                                password=password)
            email = user.email
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {role} {email}.")


# ---- keys ---------------------------------------------------------------------------

@cli.group("keys")
def keys_group() -> None:
    """Encryption keys for stored credentials."""


@keys_group.command("generate", with_appcontext=False)
def keys_generate() -> None:
    """Print a new Fernet key (for PORTAL_ENCRYPTION_KEY)."""
    from portal import crypto

    click.echo(crypto.generate_key())


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Re-encrypt every stored secret with the first key of PORTAL_ENCRYPTION_KEY.

    Put the new key first and keep the old one after a comma until this has run.
    """
    from portal.db import session_scope
    from portal.services import secrets_store

    with session_scope() as session:
        count = secrets_store.rotate_all(session, current_app.config["ENCRYPTION_KEY"])
    click.echo(f"Re-encrypted {count} stored secret(s) with the first key.")


# ---- health -------------------------------------------------------------------------

@cli.command("healthcheck", with_appcontext=False)
@click.option("--url", default=lambda: os.environ.get("PORTAL_HEALTHCHECK_URL",
                                                      "http://127.0.0.1:8000/healthz"))
@click.option("--worker", "for_worker", is_flag=True, help="Check Redis instead of HTTP.")
def healthcheck(url: str, for_worker: bool) -> None:
    """Exit 0 when the web process (or, with --worker, Redis) answers."""
    if for_worker:
        from portal import jobs

        app = _create_app()
        jobs.get_redis(app).ping()
        click.echo("ok")
        return
    import requests

    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException as exc:
        raise click.ClickException(f"{url} did not answer: {exc.__class__.__name__}") from None
    if response.status_code != 200:
        raise click.ClickException(f"{url} answered {response.status_code}")
    click.echo("ok")


# ---- demo and sandboxes -------------------------------------------------------------

def _refuse_in_production(command: str) -> None:
    """The simulators never start when PORTAL_ENV=production (SPEC 17.1): a production
    machine must not answer as ConnectWise or QuickBooks, nor hold made-up books."""
    env = os.environ.get("PORTAL_ENV")
    if env is None and os.environ.get("PORTAL_ENV_FILE"):
        try:
            with open(os.environ["PORTAL_ENV_FILE"], encoding="utf-8") as handle:
                env = handle.read()
        except OSError:
            env = None  # the product commands report an unreadable file
    if (env or "").strip().strip('"') == "production":
        raise click.ClickException(
            f"`portal {command}` runs the ConnectWise and QuickBooks simulators, which "
            "never start with PORTAL_ENV=production; unset PORTAL_ENV or set it to "
            "development to run them.")


@cli.command("demo", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--cw-port", default=5001, show_default=True, type=int,
              help="ConnectWise sandbox port.")
@click.option("--qbo-port", default=5002, show_default=True, type=int,
              help="QuickBooks sandbox port.")
@click.option("--mail-port", default=5025, show_default=True, type=int,
              help="Port of the local SMTP sink (its mails show in the QuickBooks sandbox).")
@click.option("--reset", is_flag=True, help="Delete the demo data and start again.")
def demo(host: str, port: int, cw_port: int, qbo_port: int, mail_port: int,
         reset: bool) -> None:
    """Run everything in one process: embedded SQLite and Redis, both sandboxes, the web
    server and a worker, with demo users. Keys are generated on first start."""
    _refuse_in_production("demo")
    from portal import demo as demo_module

    demo_module.run(host=host, port=port, cw_port=cw_port, qbo_port=qbo_port, reset=reset,
                    mail_port=mail_port)


class _SandboxGroup(click.Group):
    """Loads the simulators only when a sandbox command runs: `portal --help` stays fast
    and product commands never import sandbox code."""

    NAMES = ("connectwise", "quickbooks")

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.NAMES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.NAMES:
            return None
        from importlib import import_module

        return getattr(import_module(f"portal.sandbox.{name}.cli"), name)


@cli.group("sandbox", cls=_SandboxGroup, invoke_without_command=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--scale", default=0, show_default=True, help="Extra generated invoices.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--cw-port", default=5001, show_default=True, type=int)
@click.option("--qbo-port", default=5002, show_default=True, type=int)
@click.pass_context
def sandbox(ctx: click.Context, seed: int, scale: int, host: str, cw_port: int,
            qbo_port: int) -> None:
    """Run the ConnectWise and QuickBooks sandboxes (both, with one data set, by default)."""
    _refuse_in_production(" ".join(filter(None, ("sandbox", ctx.invoked_subcommand))))
    if ctx.invoked_subcommand is None:
        from portal.sandbox.cli import run_both

        run_both(seed=seed, scale=scale, host=host, cw_port=cw_port, qbo_port=qbo_port)
