"""ConnectWise PSA REST client: auth, company info, paging, conditions, errors, the probe."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from portal.integrations import errors
from portal.integrations.http import backoff, describe_network_error, verify_setting

CLOUD_API_HOSTS = {
    "na.myconnectwise.net": "api-na.myconnectwise.net",
    "eu.myconnectwise.net": "api-eu.myconnectwise.net",
    "au.myconnectwise.net": "api-au.myconnectwise.net",
    "aus.myconnectwise.net": "api-aus.myconnectwise.net",
    "za.myconnectwise.net": "api-za.myconnectwise.net",
    "staging.connectwisedev.com": "api-staging.connectwisedev.com",
}
MAX_PAGE_SIZE = 1000
READ_RETRIES = 4
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="(\w+)"')


# ---- hosts and conditions ------------------------------------------------------------

def site_url(site: str) -> str:
    """`na.myconnectwise.net` -> `https://na.myconnectwise.net`; a URL with a scheme is kept."""
    site = site.strip().rstrip("/")
    return site if "://" in site else f"https://{site}"


def api_url(site: str) -> str:
    """The API host for a site: cloud web hosts map to their `api-` host, others as given."""
    url = site_url(site)
    parts = urlsplit(url)
    host = CLOUD_API_HOSTS.get((parts.hostname or "").lower())
    if host is None:
        return url
    return f"{parts.scheme}://{host}"


def quote(value: Any) -> str:
    """A conditions literal: strings quoted with inner quotes escaped, dates bracketed."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return f"[{value.strftime('%Y-%m-%dT%H:%M:%SZ')}]"
    if isinstance(value, date):
        return f"[{value.isoformat()}]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def cond(field: str, op: str, value: Any) -> str:
    """One condition, e.g. cond("company/identifier", "=", 'O"Neil') -> `company/identifier = "O\\"Neil"`."""
    if not re.fullmatch(r"[A-Za-z_][\w/]*", field):
        raise ValueError(f"not a field name: {field!r}")
    op = op.strip().lower()
    if op == "in":
        items = ", ".join(quote(v) for v in value)
        return f"{field} in ({items})"
    if op not in {"=", "!=", "<", "<=", ">", ">=", "contains", "like", "not contains",
                  "not like"}:
        raise ValueError(f"unknown operator {op!r}")
    return f"{field} {op} {quote(value)}"


def all_of(*conditions: str) -> str:
    return " and ".join(f"({c})" if " or " in c else c for c in conditions if c)


# ---- results --------------------------------------------------------------------------

@dataclass(frozen=True)
class CompanyInfo:
    company_name: str
    codebase: str
    version_code: str
    is_cloud: bool
    site_url: str | None
    company_id: str


@dataclass(frozen=True)
class SystemInfo:
    version: str
    is_cloud: bool
    server_time_zone: str | None
    cloud_region: str | None


@dataclass(frozen=True)
class ProbeCall:
    method: str
    path: str
    body: Any = None


@dataclass(frozen=True)
class ProbeRow:
    """One permission of the recommended security role and the calls that prove it."""

    module: str
    function: str
    levels: str
    needed_for: str
    calls: tuple[ProbeCall, ...]


@dataclass(frozen=True)
class ProbeResult:
    row: ProbeRow
    state: str  # granted, missing, unknown
    detail: str


