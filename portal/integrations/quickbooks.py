"""QuickBooks Online Accounting API client: query, CRUD, batch, requestid, Faults, 429, 401."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import requests

from portal.integrations import errors
from portal.integrations.http import backoff, describe_network_error

MINOR_VERSION = 75
MAX_RESULTS = 1000
RETRIES = 4


class TokenSource(Protocol):
    """Gives the client a valid access token; implemented by portal.clients."""

    def access_token(self) -> str: ...

    def force_refresh(self, rejected: str) -> str:
        """The API refused `rejected`: refresh (once) and return the new access token."""
        ...


def escape(value: str) -> str:
    """A string literal for the query language: backslash and quote escaped."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def new_request_id() -> str:
    return uuid.uuid4().hex  # 32 characters: fits the 50 (and batch 36) limit


class QuickBooksClient:
    """One realm. Every write carries a `requestid` (given by the caller when it must
    survive a crash); a 401 refreshes once and replays with the same requestid."""

    def __init__(self, http: requests.Session, base_url: str, realm_id: str,
                 tokens: TokenSource, *, minor_version: int = MINOR_VERSION,
                 timeout: float = 60, sleep: Any = time.sleep,
                 pace: Callable[[bool], Callable[[], None]] | None = None) -> None:
        self.http = http
        self.pace = pace  # waits for a slot under the realm's limits; returns its release
        self.base = f"{base_url.rstrip('/')}/v3/company/{realm_id}"
        self.realm_id = realm_id
        self.tokens = tokens
        self.minor_version = minor_version
        self.timeout = timeout
        self._sleep = sleep
        self._count_lock = threading.Lock()
        self.requests_sent = 0  # calls sent so far, counted under a lock (threads share us)

    # -- transport -------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, data: str | bytes | None = None,
                headers: dict[str, str] | None = None, write: bool = False,
                once: bool = False, raw: bool = False) -> Any:
        """Send one call; returns the JSON body, or raises an IntegrationError (also for a
        Fault carried by HTTP 200). `once`: a write that is not idempotent (invoice send) is
        never repeated after it may have reached QuickBooks. `raw`: the bytes (a PDF)."""
        params = {**(params or {}), "minorversion": self.minor_version}
        if write:
            params.setdefault("requestid", new_request_id())
        token = self.tokens.access_token()
        refreshed = False
        attempt = 0
        while True:
            release = self.pace(path == "/batch") if self.pace else None
            try:
                with self._count_lock:
                    self.requests_sent += 1
                response = self.http.request(
                    method, f"{self.base}{path}", params=params, json=json, data=data,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                             **(headers or {})}, timeout=self.timeout)
            except requests.RequestException as exc:
                if not write and not once and attempt < RETRIES:
                    self._sleep(backoff(attempt))
                    attempt += 1
                    continue
                message, hint = describe_network_error(exc, self.base)
                raise errors.Transient(message, hint=hint) from None
            finally:
                if release is not None:
                    release()
            status = response.status_code
            if status == 401 and not refreshed:
                token = self.tokens.force_refresh(token)
                refreshed = True
                continue  # same params: the same requestid is replayed
            if status == 429 and attempt < RETRIES:
                self._sleep(_retry_after(response, attempt))
                attempt += 1
                continue
            if status >= 500 and attempt < 1 and not once and \
                    (not write or "requestid" in params):
                self._sleep(backoff(attempt))  # resubmit once; requestid makes it safe
                attempt += 1
                continue
            if raw and status < 400:
                return response.content
            return self._body(response)

    def _body(self, response: requests.Response) -> dict[str, Any]:
        tid = response.headers.get("intuit_tid")
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if body is None:
            if response.status_code < 400:
                return {}
            raise errors.Transient(f"QuickBooks answered {response.status_code} without JSON.",
                                   status=response.status_code, tid=tid)
        fault = fault_of(body)
        if fault is None and response.status_code < 400:
            return body
        raise error_for(response.status_code, fault or {}, tid)

    # -- operations ------------------------------------------------------------------

    def query(self, statement: str) -> dict[str, Any]:
        """One query page: the QueryResponse object."""
        body = self.request("POST", "/query", data=statement.encode(),
                            headers={"Content-Type": "application/text"})
        return body.get("QueryResponse", {})

    def query_all(self, entity: str, where: str = "", page_size: int = MAX_RESULTS
                  ) -> Iterator[dict[str, Any]]:
        """Every row of an entity, paged with STARTPOSITION/MAXRESULTS."""
        start = 1
        while True:
            clause = f" WHERE {where}" if where else ""
            page = self.query(f"SELECT * FROM {entity}{clause} STARTPOSITION {start} "
                              f"MAXRESULTS {page_size}")
            rows = page.get(entity, [])
            yield from rows
            if len(rows) < page_size:
                return
            start += page_size

    def read(self, entity: str, entity_id: str, *, include: str | None = None
             ) -> dict[str, Any]:
        params = {"include": include} if include else None
        return self.request("GET", f"/{entity.lower()}/{entity_id}", params=params)[entity]

    def pdf(self, entity: str, entity_id: str) -> bytes:
        return self.request("GET", f"/{entity.lower()}/{entity_id}/pdf", raw=True,
                            headers={"Accept": "application/pdf"})

    def send(self, entity: str, entity_id: str, send_to: str) -> dict[str, Any]:
        """Email a sales form to `send_to` (QuickBooks stores it as BillEmail). Sent once:
        QuickBooks does not de-duplicate sends, so an unknown outcome is settled by reading
        the document, never by sending again."""
        return self.request("POST", f"/{entity.lower()}/{entity_id}/send",
                            params={"sendTo": send_to}, data=b"",
                            headers={"Content-Type": "application/octet-stream"},
                            once=True)[entity]

    def create(self, entity: str, payload: dict[str, Any], *, request_id: str | None = None,
               include: str | None = None) -> dict[str, Any]:
        """Create (or, with `Id` and `SyncToken` in the payload, fully update) a document;
        `include="allowduplicatedocnum"` accepts a DocNumber a voided or deleted document
        of ours had (SPEC 11.3)."""
        params = {"requestid": request_id} if request_id else {}
        if include:
            params["include"] = include
        return self.request("POST", f"/{entity.lower()}", json=payload, params=params,
                            write=True)[entity]

    def sparse_update(self, entity: str, payload: dict[str, Any], *,
                      request_id: str | None = None) -> dict[str, Any]:
        params = {"requestid": request_id} if request_id else None
        return self.request("POST", f"/{entity.lower()}", json={**payload, "sparse": True},
                            params=params, write=True)[entity]

    def delete(self, entity: str, entity_id: str, sync_token: str, *,
               request_id: str | None = None) -> dict[str, Any]:
        params = {"operation": "delete", **({"requestid": request_id} if request_id else {})}
        return self.request("POST", f"/{entity.lower()}", params=params, write=True,
                            json={"Id": entity_id, "SyncToken": sync_token})

    def void(self, entity: str, entity_id: str, sync_token: str, *,
             request_id: str | None = None) -> dict[str, Any]:
        params = {"operation": "void", **({"requestid": request_id} if request_id else {})}
        return self.request("POST", f"/{entity.lower()}", params=params, write=True,
                            json={"Id": entity_id, "SyncToken": sync_token, "sparse": True})

    def batch(self, items: list[dict[str, Any]], *, request_id: str | None = None,
              include: str | None = None) -> list[dict[str, Any]]:
        """Up to 30 operations; per-item Faults are returned, not raised."""
        if len(items) > 30:
            raise ValueError("a QuickBooks batch holds at most 30 operations")
        params: dict[str, Any] = {"requestid": request_id} if request_id else {}
        if include:
            params["include"] = include
        body = self.request("POST", "/batch", json={"BatchItemRequest": items}, params=params,
                            write=True)
        return body.get("BatchItemResponse", [])

    def company_info(self) -> dict[str, Any]:
        return self.request("GET", f"/companyinfo/{self.realm_id}")["CompanyInfo"]

    def preferences(self) -> dict[str, Any]:
        return self.request("GET", "/preferences")["Preferences"]


