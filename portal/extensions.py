"""Extension singletons: CSRF protection, htmx request headers, flask-login."""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

csrf = CSRFProtect()
htmx = Htmx()
login_manager = LoginManager()


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session is rotated at login
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"

    from portal.services import users

    login_manager.user_loader(users.load_user)
    if app.config.get("PROXY_FIX"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore
