"""Registers every blueprint and the error pages."""

from __future__ import annotations

from flask import Flask, g, render_template, request
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
    from portal.routes import params

    params.init_app(app)  # before the blueprints: their rules bind the int converter

    from portal.routes import (
        attention,
        audit,
        auth,
        batches,
        dashboard,
        health,
        autosync,
        email,
        mappings,
        payments,
        reauth,
        runs,
        settings,
        setup,
        unbatch,
        users,
    )

    for blueprint in (auth.bp, reauth.bp, dashboard.bp, health.bp, runs.bp, users.bp, audit.bp,
                      setup.bp, mappings.bp, unbatch.bp, batches.bp, payments.bp,
                      payments.hooks, email.bp, autosync.bp, attention.bp,
                      settings.bp):
        app.register_blueprint(blueprint)

    from portal.routes.nav import first_allowed, nav_items

    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["password_recent"] = reauth.is_recent
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
        _rollback()
        title, message = MESSAGES.get(code, (error.name, error.description or ""))
        if error.description and error.description != type(error).description:
            message = error.description  # abort(code, "what is wrong and how to fix it")
        return _error_page(code, title, message)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error on %s", request.path)
        _rollback()
        return _error_page(500, *MESSAGES[500])


def _rollback() -> None:
    """End the request's transaction before the error page queries anything.

    After a database error PostgreSQL refuses every further statement of the transaction,
    the error page's own (the reconnect banner) included, which left a bare 500.
    """
    session = g.get("db_session")
    if session is not None:
        session.rollback()  # objects reload on next use, current_user included


def _error_page(code: int, title: str, message: str):  # type: ignore[no-untyped-def]
    template = "errors/_error.html" if request.headers.get("HX-Request") else \
        "errors/error.html"
    return render_template(template, code=code, title=title, message=message), code
