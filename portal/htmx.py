"""Full page or fragment, decided in one place; htmx-aware 401 and CSRF answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from htmx_flask import make_response
from jinja2_fragments.flask import render_block

from portal.extensions import login_manager


def is_fragment_request() -> bool:
    """True when htmx swaps part of a page: not boosted, not a history restore."""
    hx = request.htmx  # type: ignore[attr-defined]
    return bool(hx) and not (hx.boosted or hx.history_restore_request)


def render(template: str, block: str | None = None, **context: Any) -> str:
    """The whole page, or just `block` when htmx is swapping that region in place."""
    if block and is_fragment_request():
        return render_block(template, block, **context)
    return render_template(template, **context)


def poll(template: str, block: str, *, active: bool, event: str, **context: Any) -> Response:
    """Answer a polling request; the last answer stops polling (286) and announces `event`.

    The caller passes `active` from the run's state, so the final render both loses its
    `hx-trigger` and tells listeners (`event from:body`) exactly once.
    """
    if not is_fragment_request():
        return make_response(render_template(template, **context))
    body = render_block(template, block, **context)
    if active:
        return make_response(body)
    return make_response(body, 286, trigger=event)


def local_path(url: str | None) -> str | None:
    """The path and query of `url` if it points at this site, else None (no open redirect)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[" and the like: nowhere to go back to
        return None
    if parts.netloc and parts.netloc != request.host:
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _unauthorized() -> Response:
    from flask import session

    expired = bool(getattr(session, "expired", False))
    if request.htmx:  # type: ignore[attr-defined]
        target = local_path(request.htmx.current_url) or "/"  # type: ignore[attr-defined]
        login = url_for("auth.login", next=target, expired=1 if expired else None)
        return make_response("", 401, redirect=login)
    if expired:
        flash("Your session has ended; please sign in again.", "info")
    return redirect(url_for("auth.login", next=local_path(request.full_path.rstrip("?"))))


def _csrf_error(error: CSRFError) -> Response | tuple[str, int]:
    if request.htmx:  # type: ignore[attr-defined]
        return make_response("", 400, refresh=True)
    return render_template("errors/error.html", code=400, title="The form has expired",
                           message="This form was open too long or came from another page. "
                                   "Go back, reload the page and try again."), 400


def init_app(app: Flask) -> None:
    login_manager.unauthorized_handler(_unauthorized)
    app.register_error_handler(CSRFError, _csrf_error)

    @app.after_request
    def vary_on_htmx(response: Response) -> Response:
        response.vary.add("HX-Request")
        return response
