"""requests sessions with sane defaults, and plain-language network failures."""

from __future__ import annotations

import os
import random
from urllib.parse import urlsplit

import requests

from portal import __name__ as _package

USER_AGENT = f"{_package}/0.1 (+self-hosted ConnectWise to QuickBooks Online sync)"


def new_session(base_url: str | None = None) -> requests.Session:
    """A Session with our User-Agent, kept for the client's life so connections are reused
    (keep-alive); timeouts are passed per call (requests has no default).

    Given the host it will call, the proxy and CA-bundle settings of the environment are
    read once here instead of on every request (requests looks them up per call, which
    costs more than a call on a fast network).
    """
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if base_url:
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        bundle = ca_bundle()
        if bundle:
            session.verify = bundle
        session.trust_env = False
    return session


def ca_bundle() -> str | None:
    """The CA bundle the environment names (as requests itself would read it)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def verify_setting(verify: bool) -> bool | str:
    """What to pass as `verify=`: the environment's CA bundle when verifying."""
    return (ca_bundle() or True) if verify else False


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
