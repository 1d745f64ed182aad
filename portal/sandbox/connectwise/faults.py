"""What each injected fault does before a request runs: latency, timeout, throttle (429), error."""

from __future__ import annotations

import threading
from typing import Any

from ..common import FaultRule, FaultSet
from .errors import CwError

PRE_KINDS = ("throttle", "error", "latency", "queued", "timeout")


def apply_before(rule: FaultRule, faults: FaultSet, switches: dict[str, Any],
                 stop: threading.Event) -> float:
    """Act on a fired pre-request rule: raise the vendor-shaped error answer, or return
    the response time a `latency` rule asks for (the caller answers no sooner: the time
    spent working counts toward it, as it does in a real API's response time).

    `drop_after_commit` is handled by the app after the write; the QBO-only kinds
    (token_expire, revoke, stale) never fire here.
    """
    if rule.kind == "latency":
        return faults.latency_seconds(rule)
    if rule.kind == "queued":  # a server under load works the request later
        stop.wait(faults.latency_seconds(rule))
        return 0.0
    if rule.kind == "timeout":
        stop.wait(rule.latency_ms / 1000 or float(switches["cw_timeout_hang_seconds"]))
        raise CwError(504, "GatewayTimeout", "The request timed out.")
    if rule.kind == "throttle":
        retry = str(rule.headers.get("Retry-After", switches["cw_retry_after_seconds"]))
        body = rule.body if isinstance(rule.body, dict) else {}
        raise CwError(rule.status or 429, str(body.get("code", "TooManyRequests")),
                      str(body.get("message", "The server is over capacity; retry after "
                                   f"{retry} seconds.")),
                      headers={**rule.headers, "Retry-After": retry})
    if rule.kind == "error":
        body = rule.body if isinstance(rule.body, dict) else {}
        raise CwError(rule.status or 500, str(body.get("code", "UnexpectedError")),
                      str(body.get("message", "An unexpected error has occurred.")),
                      body.get("errors"), headers=rule.headers)
    return 0.0
