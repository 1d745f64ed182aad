"""Ask for the password again before actions that are hard to undo (SPEC 1.2).

One piece for every such action. Put the decorator under @role_required:

    @bp.post("/<int:batch_id>/clear")
    @role_required("admin")
    @reauth_required
    def clear(batch_id: int): ...

or, when only some requests need it (unbatching more than 10 records), call the helper
first thing in the view; it answers None when the action may go on:

    ids = request.form.getlist("item", type=int)
    if len(ids) > 10 and (prompt := reauth_prompt()) is not None:
        return prompt

Until the password was entered in the last 10 minutes, the answer is a prompt instead of
the action, and the prompt sends the action again once the password is right, so the
person carries on where they were:

- an htmx action: the prompt opens in #reauth-slot (HX-Retarget), and its form posts the
  same fields plus the password to the same URL; the answer replaces the element htmx
  targeted (by its id, outerHTML: how our rows and components swap) and the prompt closes;
- a plain form POST: the prompt page, whose form posts the same fields again;
- a link (GET, such as Connect to QuickBooks): the prompt page posts to reauth.confirm,
  which returns to the link.

The fields travel as hidden inputs, so any field that looks secret is left out: a form
that carries a key or a client secret asks for the password itself instead, with
`forms.ReauthForm`, whose check is `check_password` below.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    after_this_request,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from htmx_flask import make_response

from portal import sessions
from portal.db import get_session
from portal.htmx import is_fragment_request, local_path
from portal.routes import auth
from portal.routes.decorators import ALL_ROLES, role_required
from portal.services import audit, reauth

bp = Blueprint("reauth", __name__, url_prefix="/auth")

FIELD = "reauth_password"
SLOT = "reauth-slot"
F = TypeVar("F", bound=Callable[..., Any])


def is_recent() -> bool:
    """Whether the user entered their password in the last 10 minutes."""
    return reauth.is_recent(sessions.password_entered_at())


def check_password(password: str) -> str | None:
    """None when the action may go on (recent, or `password` is right); else why not.

    A right password is remembered for 10 minutes. The attempt is committed at once, so
    it stays in the audit log even if the action then fails and rolls back.
    """
    if is_recent():
        return None
    if not password:
        return "Enter your password to confirm."
    db = get_session()
    problem = reauth.confirm(db, current_user, password, hasher=auth.hasher(),
                             throttle=auth.throttle(), ip=request.remote_addr)
    db.commit()
    if problem is None:
        sessions.mark_password_entered()
    return problem


def reauth_prompt() -> Response | None:
    """None when the action may go on; else the prompt to answer with (see the module)."""
    password = request.form.get(FIELD, "") if request.method != "GET" else ""
    problem = check_password(password)
    if problem is None:
        if password and is_fragment_request():
            after_this_request(_close_prompt)
        return None
    return _prompt(problem if password else None)


def reauth_required(view: F) -> F:
    """Run the view only after a recent password entry; otherwise ask for it."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        prompt = reauth_prompt()
        return prompt if prompt is not None else view(*args, **kwargs)

    wrapper._portal_reauth = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _here() -> str:
    """This request's path and query (what a link re-opens)."""
    return request.full_path.rstrip("?")


def _back() -> str:
    """The page the person was on: where Cancel goes."""
    page = request.htmx.current_url if request.htmx else request.referrer  # type: ignore
    return local_path(page) or "/"


def _prompt(error: str | None) -> Response:
    hx = is_fragment_request()
    if request.method == "GET":
        action, fields = url_for("reauth.confirm", next=_here()), []
    else:
        action = _here()
        fields = [(k, v) for k, v in request.form.items(multi=True)
                  if k not in ("csrf_token", FIELD) and not audit.is_secret(k)]
    target = request.htmx.target if hx else None  # type: ignore[attr-defined]
    context = {"action": action, "fields": fields, "error": error, "back": _back(), "hx": hx,
               "hx_target": f"#{target}" if target and target != SLOT else f"#{SLOT}",
               "hx_swap": "outerHTML" if target and target != SLOT else "innerHTML"}
    status = 422 if error else 200
    if hx:
        return make_response(render_template("auth/_reauth.html", **context), status,
                             retarget=f"#{SLOT}", reswap="innerHTML")
    return make_response(render_template("auth/reauth.html", **context), status)


def _close_prompt(response: Response) -> Response:
    """Empty the prompt's slot along with the action's own answer (out of band)."""
    if response.mimetype == "text/html" and not response.direct_passthrough:
        response.set_data(response.get_data() +
                          f'<div id="{SLOT}" hx-swap-oob="true"></div>'.encode())
    return response


@bp.post("/confirm")
@role_required(*ALL_ROLES)
def confirm():  # type: ignore[no-untyped-def]
    """The prompt of a link: check the password, then open the link (`next`)."""
    target = local_path(request.args.get("next")) or "/"
    problem = check_password(request.form.get(FIELD, ""))
    if problem is not None:
        return _prompt(problem)
    if request.htmx:  # type: ignore[attr-defined]
        return make_response("", 200, redirect=target)
    return redirect(target, 303)
