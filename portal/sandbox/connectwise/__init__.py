"""A local ConnectWise PSA REST API for demos, tests and benchmarks (see SPEC §17)."""

from __future__ import annotations

from ..common import LiveServer
from .sandbox import ConnectWiseSandbox

__all__ = ["ConnectWiseSandbox", "serve"]


def serve(sandbox: ConnectWiseSandbox, host: str = "127.0.0.1", port: int = 0) -> LiveServer:
    """Start the sandbox as a real HTTP server on a loopback port (a daemon thread)."""
    return LiveServer(sandbox.wsgi_app, host=host, port=port).start()
