"""ConnectWise-shaped error answers: `{code, message, errors[]}` bodies with their HTTP status."""

from __future__ import annotations

from typing import Any


class CwError(Exception):
    """An error the sandbox answers with, in the body shape the real API uses (CW-REF §8).

    Handlers raise it anywhere; the app turns it into the response, so no request ever ends
    in a 500 unless a fault rule asks for one.
    """

    def __init__(self, status: int, code: str, message: str,
                 errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body; `errors` only when there are some, as on the real server."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            out["errors"] = self.errors
        return out


def invalid(resource: str, code: str, message: str, field: str) -> CwError:
    """400 InvalidObject with one nested validation error (the sample's shape)."""
    return CwError(400, "InvalidObject", f"{resource} object is invalid",
                   [{"code": code, "message": message, "resource": resource, "field": field}])


def bad_request(message: str, field: str = "", code: str = "InvalidObject",
                resource: str = "request") -> CwError:
    """400 for malformed query parameters (conditions, orderBy, page…)."""
    errors = [{"code": "InvalidField" if field else "InvalidSyntax", "message": message,
               "resource": resource, "field": field or resource}]
    return CwError(400, code, message, errors)


def not_found(message: str = "The record was not found.") -> CwError:
    """404 in the inferred shape `{code: NotFound, message}` (CW-REF §8)."""
    return CwError(404, "NotFound", message)


def forbidden(module: str, function: str, verb: str) -> CwError:
    """403 for a security role that lacks the permission (body shape inferred)."""
    return CwError(403, "Unauthorized",
                   "You do not have permission to perform this action. "
                   f"Security role is missing {module} / {function} / {verb.capitalize()}.")
