"""Admin-only user management: create, change role, disable, reset link, end sessions."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from htmx_flask import make_response

from portal import sessions as portal_sessions
from portal.db import get_session
from portal.htmx import render
from portal.models import Role, User, UserSession
from portal.routes.decorators import role_required
from portal.routes.forms import RoleForm, UserCreateForm
from portal.routes.reauth import reauth_prompt
from portal.services import users

bp = Blueprint("users", __name__, url_prefix="/users")


def _get_user(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _list_context(**extra):  # type: ignore[no-untyped-def]
    session = get_session()
    rows = list(session.scalars(sa.select(User).order_by(User.email)))
    counts = dict(session.execute(sa.select(UserSession.user_id, sa.func.count())
                                  .where(UserSession.user_id.is_not(None))
                                  .group_by(UserSession.user_id)).all())
    return {"users": rows, "session_counts": counts, "role_form": RoleForm(),
            "created": None, "reset_link": None, **extra}


@bp.get("/")
@role_required("admin")
def index():  # type: ignore[no-untyped-def]
    return render("users/index.html", "users_table", form=UserCreateForm(), **_list_context())


@bp.post("/")
@role_required("admin")
def create():  # type: ignore[no-untyped-def]
    """Invite a user: the account is created and a one-time reset link is shown."""
    session = get_session()
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = users.create(session, email=form.email.data or "", name=form.name.data or "",
                                role=Role(form.role.data), password=None)
            token = users.create_reset(session, user, by=current_user)
        except users.UserError as exc:
            session.rollback()
            form.email.errors = [*form.email.errors, str(exc)]
        else:
            session.commit()
            link = url_for("auth.reset", token=token, _external=True)
            return render("users/index.html", "users_page", form=UserCreateForm(formdata=None),
                          **_list_context(created=user, reset_link=link)), 201
    return render("users/index.html", "users_page", form=form, **_list_context()), 422


def _row(user: User, status: int = 200, error: str | None = None):  # type: ignore[no-untyped-def]
    session = get_session()
    count = session.scalar(sa.select(sa.func.count()).select_from(UserSession)
                           .where(UserSession.user_id == user.id)) or 0
    body = render("users/_row.html", user=user, session_count=count, role_form=RoleForm(),
                  error=error)
    return make_response(body, status)


@bp.post("/<int:user_id>/role")
@role_required("admin")
def role(user_id: int):  # type: ignore[no-untyped-def]
    """Change a role (password asked again); the user is signed out everywhere.

    Changing one's own role reloads the page, so the menu and badge show the new role at
    once; this session goes on under a new token.
    """
    session = get_session()
    user = _get_user(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _row(user, 422, "Choose admin, accountant or viewer.")
    new = Role(form.role.data)
    if new == user.role:
        return _row(user)
    if (prompt := reauth_prompt()) is not None:
        return prompt
    try:
        users.change_role(session, user, new, by=current_user)
    except users.UserError as exc:
        session.rollback()
        return _row(_get_user(user_id), 409, str(exc))
    session.commit()
    if user.id != current_user.id:
        return _row(user)
    portal_sessions.rotate()  # change_role ended every session of the user, this one too
    flash(f"Your role is now {new.label}.", "success")
    target = url_for("users.index" if new is Role.ADMIN else "dashboard.index")
    if request.htmx:  # type: ignore[attr-defined]
        return make_response("", 200, redirect=target)
    return redirect(target, 303)


@bp.post("/<int:user_id>/active")
@role_required("admin")
def active(user_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _get_user(user_id)
    want = request.form.get("active") == "1"
    if user.active and not want and (prompt := reauth_prompt()) is not None:
        return prompt  # disabling asks for the password again
    try:
        users.set_active(session, user, want, by=current_user)
    except users.UserError as exc:
        session.rollback()
        return _row(_get_user(user_id), 409, str(exc))
    session.commit()
    return _row(user)


@bp.post("/<int:user_id>/reset")
@role_required("admin")
def reset(user_id: int):  # type: ignore[no-untyped-def]
    """Make a single-use reset link and show it once; SMTP delivery comes with email."""
    session = get_session()
    user = _get_user(user_id)
    if not user.active:
        return _row(user, 409, "Enable the account before sending a reset link.")
    token = users.create_reset(session, user, by=current_user)
    session.commit()
    link = url_for("auth.reset", token=token, _external=True)
    return render("users/_reset_link.html", user=user, reset_link=link)


@bp.post("/<int:user_id>/sessions/end")
@role_required("admin")
def end_sessions(user_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    user = _get_user(user_id)
    from portal.services import audit

    ended = users.end_sessions(session, user)
    audit.record(session, "user.sessions_end", target=user, after={"ended": ended})
    session.commit()
    if user.id == current_user.id:
        flash("Your own sessions were ended; sign in again.", "info")
        return make_response("", 204, redirect=url_for("auth.login"))
    return _row(user)


@bp.get("/sessions")
@role_required("admin")
def sessions():  # type: ignore[no-untyped-def]
    """Every signed-in session: who, from where, with what, last seen."""
    rows = list(get_session().scalars(
        sa.select(UserSession).where(UserSession.user_id.is_not(None))
        .order_by(UserSession.last_seen_at.desc()).limit(500)))
    from flask import session as flask_session

    current = getattr(flask_session, "token", None)
    from portal.sessions import hash_token

    return render("users/sessions.html", "sessions_table", sessions=rows,
                  current_hash=hash_token(current) if current else None)


@bp.post("/sessions/<int:session_id>/end")
@role_required("admin")
def end_session(session_id: int):  # type: ignore[no-untyped-def]
    """End one session; its row disappears from the table."""
    from portal.services import audit

    db = get_session()
    row = db.get(UserSession, session_id)
    if row is None or row.user_id is None:
        abort(404)
    audit.record(db, "user.session_end", target_type="user_account", target_id=row.user_id,
                 after={"session": row.id})
    db.delete(row)
    db.commit()
    return ""