def fault_of(body: Any) -> dict[str, Any] | None:
    """The Fault of a body, whatever its case (`Fault`/`fault`, `Error`/`error`)."""
    if not isinstance(body, dict):
        return None
    for key in ("Fault", "fault"):
        if isinstance(body.get(key), dict):
            return body[key]
    return None


def _first_error(fault: dict[str, Any]) -> dict[str, Any]:
    items = fault.get("Error") or fault.get("error") or [{}]
    item = items[0] if isinstance(items, list) and items else {}
    return {k.lower(): v for k, v in item.items()} if isinstance(item, dict) else {}


def error_for(status: int, fault: dict[str, Any], tid: str | None) -> errors.IntegrationError:
    """Turn a Fault (any shape) into the matching IntegrationError."""
    item = _first_error(fault)
    code = str(item.get("code") or "").lstrip("0")
    message = str(item.get("message") or "")
    detail = str(item.get("detail") or "")
    element = item.get("element") or None
    extra = {"status": status, "code": code or None, "tid": tid, "detail": detail or None,
             "element": element}
    text = f"QuickBooks: {message}" + (f" ({detail})" if detail else "")
    if status == 429 or code == "3001":
        return errors.RateLimited("QuickBooks throttled the requests (429).", **extra)
    if status == 401 or code == "3200":
        return errors.AuthError("QuickBooks refused the access token.",
                                hint="An admin must reconnect the company.", **extra)
    if status == 403 or code == "3100":
        return errors.Forbidden("QuickBooks refused access to this company.",
                                hint="Reconnect as a QuickBooks user with full admin rights.",
                                **extra)
    if code == "610" or status == 404:
        return errors.NotFound(text, **extra)
    if status >= 500 or code == "10000" or str(fault.get("type", "")).lower() == "systemfault":
        return errors.Transient(text, **extra)
    return errors.Invalid(text, **extra)


def _retry_after(response: requests.Response, attempt: int) -> float:
    try:
        return max(0.0, min(float(response.headers.get("Retry-After", "")), 60.0))
    except ValueError:
        return backoff(attempt, base=1.0, cap=30.0)
