"""Who is calling: Basic `company+public:private`, the clientId header, role and System Level."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from .errors import CwError

if TYPE_CHECKING:
    from .sandbox import ConnectWiseSandbox


def _not_authenticated(sandbox: "ConnectWiseSandbox") -> CwError:
    """401 with the real UserNotAuthenticated body; 404 on cloud (CW-REF §24.8)."""
    if sandbox.switches.get("cw_cloud_mode"):
        return CwError(404, "NotFound", "The requested resource was not found.")
    return CwError(401, "ConnectWiseApi", "UserNotAuthenticated")


def check_client_id(sandbox: "ConnectWiseSandbox", request: Request) -> None:
    """Refuse a missing or unregistered clientId when `cw_require_client_id` is on."""
    if not sandbox.switches.get("cw_require_client_id"):
        return
    client_id = request.headers.get("clientId", "").strip()
    known = {c.casefold() for c in sandbox.store.meta.get("client_ids", [])}
    status = int(sandbox.switches.get("cw_client_id_status") or 401)
    if not client_id:
        raise CwError(status, "Unauthorized", "clientId header is required.")
    if client_id.casefold() not in known:
        raise CwError(status, "Unauthorized", f"clientId '{client_id}' is not valid.")


def authenticate(sandbox: "ConnectWiseSandbox", request: Request) -> dict[str, Any]:
    """The API member behind the Basic credentials, or a 401/404 error."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise _not_authenticated(sandbox)
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _not_authenticated(sandbox) from None
    user, _, private = decoded.partition(":")
    company, _, public = user.partition("+")
    meta = sandbox.store.meta
    if company.casefold() != str(meta.get("company_info", {}).get("CompanyID", "")).casefold():
        raise _not_authenticated(sandbox)
    for key in meta.get("api_keys", []):
        if key.get("public_key") == public and key.get("private_key") == private:
            member = sandbox.store.get("members", int(key["member_id"]))
            if member is None or member.get("inactiveFlag"):
                break
            return member
    raise _not_authenticated(sandbox)


def role_of(sandbox: "ConnectWiseSandbox", member: dict[str, Any]) -> dict[str, list[str]]:
    """The permissions of the member's security role."""
    name = (member.get("securityRole") or {}).get("name", "")
    return sandbox.store.meta.get("roles", {}).get(name, {})


def visible_locations(sandbox: "ConnectWiseSandbox", member: dict[str, Any]) -> set[int] | None:
    """None (everything) at System Level 1; otherwise only the member's security location."""
    if int(member.get("_systemLevel") or 1) <= 1:
        return None
    location = (member.get("securityLocation") or member.get("defaultLocation") or {}).get("id")
    return {location} if location is not None else set()