READ_PROBE = {"pageSize": 1}
PROBES: tuple[ProbeRow, ...] = (
    ProbeRow("Companies", "Company Maintenance", "Inquire All",
             "customers, vendors, sites, addresses",
             (ProbeCall("GET", "/company/companies"),)),
    ProbeRow("Companies", "Contacts", "Inquire All", "billing contact and e-mail",
             (ProbeCall("GET", "/company/contacts"),)),
    ProbeRow("Finance", "Accounting Interface", "Add, Edit, Delete, Inquire All",
             "read unposted lists, export GL data, create and delete accounting batches",
             (ProbeCall("GET", "/finance/accounting/unpostedinvoices/count"),
              ProbeCall("POST", "/finance/accounting/batches", {}),
              ProbeCall("DELETE", "/finance/accounting/batches/0"))),
    ProbeRow("Finance", "Invoicing", "Edit, Delete, Inquire All",
             "read invoices and PDFs; add, update and remove invoice payments",
             (ProbeCall("GET", "/finance/invoices"),
              ProbeCall("POST", "/finance/invoices/0/payments", {}),
              ProbeCall("PATCH", "/finance/invoices/0/payments/0", []),
              ProbeCall("DELETE", "/finance/invoices/0/payments/0"))),
    ProbeRow("Procurement", "Product Catalog", "Inquire All", "product ids, descriptions, types",
             (ProbeCall("GET", "/procurement/catalog"),)),
    ProbeRow("Procurement", "Products", "Inquire All", "product lines",
             (ProbeCall("GET", "/procurement/products"),)),
    ProbeRow("Procurement", "Purchase Orders", "Inquire All (Edit optional)",
             "POs, receipts, vendor invoice numbers",
             (ProbeCall("GET", "/procurement/purchaseorders"),)),
    ProbeRow("Project", "Project Tickets", "Inquire All", "Condensed and Detailed descriptions",
             (ProbeCall("GET", "/project/tickets"),)),
    ProbeRow("Service Desk", "Service Tickets", "Inquire All",
             "Condensed and Detailed descriptions", (ProbeCall("GET", "/service/tickets"),)),
    ProbeRow("System", "Member Maintenance", "Inquire All", "members, vendor numbers",
             (ProbeCall("GET", "/system/members"),)),
    ProbeRow("System", "Table Setup", "Inquire All (Accounting Package, Billing Status, Tax "
             "Code, UOM)", "GL setup, billing statuses, tax codes, units of measure",
             (ProbeCall("GET", "/finance/accountingPackageSetup"),
              ProbeCall("GET", "/finance/taxCodes"),
              ProbeCall("GET", "/finance/billingStatuses"),
              ProbeCall("GET", "/procurement/unitOfMeasures"))),
    ProbeRow("Time & Expense", "Expense Report Entry", "Inquire All", "expenses, approval state",
             (ProbeCall("GET", "/expense/entries"),)),
    ProbeRow("Time & Expense", "Time Entry", "Inquire All",
             "Detailed descriptions, work roles and types", (ProbeCall("GET", "/time/entries"),)),
)


