"""The QuickBooks-specific `/_sim/` endpoints around `common.control`."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from ..common import control, json_response
from . import switches as switch_rules
from .pages import control_page, mailbox_page
from .store import Event


def handle(sb: Any, request: Request) -> Response:
    """Answer /_sim/…; unknown paths get 404."""
    path = request.path.rstrip("/")
    method = request.method
    if path == "/_sim":
        return control_page(sb)
    if path == "/_sim/outbox":
        if method == "DELETE":
            sb.outbox.clear()
            return Response(status=204)
        return json_response({"messages": list(sb.outbox)})
    if path in ("/_sim/mailbox", "/_sim/mailbox.json"):
        return _mailbox(sb, request, path.endswith(".json"))
    if path == "/_sim/webhooks":
        if method == "POST":
            payload = request.get_json(silent=True) or {}
            sb.webhooks.configure(payload.get("url"), payload.get("verifier_token"),
                                  **{k: v for k, v in payload.items() if k in ("format", "entities")})
        elif method == "DELETE":
            sb.webhooks.configure(None, None)
        return json_response({"config": sb.webhooks.config, "deliveries": sb.webhooks.deliveries})
    if path == "/_sim/webhooks/fire" and method == "POST":
        return _fire(sb, request)
    if path == "/_sim/switches":
        if method == "POST":
            try:
                for name, value in (request.get_json(silent=True) or {}).items():
                    sb.switches[name] = switch_rules.coerce(name, value)
            except (KeyError, ValueError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(sb.switches)
    if path == "/_sim/state":
        realm = request.args.get("realmId")
        data = sb.dump()
        if realm:
            data["companies"] = [c for c in data["companies"] if c["realmId"] == realm]
        return json_response(data)
    if path == "/_sim/apps" and method == "POST":
        payload = request.get_json(silent=True) or {}
        try:
            sb.oauth.add_app(payload)
        except KeyError as exc:
            return json_response({"error": f"missing {exc}"}, 400)
        return json_response({"apps": list(sb.oauth.state.apps.values())}, 201)
    if path == "/_sim/settings" and method == "POST":
        payload = request.get_json(silent=True) or {}
        try:
            sb.update_settings(str(request.args.get("realmId") or sb.default_realm()), payload)
        except KeyError as exc:
            return json_response({"error": str(exc)}, 404)
        return json_response({"ok": True})
    answer = control(request, sb.clock, sb.faults, sb.log, reset=sb.reset)
    return answer if answer is not None else json_response({"error": "unknown control path"}, 404)


def _fire(sb: Any, request: Request) -> Response:
    """Send a webhook now, for an object named in the body (or the last changed invoice)."""
    payload = request.get_json(silent=True) or {}
    realm = str(payload.get("realmId") or sb.default_realm())
    event = Event(realm, str(payload.get("entity", "Invoice")), str(payload.get("id", "1")),
                  str(payload.get("operation", "Update")), sb.clock.now())
    record = sb.webhooks.deliver([event])
    return json_response(record, 200 if record.get("status") else 502)


def _mailbox(sb: Any, request: Request, as_json: bool) -> Response:
    """What the local SMTP sink received (`portal demo` attaches it as `sb.mailbox`)."""
    box = getattr(sb, "mailbox", None)
    if request.method == "DELETE" and box is not None:
        box.clear()
        return Response(status=204)
    messages = box.messages() if box is not None else []
    if as_json:
        return json_response({"attached": box is not None, "messages": messages})
    return mailbox_page(messages, box is not None)
