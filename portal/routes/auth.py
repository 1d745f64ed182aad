"""Sign in, sign out, forgotten passwords and the reset-link page."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from portal import jobs, sessions
from portal.db import get_session
from portal.htmx import local_path
from portal.routes.decorators import ALL_ROLES, public, role_required
from portal.routes.forms import ForgotForm, LoginForm, ResetForm
from portal.services import audit, passwords, users
from portal.services.throttle import LoginThrottle

bp = Blueprint("auth", __name__, url_prefix="/auth")

INVALID = "Invalid email or password."


def throttle(scope: str = "login") -> LoginThrottle:
    """The app's throttle for one door (`login`, `forgot`), with the sign-in limits."""
    app, key = current_app, f"portal.throttle.{scope}"
    if key not in app.extensions:
        app.extensions[key] = LoginThrottle(
            jobs.get_redis(), app.config["LOGIN_LIMIT_ACCOUNT"], app.config["LOGIN_LIMIT_IP"],
            scope=scope)
    return app.extensions[key]


def hasher() -> passwords.Hasher:
    app = current_app
    if "portal.hasher" not in app.extensions:
        app.extensions["portal.hasher"] = passwords.hasher_for(app.config)
    return app.extensions["portal.hasher"]


@bp.route("/login", methods=["GET", "POST"])
@public
def login():  # type: ignore[no-untyped-def]
    """Sign in by email and password; every attempt is throttled and audited."""
    db = get_session()
    target = local_path(request.args.get("next")) or url_for("dashboard.index")
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    no_users = users.count(db) == 0
    status = 200
    if request.method == "GET":
        if request.args.get("expired"):
            flash("Your session has ended; please sign in again.", "info")
        elif request.args.get("signed_out"):
            flash("You have signed out.", "info")
    if form.validate_on_submit():
        email = users.normalise_email(form.email.data or "")
        verdict = throttle().check(email, request.remote_addr)
        if not verdict.allowed:
            audit.record(db, "auth.lockout", result="denied", actor=email or "anonymous",
                         target_type="user", target_id=email)
            db.commit()
            form.form_errors.append(f"Too many attempts; try again in "
                                    f"{verdict.retry_after_minutes} minutes.")
            return render_template("auth/login.html", form=form, no_users=no_users), 429
        user = users.authenticate(db, email, form.password.data or "", hasher())
        if user is None:
            throttle().record(email, request.remote_addr)  # only failures count
            audit.record(db, "auth.login", result="denied", actor=email or "anonymous",
                         target_type="user", target_id=email)
            db.commit()
            form.form_errors.append(INVALID)  # a page, not an HTTP auth challenge: 200
        else:
            sessions.rotate()
            sessions.purge_expired(db)
            login_user(user)
            sessions.mark_password_entered()  # counts as re-authentication for 10 minutes
            audit.record(db, "auth.login", target=user, actor=user.email, user_id=user.id)
            db.commit()
            return redirect(target, 303)
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form, no_users=no_users), status


@bp.post("/logout")
@role_required(*ALL_ROLES)
def logout():  # type: ignore[no-untyped-def]
    db = get_session()
    audit.record(db, "auth.logout", target=current_user._get_current_object())
    db.commit()
    logout_user()
    sessions.destroy()  # the session (and any flash in it) is gone: say it in the URL
    return redirect(url_for("auth.login", signed_out=1), 303)


@bp.route("/forgot", methods=["GET", "POST"])
@public
def forgot():  # type: ignore[no-untyped-def]
    """Ask for a reset link: throttled like sign-in, audited, one answer for every address."""
    db = get_session()
    form = ForgotForm()
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("auth/forgot.html", form=form, asked=False), status
    email = users.normalise_email(form.email.data or "")
    door = throttle("forgot")
    verdict = door.check(email, request.remote_addr)
    if not verdict.allowed:
        audit.record(db, "auth.forgot", result="denied", actor=email, target_type="user",
                     target_id=email)
        db.commit()
        form.form_errors.append(f"Too many requests; try again in "
                                f"{verdict.retry_after_minutes} minutes.")
        return render_template("auth/forgot.html", form=form, asked=False), 429
    door.record(email, request.remote_addr)
    users.request_reset(db, email)
    db.commit()
    return render_template("auth/forgot.html", form=form, asked=True)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
def reset(token: str):  # type: ignore[no-untyped-def]
    """Set a new password from a single-use link an admin handed over."""
    db = get_session()
    row = users.find_reset(db, token)
    if row is None:
        return render_template("auth/reset_invalid.html"), 404
    form = ResetForm()
    status = 200
    if form.validate_on_submit():
        try:
            users.complete_reset(db, row, form.password.data or "", hasher())
        except users.UserError as exc:
            form.password.errors = [*form.password.errors, str(exc)]
            status = 422
        else:
            db.commit()
            if current_user.is_authenticated:
                logout_user()
                session.clear()
            flash("Your password is set; sign in with it now.", "success")
            return redirect(url_for("auth.login"), 303)
    elif request.method == "POST":
        status = 422
    return render_template("auth/reset.html", form=form, email=row.user.email), status
