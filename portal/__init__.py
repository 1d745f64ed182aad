"""portal: posts ConnectWise PSA accounting to QuickBooks Online and brings payments back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal. Given test_config, settings come from it, not from PORTAL_*.

    The factory touches neither the database nor the network, so `portal --help`, tests
    and gunicorn's import stay cheap.
    """
    from portal import (
        config,
        db,
        extensions,
        formatting,
        htmx,
        jobs,
        logs,
        routes,
        security,
        sessions,
    )

    app = Flask(__name__, instance_path=os.environ.get("PORTAL_INSTANCE_PATH") or None)
    config.load(app, test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    for module in (logs, extensions, db, sessions, jobs, security, htmx, formatting, routes):
        module.init_app(app)
    return app
