"""requests sessions with sane defaults, and plain-language network failures."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import requests

from portal import __name__ as _package

USER_AGENT = f"{_package}/0.1 (+self-hosted ConnectWise to QuickBooks Online sync)"


def new_session() -> requests.Session:
    """A Session with our User-Agent; timeouts are passed per call (requests has no default)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def describe_network_error(exc: requests.RequestException, url: str) -> tuple[str, str]:
    """(message, hint) for a failure that happened before any HTTP answer."""
    host = host_of(url)
    if isinstance(exc, requests.exceptions.SSLError):
        return (f"The TLS certificate of {host} is not trusted.",
                "Fix the certificate, or turn off TLS verification for on-premise hosts only.")
    if isinstance(exc, requests.exceptions.Timeout):
        return (f"{host} did not answer in time.", "Try again; if it persists, check the host.")
    reason = _root_reason(exc)
    return (f"Cannot reach {host}: {reason}.",
            "Check the host name and that this server can reach it.")


def _root_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Name or service not known", "Connection refused", "No route to host",
                   "Temporary failure in name resolution", "Network is unreachable",
                   "Connection reset", "Remote end closed connection"):
        if marker.lower() in text.lower():
            return marker.lower()
    return exc.__class__.__name__


def backoff(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    """Capped exponential backoff with jitter, in seconds."""
    return min(cap, base * (2 ** attempt)) * (0.5 + random.random() / 2)
