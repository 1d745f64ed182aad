"""Local QuickBooks Online sandbox: the Accounting API v3 and Intuit OAuth 2.0, with fault injection."""

from __future__ import annotations

from ..common import LiveServer
from .sandbox import QuickBooksSandbox, default_data

__all__ = ["QuickBooksSandbox", "serve", "default_data"]


def serve(sandbox: QuickBooksSandbox, host: str = "127.0.0.1", port: int = 0) -> LiveServer:
    """Start the sandbox on a real loopback port (in a thread) and point its URLs at it."""
    server = LiveServer(sandbox.wsgi_app, host=host, port=port).start()
    sandbox.set_public_url(server.url)
    return server