def company_info(http: requests.Session, site: str, company_id: str, *,
                 timeout: float = 10, verify: bool = True) -> CompanyInfo:
    """Look the company up on the site, without credentials (codebase discovery)."""
    base = site_url(site)
    url = f"{base}/login/companyinfo/{requests.utils.quote(company_id, safe='')}"
    try:
        response = http.get(url, timeout=timeout, verify=verify,
                            headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        message, hint = describe_network_error(exc, base)
        raise errors.Unreachable(message, hint=hint) from None
    host = urlsplit(base).netloc
    if response.status_code != 200:
        raise errors.NotFound(f"{host} answered {response.status_code} to the company lookup; "
                              "is this a ConnectWise PSA site?",
                              hint="Check the site you type in your browser to reach ConnectWise.",
                              status=response.status_code)
    try:
        body = response.json()
    except ValueError:
        raise errors.NotFound(f"{host} did not answer like ConnectWise PSA.",
                              hint="Check the site name.") from None
    if body is None:
        raise errors.NotFound(
            f"ConnectWise does not know company id '{company_id}' on {host}.",
            hint="Check the company id you type on the ConnectWise login screen.")
    return CompanyInfo(company_name=str(body.get("CompanyName") or company_id),
                       codebase=str(body.get("Codebase") or "v4_6_release/"),
                       version_code=str(body.get("VersionCode") or ""),
                       is_cloud=bool(body.get("IsCloud")), site_url=body.get("SiteUrl"),
                       company_id=str(body.get("CompanyID") or company_id))


class ConnectWiseClient:
    """Calls `{api}/{codebase}apis/3.0/...` as one API member.

    Reads are retried on 429 (honouring Retry-After), 5xx and network errors; writes are
    retried only on 429, which means the request was not processed.
    """

    def __init__(self, http: requests.Session, *, site: str, company_id: str, public_key: str,
                 private_key: str, client_id: str, codebase: str = "v4_6_release/",
                 api_version: str | None = "2025.1", timeout: float = 30,
                 verify: bool = True, sleep: Any = time.sleep,
                 pace: Callable[[], Callable[[], None]] | None = None) -> None:
        self.http = http
        self.site = site
        self.base = f"{api_url(site)}/{codebase.strip('/')}/apis/3.0"
        token = base64.b64encode(f"{company_id}+{public_key}:{private_key}".encode()).decode()
        accept = "application/vnd.connectwise.com+json"
        self.headers = {"Authorization": f"Basic {token}", "clientId": client_id,
                        "Accept": f"{accept}; version={api_version}" if api_version else accept}
        self.timeout = timeout
        self.verify = verify_setting(verify)
        self.is_cloud = urlsplit(api_url(site)).hostname in CLOUD_API_HOSTS.values()
        self._sleep = sleep
        self.pace = pace  # waits for a slot of the calls-in-flight limit; returns its release
        self._count_lock = threading.Lock()
        self.requests_sent = 0  # calls sent so far, counted under a lock (threads share us)

    # -- transport -------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, headers: Mapping[str, str] | None = None,
                url: str | None = None, timeout: float | None = None,
                idempotent: bool = False) -> requests.Response:
        """Send one call and return the 2xx response, or raise an IntegrationError.

        Reads (GET, and POSTs that only read, `idempotent=True`, such as the GL export) are
        retried on 5xx, 429 and dropped connections with backoff; writes only on 429.
        """
        method = method.upper()
        target = url or f"{self.base}{path}"
        read = method == "GET" or idempotent
        attempt = 0
        while True:
            release = self.pace() if self.pace else None
            try:
                with self._count_lock:
                    self.requests_sent += 1
                response = self.http.request(
                    method, target, params=params, json=json,
                    headers={**self.headers, **(headers or {})},
                    timeout=timeout or self.timeout, verify=self.verify)
            except requests.RequestException as exc:
                if release is not None:
                    release()
                if read and attempt < READ_RETRIES and not isinstance(
                        exc, requests.exceptions.SSLError):
                    self._sleep(backoff(attempt))
                    attempt += 1
                    continue
                message, hint = describe_network_error(exc, target)
                kind = errors.Transient if isinstance(
                    exc, (requests.Timeout, requests.ConnectionError)) and attempt else \
                    errors.Unreachable
                if not read:
                    kind = errors.Transient  # the write may have happened
                raise kind(message, hint=hint) from None
            if release is not None:
                release()
            status = response.status_code
            if status < 400:
                return response
            if attempt < READ_RETRIES and (status == 429 or (read and status >= 500)):
                self._sleep(_retry_after(response) if status == 429 else backoff(attempt))
                attempt += 1
                continue
            raise self._error(response)

    def _error(self, response: requests.Response) -> errors.IntegrationError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        code = message = ""
        details: list[str] = []
        if isinstance(body, dict):
            code = str(body.get("code") or "")
            message = str(body.get("message") or "")
            for item in body.get("errors") or []:
                if isinstance(item, dict):
                    field = item.get("field")
                    details.append(f"{field}: {item.get('message')}" if field
                                   else str(item.get("message")))
        tid = response.headers.get("x-cw-request-id")
        extra = {"status": status, "code": code or None, "tid": tid,
                 "detail": "; ".join(details) or None}
        if status == 401 and "clientid" in message.lower():
            return errors.AuthError("ConnectWise refused the clientId.",
                                    hint="Enter the clientId your integration was issued.",
                                    **extra)
        if status == 401 or message == "UserNotAuthenticated":
            return errors.AuthError(
                "ConnectWise rejected the API keys.",
                hint="Re-enter both keys. Check that the API member is active and the key has "
                     "not been deleted.", **extra)
        if status == 403:
            return errors.Forbidden(message or "The API member lacks a permission.",
                                    hint="Add the permissions listed by the probe.", **extra)
        if status == 404:
            return errors.NotFound(message or "Not found.", **extra)
        if status == 429:
            return errors.RateLimited("ConnectWise is over capacity (429).",
                                      retry_after=_retry_after(response), **extra)
        if status >= 500:
            return errors.Transient(f"ConnectWise answered {status}: {message or 'server error'}",
                                    **extra)
        text = message or f"ConnectWise refused the request ({status})."
        if details:
            text = f"{text}: {'; '.join(details)}"
        return errors.Invalid(text, **extra)

    # -- reads -----------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        response = self.request("GET", path, params=params or None)
        return response.json() if response.content else None

    def count(self, path: str, conditions: str | None = None) -> int:
        params = {"conditions": conditions} if conditions else None
        body = self.request("GET", f"{path}/count", params=params).json()
        return int(body.get("count", 0))

    def iter_all(self, path: str, *, conditions: str | None = None, fields: str | None = None,
                 order_by: str | None = None, page_size: int = MAX_PAGE_SIZE,
                 forward_only: bool = False) -> Iterator[dict[str, Any]]:
        """Every record, following `Link: rel="next"`; stops on a short page as well."""
        params: dict[str, Any] = {"pageSize": min(page_size, MAX_PAGE_SIZE)}
        if conditions:
            params["conditions"] = conditions
        if fields:
            params["fields"] = fields
        if order_by and not forward_only:
            params["orderBy"] = order_by
        headers = {"pagination-type": "forward-only"} if forward_only else None
        if not forward_only:
            params["page"] = 1
        url: str | None = None
        while True:
            response = self.request("GET", path, params=None if url else params, url=url,
                                    headers=headers)
            records = response.json() or []
            yield from records
            next_url = _next_link(response.headers.get("Link", ""))
            if not records or not next_url or len(records) < params["pageSize"]:
                return
            url = self._same_origin(next_url)

    def unbatch_purchase_order(self, po_id: int) -> tuple[bool, str]:
        """POST /procurement/purchaseorders/{id}/unbatch (CW-REF §20): the PO's received
        lines leave their accounting batch. No body; ConnectWise answers 200 with a
        SuccessResponse, so a refusal is `success: false` with its message."""
        answer = self.request("POST", f"/procurement/purchaseorders/{int(po_id)}/unbatch")
        try:
            body = answer.json() or {}
        except ValueError:
            body = {}
        return bool(body.get("success")), str(body.get("message") or "")

    def _same_origin(self, link: str) -> str:
        """Follow the server's link, but only on our own host (never send keys elsewhere)."""
        ours, theirs = urlsplit(self.base), urlsplit(link)
        if theirs.netloc and theirs.netloc != ours.netloc:
            query = dict(parse_qsl(theirs.query))
            path = theirs.path
            return f"{ours.scheme}://{ours.netloc}{path}?" + "&".join(
                f"{k}={requests.utils.quote(v, safe='')}" for k, v in query.items())
        return link

    def system_info(self, timeout: float = 5) -> SystemInfo:
        body = self.request("GET", "/system/info", timeout=timeout).json()
        return SystemInfo(version=str(body.get("version", "")),
                          is_cloud=bool(body.get("isCloud")),
                          server_time_zone=body.get("serverTimeZone"),
                          cloud_region=body.get("cloudRegion"))

    # -- the permissions probe ------------------------------------------------------

    def probe(self) -> list[ProbeResult]:
        """Try the least intrusive call proving each permission; reads need 2xx, write
        probes use ids that cannot exist, so 400/404/409 means the permission check passed.

        A 401 stops the probe with the key error.
        """
        results = []
        for row in PROBES:
            states: list[tuple[str, str]] = []
            for call in row.calls:
                states.append(self._probe_call(call))
            missing = [d for s, d in states if s == "missing"]
            unknown = [d for s, d in states if s == "unknown"]
            if missing:
                results.append(ProbeResult(row, "missing", "; ".join(missing)))
            elif unknown:
                results.append(ProbeResult(row, "unknown", "; ".join(unknown)))
            else:
                results.append(ProbeResult(row, "granted", "; ".join(d for _s, d in states)))
        return results

    def _probe_call(self, call: ProbeCall) -> tuple[str, str]:
        label = f"{call.method} {call.path}"
        params = READ_PROBE if call.method == "GET" and not call.path.endswith(
            ("/count", "Setup")) else None
        try:
            self.request(call.method, call.path, params=params, json=call.body, timeout=10)
        except errors.AuthError:
            raise
        except errors.Forbidden:
            return "missing", f"{label}: 403"
        except (errors.Invalid, errors.NotFound) as exc:
            if call.method == "GET":
                return "unknown", f"{label}: {exc.status}"
            return "granted", f"{label}: {exc.status}"
        except errors.IntegrationError as exc:
            if call.method != "GET" and exc.status == 409:
                return "granted", f"{label}: 409"
            return "unknown", f"{label}: {exc.status or exc.message}"
        if call.method == "GET":
            return "granted", f"{label}: 200"
        return "unknown", f"{label}: accepted an empty request"


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return 1.0


def _next_link(header: str) -> str | None:
    for url, rel in _LINK.findall(header or ""):
        if rel == "next" and url:
            return url
    return None
