"""`portal sandbox connectwise`: run the ConnectWise sandbox alone as a real HTTP server."""

from __future__ import annotations

import json

import click

from ..common import LiveServer, SimClock
from . import ConnectWiseSandbox
from .switches import name_of, parse_value


@click.command("connectwise")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5001, show_default=True, type=int, help="Port (0 picks one).")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False),
              help="A data set JSON file (the \"connectwise\" part, or the whole generate() output).")
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the generated data.")
@click.option("--scale", default=0, show_default=True, type=int,
              help="Extra generated invoices for benchmarks.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              help="Keep the state in this JSON file (loaded at start, saved after writes).")
@click.option("--speed", default=1.0, show_default=True, type=float, help="Sandbox clock speed.")
@click.option("--fault", "faults", multiple=True, help="A fault rule as JSON (repeatable).")
@click.option("--switch", "switch_args", multiple=True, metavar="NAME=VALUE",
              help="Set a sim switch, e.g. sim.cw_cloud_mode=false (repeatable).")
def connectwise(host: str, port: int, data_path: str | None, seed: int, scale: int,
                state_path: str | None, speed: float, faults: tuple[str, ...],
                switch_args: tuple[str, ...]) -> None:
    """Serve the ConnectWise PSA sandbox until interrupted."""
    switches = {}
    for arg in switch_args:
        name, sep, value = arg.partition("=")
        if not sep:
            raise click.BadParameter(f"{arg!r} is not NAME=VALUE", param_hint="--switch")
        switches[name_of(name.strip())] = parse_value(value.strip())
    if data_path:
        with open(data_path, encoding="utf-8") as fh:
            data = json.load(fh)
        data = data.get("connectwise", data)
    else:
        from ..demo_data import generate
        data = generate(seed=seed, scale=scale)["connectwise"]
    try:
        sandbox = ConnectWiseSandbox(data=data, state_path=state_path, clock=SimClock(speed),
                                     seed=seed, switches=switches)
        for spec in faults:
            sandbox.faults.add(json.loads(spec))
    except (ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    server = LiveServer(sandbox.wsgi_app, host=host, port=port)
    creds = sandbox.credentials
    info = sandbox.store.meta.get("company_info", {})
    click.echo(f"ConnectWise sandbox on {server.url}/{info.get('Codebase', '')}apis/3.0/")
    click.echo(f"  company id  {creds.get('company_id')}")
    click.echo(f"  public key  {creds.get('public_key')}")
    click.echo(f"  private key {creds.get('private_key')}")
    click.echo(f"  clientId    {creds.get('client_id')}")
    click.echo(f"  control     {server.url}/_sim/state")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
        sandbox.close()
