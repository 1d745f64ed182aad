"""What can go wrong when talking to ConnectWise or QuickBooks, as exceptions an admin can act on."""

from __future__ import annotations


class IntegrationError(Exception):
    """A failed call. `message` says what happened; `hint` says how to fix it."""

    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 code: str | None = None, tid: str | None = None, detail: str | None = None,
                 element: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status
        self.code = code
        self.tid = tid  # intuit_tid or x-cw-request-id, for the vendor's support
        self.detail = detail
        self.element = element

    def __str__(self) -> str:
        return self.message


class AuthError(IntegrationError):
    """The credentials or token were refused (401, or 404 on ConnectWise cloud)."""

    kind = "auth"


class Forbidden(IntegrationError):
    """The credentials are valid but lack a permission (403)."""

    kind = "forbidden"


class NotFound(IntegrationError):
    kind = "not_found"


class Invalid(IntegrationError):
    """The request was refused as invalid (400, or a validation Fault); do not resend as is."""

    kind = "invalid"


class RateLimited(IntegrationError):
    """Too many requests (429) and the retries ran out."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class Transient(IntegrationError):
    """A server fault, timeout or dropped connection: the outcome of a write is unknown."""

    kind = "transient"


class Unreachable(IntegrationError):
    """The host could not be reached at all (DNS, refused, TLS)."""

    kind = "unreachable"


class InvalidGrant(AuthError):
    """The refresh token or authorization code is no longer valid: reconnect needed."""

    kind = "invalid_grant"
