"""Intuit OAuth 2.0 through intuit-oauth's AuthClient: authorization URL, code exchange,
refresh, revoke. Token values are returned, never logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from portal.integrations import errors
from portal.integrations.http import describe_network_error

DISCOVERY = {"production": "production", "sandbox": "sandbox"}


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str
    redirect_uri: str
    environment: str  # "production", "sandbox", or a discovery document URL


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    refresh_hard_expires_at: datetime | None


def _client(app: AppCredentials) -> AuthClient:
    try:
        client = AuthClient(app.client_id, app.client_secret, app.redirect_uri,
                            DISCOVERY.get(app.environment, app.environment))
    except AuthClientError as exc:
        raise errors.Unreachable(
            f"The Intuit discovery document could not be read ({exc.status_code}).",
            hint="Check the environment or the custom discovery URL.") from None
    except requests.RequestException as exc:
        message, hint = describe_network_error(exc, app.environment)
        raise errors.Unreachable(message, hint=hint) from None
    client.include_refresh_token_hard_expires_in = True
    return client


def authorization_url(app: AppCredentials, state: str) -> str:
    """Where to send the admin's browser to approve access to one company."""
    return _client(app).get_authorization_url([Scopes.ACCOUNTING], state_token=state)


def _tokens(client: AuthClient, now: datetime) -> TokenSet:
    def after(seconds: object) -> datetime | None:
        try:
            return now + timedelta(seconds=int(seconds))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None

    return TokenSet(access_token=client.access_token, refresh_token=client.refresh_token,
                    access_expires_at=after(client.expires_in) or now + timedelta(hours=1),
                    refresh_expires_at=after(client.x_refresh_token_expires_in),
                    refresh_hard_expires_at=after(client.x_refresh_token_hard_expires_in))


def _raise(exc: AuthClientError) -> None:
    tid = getattr(exc, "intuit_tid", None)
    try:
        body = exc.response.json() if exc.response is not None else {}
    except ValueError:
        body = {}
    if exc.status_code == 400 and body.get("error") == "invalid_grant":
        raise errors.InvalidGrant("QuickBooks no longer accepts this connection's refresh token.",
                                  hint="An admin must reconnect the company.", status=400,
                                  code="invalid_grant", tid=tid) from None
    if exc.status_code == 401:
        raise errors.AuthError("Intuit rejected the app's client id or secret.",
                               hint="Re-enter the client id and secret of your Intuit app.",
                               status=401, tid=tid) from None
    if exc.status_code in (429,) or exc.status_code >= 500:
        raise errors.Transient(f"Intuit's token service answered {exc.status_code}.",
                               status=exc.status_code, tid=tid) from None
    raise errors.Invalid(f"Intuit refused the token request ({exc.status_code}: "
                         f"{body.get('error', 'error')}).", status=exc.status_code,
                         code=body.get("error"), tid=tid) from None


def _call(app: AppCredentials, action: Callable[[AuthClient], object]) -> AuthClient:
    """Run one token-endpoint call, turning every failure into an IntegrationError."""
    client = _client(app)
    try:
        action(client)
    except AuthClientError as exc:
        _raise(exc)
    except requests.RequestException as exc:
        message, hint = describe_network_error(exc, client.token_endpoint)
        raise errors.Transient(message, hint=hint) from None
    return client


def exchange_code(app: AppCredentials, code: str, realm_id: str) -> TokenSet:
    now = datetime.now(timezone.utc)
    return _tokens(_call(app, lambda c: c.get_bearer_token(code, realm_id=realm_id)), now)


def refresh(app: AppCredentials, refresh_token: str) -> TokenSet:
    """Trade the refresh token for new tokens; the answer may carry a new refresh token."""
    now = datetime.now(timezone.utc)
    return _tokens(_call(app, lambda c: c.refresh(refresh_token=refresh_token)), now)


def revoke(app: AppCredentials, token: str) -> None:
    _call(app, lambda c: c.revoke(token=token))
