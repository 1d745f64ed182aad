"""Every route declares who may use it: @role_required(...) or @public."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user

from portal.db import get_session
from portal.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])

ALL_ROLES = ("admin", "accountant", "viewer")


def role_required(*roles: str) -> Callable[[F], F]:
    """Allow signed-in users holding one of `roles`; others get 403 and an audit entry."""
    unknown = set(roles) - set(ALL_ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role.value not in roles:
                from flask import request

                from portal.services import audit

                session = get_session()
                audit.record(session, "authz.denied", result="denied",
                             target_type="endpoint", target_id=request.endpoint)
                session.commit()
                abort(403)
            return view(*args, **kwargs)

        wrapper._portal_roles = roles  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Mark a route that anonymous users may reach; it must do its own checks."""
    view._portal_public = True  # type: ignore[attr-defined]
    return view
