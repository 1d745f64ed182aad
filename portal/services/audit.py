"""The one helper every mutating action calls to write the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy.orm import Session

from portal.models import AuditEvent

# Fields whose values never reach the log: shown as {"secret": true, "changed": ...}.
SECRET_FIELDS = frozenset({
    "password", "password_hash", "new_password", "private_key", "cw_private_key",
    "client_secret", "qbo_client_secret", "access_token", "refresh_token", "id_token",
    "token", "token_hash", "verifier_token", "webhook_verifier_token", "smtp_password",
    "secret", "api_key", "encryption_key", "secret_key",
})


def is_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_FIELDS or lowered.endswith(("_secret", "_token", "_password"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value"), (str, int)):
        return value.value  # enums
    return str(value)


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
         ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Keep the changed keys only, with secrets masked on both sides."""
    before = dict(before or {})
    after = dict(after or {})
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)
            or (k in before) != (k in after)]
    if not before:
        keys = list(after)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key in keys:
        if is_secret(key):
            changed = before.get(key) != after.get(key)
            if key in before:
                old[key] = {"secret": True, "changed": changed}
            if key in after:
                new[key] = {"secret": True, "changed": changed}
            continue
        if key in before:
            old[key] = _jsonable(before[key])
        if key in after:
            new[key] = _jsonable(after[key])
    return (old or None), (new or None)


def record(session: Session, action: str, *, target: Any = None, target_type: str | None = None,
           target_id: Any = None, before: Mapping[str, Any] | None = None,
           after: Mapping[str, Any] | None = None, company_id: int | None = None,
           result: str = "ok", actor: str | None = None, user_id: int | None = None) -> AuditEvent:
    """Add an audit event to the session (the caller commits with its own change).

    `actor` defaults to the signed-in user (or "cli" outside a request). Only changed keys
    are kept; secret fields are masked, never stored.
    """
    if target is not None:
        target_type = target_type or getattr(target, "__tablename__", type(target).__name__)
        target_id = target_id if target_id is not None else getattr(target, "id", None)
    ip = request_id = None
    if has_request_context():
        ip = request.remote_addr
        request_id = g.get("request_id")
        if actor is None and current_user and current_user.is_authenticated:
            actor, user_id = current_user.email, current_user.id
    old, new = diff(before, after)
    event = AuditEvent(actor=(actor or "cli")[:120], user_id=user_id, ip=ip, action=action,
                       company_id=company_id, target_type=target_type,
                       target_id=None if target_id is None else str(target_id)[:80],
                       before=old, after=new, request_id=request_id, result=result)
    session.add(event)
    return event
