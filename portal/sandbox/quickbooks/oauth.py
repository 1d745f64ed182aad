"""Intuit OAuth 2.0 stand-in: discovery, consent page, token endpoint with rotation, revoke."""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
from typing import Any, Callable
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from .idtoken import Signer
from .store import OAuthState

INVALID_GRANT = {"error_description": "Token invalid", "error": "invalid_grant"}
DEFAULT_APP = {"client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret",
               "redirect_uris": ["http://127.0.0.1:5000/setup/quickbooks/callback",
                                 "http://localhost:5000/setup/quickbooks/callback"]}
CODE_SECONDS = 600
ROTATE_AFTER_SECONDS = 86400


def discovery_document(base: str) -> dict[str, Any]:
    """Same keys as Intuit's openid_sandbox_configuration, pointing back at this server."""
    return {
        "issuer": f"{base}/op/v1",
        "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
        "jwks_uri": f"{base}/op/v1/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone",
                             "com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-cache, no-store", "Pragma": "no-cache",
                             "intuit_tid": secrets.token_hex(8)})


class OAuthService:
    """Apps, authorization codes and tokens, all timed on the sandbox clock."""

    def __init__(self, now: Callable[[], float], switches: dict[str, Any],
                 companies: Callable[[], list[tuple[str, str]]]) -> None:
        self.now = now
        self.switches = switches
        self.companies = companies
        self.state = OAuthState()
        self.lock = threading.RLock()
        self.signer = Signer()
        self.issuer = ""

    # apps ------------------------------------------------------------------------------------------
    def set_apps(self, apps: list[dict[str, Any]] | None) -> None:
        """Register the demo app plus the data set's apps."""
        with self.lock:
            self.state.apps = {}
            for app in [DEFAULT_APP, *(apps or [])]:
                self.add_app(app)

    def add_app(self, app: dict[str, Any]) -> None:
        """Register (or replace) one app's credentials and redirect URIs."""
        with self.lock:
            self.state.apps[str(app["client_id"])] = {
                "client_id": str(app["client_id"]), "client_secret": str(app["client_secret"]),
                "redirect_uris": [str(u) for u in app.get("redirect_uris", [])]}

    def _client(self, request: Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        client_id = secret = None
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        app = self.state.apps.get(client_id or "")
        if app is None or not secrets.compare_digest(app["client_secret"], secret or ""):
            return None
        return app

    # consent ----------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> Response:
        """GET shows the consent page; POST (Allow/Deny) redirects back to the app."""
        source = request.form if request.method == "POST" else request.args
        client_id, redirect_uri = source.get("client_id", ""), source.get("redirect_uri", "")
        app = self.state.apps.get(client_id)
        if app is None:
            return _error_page("Unknown client_id: this app is not registered in the sandbox.")
        if redirect_uri not in app["redirect_uris"]:
            return _error_page("The redirect_uri does not match a redirect URI registered for this app.")
        if source.get("response_type", "code") != "code":
            return _error_page("response_type must be code.")
        if request.method == "GET":
            return Response(self._consent_html(source), mimetype="text/html")
        state = source.get("state", "")
        if source.get("decision") != "allow":
            return _redirect(redirect_uri, {"error": "access_denied", "state": state})
        realm = source.get("realmId", "")
        if realm not in {r for r, _ in self.companies()}:
            return _error_page("Pick a sandbox company to connect.")
        code = "AB11" + secrets.token_urlsafe(36)
        with self.lock:
            self.state.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                      "realm": realm, "scope": source.get("scope", ""),
                                      "expires": self.now() + CODE_SECONDS}
        return _redirect(redirect_uri, {"code": code, "state": state, "realmId": realm})

    def _consent_html(self, args: Any) -> str:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(args.get(k, ""))}">'
                         for k in ("client_id", "redirect_uri", "response_type", "scope", "state"))
        options = "".join(f'<option value="{html.escape(r)}">{html.escape(n)} ({html.escape(r)})</option>'
                          for r, n in self.companies())
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in args.get("scope", "").split())
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Connect to QuickBooks (sandbox)</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:3em auto}}button{{margin-right:1em;padding:.5em 1.5em}}</style>
</head><body><h1>Intuit sandbox</h1>
<p>The app <strong>{html.escape(args.get("client_id", ""))}</strong> wants to connect to a QuickBooks company and asks for:</p>
<ul>{scopes}</ul>
<form method="post" action="">{hidden}
<label for="realmId">Company</label> <select id="realmId" name="realmId">{options}</select>
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></p></form></body></html>"""

    # tokens ---------------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        """The token endpoint: authorization_code and refresh_token grants, Basic client auth."""
        app = self._client(request)
        if app is None:
            return _json({"error": "invalid_client"}, 401)
        grant = request.form.get("grant_type")
        hard = request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true"
        with self.lock:
            if grant == "authorization_code":
                return self._exchange(app, request.form.get("code", ""),
                                      request.form.get("redirect_uri", ""), hard)
            if grant == "refresh_token":
                return self._refresh(app, request.form.get("refresh_token", ""), hard)
        return _json({"error": "unsupported_grant_type"}, 400)

    def _exchange(self, app: dict[str, Any], code: str, redirect_uri: str, hard: bool) -> Response:
        grant = self.state.codes.pop(code, None)
        if grant is None or grant["client_id"] != app["client_id"] or \
                grant["redirect_uri"] != redirect_uri or grant["expires"] < self.now():
            return _json(INVALID_GRANT, 400)
        now = self.now()
        refresh = self._new_refresh(app["client_id"], grant["realm"], grant["scope"],
                                    hard_expires=now + float(self.switches["sim.qbo_refresh_token_hard_seconds"]))
        return self._answer(refresh, hard)

    def _refresh(self, app: dict[str, Any], value: str, hard: bool) -> Response:
        now = self.now()
        record = self.state.refresh.get(value)
        if record is None or record["client_id"] != app["client_id"] or record.get("revoked") \
                or record["expires"] < now or record["hard_expires"] < now:
            return _json(INVALID_GRANT, 400)
        if record.get("rotated_at") is not None:
            grace = float(self.switches["sim.qbo_old_refresh_token_grace_seconds"])
            successor = self.state.refresh.get(record.get("successor", ""))
            if now - record["rotated_at"] > grace or successor is None or successor.get("revoked"):
                return _json(INVALID_GRANT, 400)
            return self._answer(self._extend(successor), hard)
        rotate = self.switches["sim.qbo_refresh_rotation"] == "every" or \
            now - record["issued"] >= ROTATE_AFTER_SECONDS
        if not rotate:
            return self._answer(self._extend(record), hard)
        successor = self._new_refresh(record["client_id"], record["realm"], record["scope"],
                                      hard_expires=record["hard_expires"])
        record["rotated_at"] = now
        record["successor"] = successor["token"]
        return self._answer(successor, hard)

    def _extend(self, record: dict[str, Any]) -> dict[str, Any]:
        record["expires"] = self.now() + float(self.switches["sim.qbo_refresh_token_seconds"])
        return record

    def _new_refresh(self, client_id: str, realm: str, scope: str, hard_expires: float) -> dict[str, Any]:
        now = self.now()
        value = f"RT1-{secrets.randbelow(90) + 10}-H3-{int(now)}" + secrets.token_hex(10)
        record = {"token": value, "client_id": client_id, "realm": realm, "scope": scope,
                  "issued": now, "expires": now + float(self.switches["sim.qbo_refresh_token_seconds"]),
                  "hard_expires": hard_expires, "rotated_at": None}
        self.state.refresh[value] = record
        return record

    def _answer(self, refresh: dict[str, Any], hard: bool) -> Response:
        now = self.now()
        access = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(48)
        lifetime = int(self.switches["sim.qbo_access_token_seconds"])
        self.state.access[access] = {"realm": refresh["realm"], "client_id": refresh["client_id"],
                                     "expires": now + lifetime, "refresh": refresh["token"]}
        body: dict[str, Any] = {"access_token": access, "refresh_token": refresh["token"],
                                "token_type": "bearer", "expires_in": lifetime,
                                "x_refresh_token_expires_in": int(refresh["expires"] - now)}
        if hard:
            body["x_refresh_token_hard_expires_in"] = int(refresh["hard_expires"] - now)
        if "openid" in str(refresh.get("scope", "")).split():
            id_token = self.signer.sign(self.issuer, refresh["client_id"], refresh["realm"])
            if id_token:
                body["id_token"] = id_token
        return _json(body)

    def revoke(self, request: Request) -> Response:
        """Revoking either token ends the whole grant (its refresh and access tokens)."""
        app = self._client(request)
        if app is None:
            return _json({"error": "invalid_client"}, 401)
        payload = request.get_json(silent=True) or {}
        value = str(payload.get("token") or request.form.get("token") or "")
        with self.lock:
            record = self.state.refresh.get(value)
            access = self.state.access.get(value)
            realm = (record or access or {}).get("realm")
            if realm is None:
                return _json({"error": "invalid_request"}, 400)
            self.revoke_realm(realm, app["client_id"])
        return Response(b"", status=200)

    def revoke_realm(self, realm: str, client_id: str | None = None) -> None:
        """Invalidate every refresh (and access) token of a company (the `revoke` fault)."""
        with self.lock:
            for rec in self.state.refresh.values():
                if rec["realm"] == realm and client_id in (None, rec["client_id"]):
                    rec["revoked"] = True
            for rec in self.state.access.values():
                if rec["realm"] == realm and client_id in (None, rec["client_id"]):
                    rec["expires"] = 0

    def expire_access(self, value: str) -> None:
        """The `token_expire` fault: this access token stops working now."""
        with self.lock:
            if value in self.state.access:
                self.state.access[value]["expires"] = self.now() - 1

    def check(self, authorization: str, realm: str) -> tuple[int, str] | None:
        """None when the bearer token may call this realm; else (status, gateway detail)."""
        if not authorization.lower().startswith("bearer "):
            return 401, "Token expired"
        record = self.state.access.get(authorization[7:].strip())
        if record is None or record["expires"] <= self.now():
            return 401, "Token expired"
        if record["realm"] != realm:
            return 403, "Token is not authorized for this company"
        return None

    def userinfo(self, request: Request) -> Response:
        """OpenID userinfo for a valid access token."""
        header = request.headers.get("Authorization", "")
        record = self.state.access.get(header[7:].strip()) if header.lower().startswith("bearer ") else None
        if record is None or record["expires"] <= self.now():
            return _json({"error": "invalid_token"}, 401)
        return _json({"sub": f"sbx-{record['realm']}", "email": "admin@sandbox.invalid",
                      "emailVerified": True, "givenName": "Sandbox", "familyName": "Admin"})

    # state ---------------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Codes and tokens, so a restarted sandbox keeps its connections."""
        with self.lock:
            return {"codes": dict(self.state.codes), "access": dict(self.state.access),
                    "refresh": dict(self.state.refresh)}

    def restore(self, data: dict[str, Any] | None) -> None:
        """Load codes and tokens saved by `dump`."""
        with self.lock:
            self.state.codes = dict((data or {}).get("codes", {}))
            self.state.access = dict((data or {}).get("access", {}))
            self.state.refresh = dict((data or {}).get("refresh", {}))


def _redirect(uri: str, params: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": f"{uri}{joiner}{urlencode(params)}"})


def _error_page(message: str) -> Response:
    return Response(f"<!doctype html><html><head><title>Sandbox OAuth error</title></head><body>"
                    f"<h1>Something went wrong</h1><p>{html.escape(message)}</p></body></html>",
                    status=400, mimetype="text/html")
