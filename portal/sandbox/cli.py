"""`portal sandbox`: the two simulators as commands, alone or together."""

from __future__ import annotations

import signal
import threading

import click


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_both(*, seed: int = 42, scale: int = 0, host: str = "127.0.0.1",
             cw_port: int = 5001, qbo_port: int = 5002) -> None:
    """Serve both sandboxes, loaded from one generated data set, until Ctrl+C or
    SIGTERM."""
    from portal.sandbox import connectwise, demo_data, quickbooks

    signal.signal(signal.SIGTERM, _interrupt)  # stop as Ctrl+C does
    data = demo_data.generate(seed=seed, scale=scale)
    cw = connectwise.serve(connectwise.ConnectWiseSandbox(data=data["connectwise"], seed=seed),
                           host=host, port=cw_port)
    qbo = quickbooks.serve(quickbooks.QuickBooksSandbox(data=data["quickbooks"], seed=seed),
                           host=host, port=qbo_port)
    click.echo(f"ConnectWise sandbox: {cw.url}")
    click.echo(f"QuickBooks sandbox:  {qbo.url}")
    click.echo("Press Ctrl+C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        cw.stop()
        qbo.stop()
