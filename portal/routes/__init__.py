"""Registers every blueprint and the error pages."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your role does not allow this page. Ask an admin if you need it."),
    404: ("Not found", "There is nothing at this address. Check the link or use the menu."),
    405: ("Not allowed", "This address does not accept that kind of request."),
    413: ("Too large", "The upload is larger than the portal accepts."),
    500: ("Something went wrong", "The error was logged. Try again; if it repeats, tell an "
                                  "admin the request id below."),
}


def init_app(app: Flask) -> None:
    from portal.routes import (audit, auth, batches, dashboard, health, mappings, placeholders,
                               runs, setup, users)
    from portal.routes import settings

    for blueprint in (auth.bp, dashboard.bp, health.bp, runs.bp, users.bp, audit.bp,
                      setup.bp, mappings.bp, batches.bp,
                      placeholders.email,
                      settings.bp):
        app.register_blueprint(blueprint)

    from portal.routes.nav import first_allowed, nav_items

    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["first_allowed"] = first_allowed
    app.jinja_env.globals["run_link"] = runs.run_link

    @app.context_processor
    def reconnect_banner():  # type: ignore[no-untyped-def]
        """Companies whose QuickBooks connection an admin must renew (shown on every page)."""
        from flask_login import current_user

        if not current_user.is_authenticated:
            return {"reconnect_needed": []}
        from portal.db import get_session
        from portal.services import qbo_setup

        return {"reconnect_needed": qbo_setup.needing_reconnect(get_session())}

    # The static route is public by design (htmx, CSS).
    app.view_functions["static"]._portal_public = True  # type: ignore[attr-defined]

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        code = error.code or 500
        if code == 429 or (code < 400):
            return error
        title, message = MESSAGES.get(code, (error.name, error.description or ""))
        template = "errors/_error.html" if request.headers.get("HX-Request") else \
            "errors/error.html"
        return render_template(template, code=code, title=title, message=message), code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error on %s", request.path)
        title, message = MESSAGES[500]
        template = "errors/_error.html" if request.headers.get("HX-Request") else \
            "errors/error.html"
        return render_template(template, code=500, title=title, message=message), 500
