"""`portal sandbox quickbooks`: run the QuickBooks sandbox as a standalone HTTP server."""

from __future__ import annotations

import json
from typing import Any

import click

from ..common import LiveServer, SimClock
from .sandbox import QuickBooksSandbox
from .switches import parse_assignment


@click.command("quickbooks")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5002, show_default=True, type=int)
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False), help="JSON data set.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False), help="Persist state to this file.")
@click.option("--speed", default=1.0, show_default=True, type=float, help="Sandbox clock speed.")
@click.option("--seed", default=0, show_default=True, type=int, help="Fault randomness seed.")
@click.option("--fault", "fault_specs", multiple=True, help="Fault rule as JSON (repeatable).")
@click.option("--switch", "switch_specs", multiple=True, help="sim.* switch as name=value (repeatable).")
def quickbooks(host: str, port: int, data_path: str | None, state_path: str | None, speed: float, seed: int,
            fault_specs: tuple[str, ...], switch_specs: tuple[str, ...]) -> None:
    """Serve a local QuickBooks Online (Accounting API + OAuth) until interrupted."""
    switches: dict[str, Any] = {}
    for spec in switch_specs:
        try:
            name, value = parse_assignment(spec)
        except (KeyError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--switch") from exc
        switches[name] = value
    data = None
    if data_path:
        with open(data_path, encoding="utf-8") as handle:
            data = json.load(handle)
    sandbox = QuickBooksSandbox(data=data, state_path=state_path, clock=SimClock(speed=speed), seed=seed,
                                switches=switches)
    for spec in fault_specs:
        try:
            sandbox.faults.add(dict(json.loads(spec), target=json.loads(spec).get("target", "qbo")))
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(str(exc), param_hint="--fault") from exc
    server = LiveServer(sandbox.wsgi_app, host=host, port=port)
    sandbox.set_public_url(server.url)
    click.echo(f"QuickBooks sandbox on {server.url}")
    click.echo(f"Discovery document: {sandbox.discovery_url()}")
    click.echo(f"Control page: {server.url}/_sim/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.save()
