"""The QuickBooksSandbox: state, load/dump/reset, persistence, and the WSGI request pipeline."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from werkzeug.wrappers import Request, Response

from ..common import FaultSet, RequestLog, SimClock, drop_connection, json_response
from . import api, control, entities, faults, prefs
from .context import Ctx
from .idempotency import MAX_BATCH_REQUESTID, MAX_REQUESTID, RequestIds
from .oauth import OAuthService, discovery_document
from .pages import deep_link
from .store import Realm
from .switches import merged
from .throttle import Throttle
from .util import fast_copy, meta_time, parse_timestamp
from .webhooks import Webhooks

API_PATH = re.compile(r"^/v3/company/([^/]+)/(.+?)/?$")
DISCOVERY_PATHS = ("/.well-known/openid_sandbox_configuration", "/.well-known/openid_configuration")
PRE_KINDS = ("latency", "queued", "timeout", "error", "throttle", "token_expire", "revoke", "stale")


class QuickBooksSandbox:
    """A local QuickBooks Online: Accounting API v3 plus Intuit OAuth 2.0, with fault injection."""

    def __init__(self, *, data: dict | None = None, state_path: str | os.PathLike | None = None,
                 clock: SimClock | None = None, seed: int = 0, switches: dict | None = None,
                 public_url: str | None = None) -> None:
        self.clock = clock or SimClock()
        self.faults = FaultSet(seed=seed, target="qbo")
        self.log = RequestLog()
        self.switches: dict[str, Any] = merged(switches)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.lock = threading.RLock()
        self.realms: dict[str, Realm] = {}
        self.outbox: list[dict[str, Any]] = []
        self.stale_realms: set[str] = set()
        self.load_warnings: list[str] = []
        self.oauth = OAuthService(self.clock.now, self.switches, self._company_choices)
        self.throttle = Throttle(self.clock.now, self.switches)
        self.requestids = RequestIds(self.clock.now, self.switches)
        self.webhooks = Webhooks(self.switches, self.clock.now)
        self.state_path = Path(state_path) if state_path else None
        self._save_timer: threading.Timer | None = None
        self._initial = fast_copy(data) if data is not None else default_data()
        if self.state_path is not None and self.state_path.exists():
            self.load(json.loads(self.state_path.read_text()), keep_initial=True)
        else:
            self.load(self._initial)

    # state -------------------------------------------------------------------------------------------
    def load(self, data: dict, keep_initial: bool = False) -> None:
        """Replace all state with a data set (seed format) or a dump."""
        with self.lock:
            if not keep_initial:
                self._initial = fast_copy(data)
            self.realms = {}
            self.load_warnings = []
            self.oauth.set_apps(data.get("apps"))
            self.oauth.restore(data.get("oauth"))
            self.outbox = list(data.get("outbox", []))
            for company in data.get("companies", []):
                self._load_company(company)
            self.requestids.clear()
            self.throttle.reset()

    def _load_company(self, company: dict[str, Any]) -> None:
        realm_id = str(company["realmId"])
        settings = prefs.settings_with_defaults(company.get("settings"))
        realm = Realm(realm_id, settings)
        now = self.clock.now()
        stamp = {"SyncToken": "0", "MetaData": {"CreateTime": meta_time(now), "LastUpdatedTime": meta_time(now)}}
        info = prefs.company_info(realm_id, settings, company.get("CompanyInfo") or {})
        realm.company_info = {**info, **stamp, **{k: v for k, v in (company.get("CompanyInfo") or {}).items()
                                                 if k in ("SyncToken", "MetaData")}}
        realm.preferences = {**prefs.preferences(settings), **stamp, **(company.get("Preferences") or {})}
        self.realms[realm_id] = realm
        ctx = Ctx(realm, self.switches, now, seeding=True, allow_duplicate_docnumber=False)
        given = company.get("entities") or {}
        extra = company.get("_sim") or {}
        if "_sim" in company:
            openings = extra.get("opening_balances") or {}
            given = {**given, "Customer": [{**c, "Balance": openings.get(str(c.get("Id")), 0)}
                                           for c in given.get("Customer") or []]}
        for name in given:
            if name not in entities.SPECS:
                self.load_warnings.append(f"{realm_id}: entity type {name} is not simulated; skipped")
        if prefs.is_us(settings):
            self._us_tax_codes(ctx, given.get("TaxCode") or [])
        for name in entities.LOAD_ORDER:
            self._load_list(ctx, name, list(given.get(name) or []))
        realm.next_id = max(realm.next_id, int(extra.get("next_id", 0)))
        realm.next_address_id = max(realm.next_address_id, int(extra.get("next_address_id", 0)))
        for name, value in (extra.get("doc_seq") or {}).items():
            realm.doc_seq[name] = max(realm.doc_seq[name], int(value))
        for name, stones in (extra.get("tombstones") or {}).items():
            realm.tombstones[name].update({k: float(v) for k, v in stones.items()})

    def _us_tax_codes(self, ctx: Ctx, given: list[dict[str, Any]]) -> None:
        present = {str(c.get("Id")) for c in given}
        for code, taxable in (("TAX", True), ("NON", False)):
            if code not in present:
                entities.create(ctx, "TaxCode", {"Id": code, "Name": code, "Description": code,
                                                 "Taxable": taxable, "TaxGroup": False,
                                                 "TaxCodeConfigType": "SYSTEM_GENERATED"}, seed=True)

    def _load_list(self, ctx: Ctx, name: str, items: list[dict[str, Any]]) -> None:
        pending = items
        while pending:
            waiting = []
            for item in pending:
                parent = (item.get("ParentRef") or {}).get("value")
                if parent and ctx.realm.get(name, parent) is None and \
                        any(str(o.get("Id")) == str(parent) for o in pending):
                    waiting.append(item)
                    continue
                try:
                    obj = entities.create(ctx, name, item, seed=True)
                except faults.ApiFault as fault:
                    raise ValueError(f"realm {ctx.realm.realm_id}: cannot load {name} "
                                     f"{item.get('Id')}: {fault.code} {fault.detail}") from fault
                stamp = parse_timestamp(obj["MetaData"].get("LastUpdatedTime", ""))
                ctx.realm.updated[(name, obj["Id"])] = stamp or ctx.now
            if len(waiting) == len(pending):
                raise ValueError(f"realm {ctx.realm.realm_id}: {name} parents form a cycle")
            pending = waiting

    def dump(self) -> dict:
        """The whole state in the data-set format (plus tokens and counters), loadable again."""
        with self.lock:
            companies = []
            for realm in self.realms.values():
                companies.append({
                    "realmId": realm.realm_id, "settings": dict(realm.settings),
                    "CompanyInfo": realm.company_info, "Preferences": realm.preferences,
                    "entities": {name: list(objs.values()) for name, objs in realm.objects.items() if objs},
                    "_sim": {"next_id": realm.next_id, "next_address_id": realm.next_address_id,
                             "doc_seq": dict(realm.doc_seq),
                             "opening_balances": dict(realm.opening_balances),
                             "tombstones": {k: dict(v) for k, v in realm.tombstones.items() if v}}})
            return fast_copy({"apps": list(self.oauth.state.apps.values()), "companies": companies,
                              "oauth": self.oauth.dump(), "outbox": self.outbox})

    def reset(self) -> None:
        """Back to the loaded data set."""
        self.load(self._initial)
        self.outbox.clear()
        self.stale_realms.clear()
        self._mark_dirty()

    def set_public_url(self, url: str) -> None:
        """Discovery document and redirects use this base URL."""
        self.public_url = url.rstrip("/")

    def default_realm(self) -> str | None:
        """The first company, used when a link names none."""
        return next(iter(self.realms), None)

    def update_settings(self, realm_id: str, changes: dict[str, Any]) -> None:
        """Change company settings (country, AST, tracking…) and the Preferences that show them."""
        with self.lock:
            realm = self.realms[realm_id]
            realm.settings = {**realm.settings, **changes}
            fresh = prefs.preferences(realm.settings)
            realm.preferences = {**fresh, "SyncToken": str(int(realm.preferences.get("SyncToken", "0")) + 1),
                                 "MetaData": {**realm.preferences.get("MetaData", {}),
                                              "LastUpdatedTime": meta_time(self.clock.now())}}
            if "country" in changes:
                realm.company_info["Country"] = str(changes["country"]).upper()
        self._mark_dirty()

    def context(self, realm: Realm, allow_dup: bool = False) -> Ctx:
        """A write context for one request against one company."""
        return Ctx(realm, self.switches, self.clock.now(), allow_duplicate_docnumber=allow_dup)

    def after_write(self, ctx: Ctx, wrote: bool = True) -> None:
        """Hand the request's change events to the webhook thread and schedule a save."""
        if ctx.events:
            self.webhooks.publish(ctx.events)
        if ctx.events or wrote:
            self._mark_dirty()

    def outbox_add(self, message: dict[str, Any]) -> None:
        """Record an email the sandbox pretended to send."""
        self.outbox.append(message)

    def _company_choices(self) -> list[tuple[str, str]]:
        return [(rid, r.company_info.get("CompanyName", rid)) for rid, r in self.realms.items()]

    # persistence --------------------------------------------------------------------------------------
    def _mark_dirty(self) -> None:
        if self.state_path is None:
            return
        with self.lock:
            if self._save_timer is not None:
                self._save_timer.cancel()
            self._save_timer = threading.Timer(float(self.switches["sim.qbo_save_debounce_seconds"]),
                                               self.save)
            self._save_timer.daemon = True
            self._save_timer.start()

    def save(self) -> None:
        """Write the state file atomically (called debounced after writes)."""
        if self.state_path is None:
            return
        data = json.dumps(self.dump())
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(data)
        os.replace(tmp, self.state_path)

    # URLs ------------------------------------------------------------------------------------------
    def base_url(self, request: Request | None = None) -> str:
        """The public URL, else the URL the request came in on."""
        if self.public_url:
            return self.public_url
        return request.host_url.rstrip("/") if request is not None else "http://127.0.0.1:5002"

    def discovery_url(self, request: Request | None = None) -> str:
        """What to pass as intuit-oauth's `environment`."""
        return self.base_url(request) + "/.well-known/openid_sandbox_configuration"

    # WSGI ----------------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        """Every request: control paths, injected faults, routing, then post-commit faults."""
        request = Request(environ)
        if request.path.startswith("/_sim"):
            return control.handle(self, request)(environ, start_response)
        started = self.clock.now()
        arrived = time.monotonic()
        response, delay = self._pre_faults(request, environ)
        if response is None:
            response = self._route(request, delay)
            if not API_PATH.match(request.path):
                _answer_after(arrived, delay)
        response.headers.setdefault("intuit_tid", f"sbx-{int(time.time() * 1000) % 10**10}")
        extra = {"batch_items": environ["sandbox.batch_items"]} \
            if "sandbox.batch_items" in environ else {}
        self.log.record(request.method, request.path, response.status_code, started, **extra)
        if self.faults.fire(request.method, request.path, kinds=["drop_after_commit"]):
            drop_connection(environ)
        return response(environ, start_response)

    def _pre_faults(self, request: Request, environ: dict) -> tuple[Response | None, float]:
        """Apply the faults that act before the request runs; latency is returned, slept later."""
        delay = 0.0
        request.get_data(cache=True)  # the request has arrived whole before it is worked
        match = API_PATH.match(request.path)
        realms = [match.group(1)] if match else list(self.realms)
        for rule in self.faults.fire(request.method, request.path, kinds=PRE_KINDS):
            if rule.kind == "latency":
                delay += self.faults.latency_seconds(rule)
            elif rule.kind == "queued":  # a server under load works the request later
                time.sleep(self.faults.latency_seconds(rule))
            elif rule.kind == "timeout":
                time.sleep(rule.latency_ms / 1000 if rule.latency_ms else 125)
                drop_connection(environ)
            elif rule.kind == "error":
                body = rule.body if rule.body is not None else {
                    "Fault": faults.system_fault("System Failure Error: An unexpected error occurred "
                                                 "while accessing or saving your data.", None).fault()}
                return json_response(api.envelope(self, body) if isinstance(body, dict) and "Fault" in body
                                     else body, rule.status or 500, rule.headers or None), delay
            elif rule.kind == "throttle":
                return self._throttled(60, rule.status or 429, rule.body), delay
            elif rule.kind == "token_expire":
                self.oauth.expire_access(request.headers.get("Authorization", "")[7:].strip())
            elif rule.kind == "revoke":
                for realm in realms:
                    self.oauth.revoke_realm(realm)
            elif rule.kind == "stale":
                self.stale_realms.update(realms)  # consumed by the realm's next update
        return None, delay

    def _throttled(self, wait: float, status: int = 429, body: Any = None) -> Response:
        if body is None:
            body = faults.throttle_body() if self.switches["sim.qbo_throttle_body"] == "fault" \
                else faults.gateway_body(429, "Throttling limits exceeded.")
        headers = {"Retry-After": str(int(round(wait)))} if self.switches["sim.qbo_retry_after_header"] else None
        return json_response(body, status, headers)

    def _route(self, request: Request, delay: float = 0.0) -> Response:
        path = request.path
        if path.rstrip("/") in DISCOVERY_PATHS:
            return json_response(discovery_document(self.base_url(request)))
        if path.rstrip("/") == "/connect/oauth2":
            return self.oauth.authorize(request)
        if path == "/oauth2/v1/tokens/bearer" and request.method == "POST":
            self.oauth.issuer = self.base_url(request) + "/op/v1"
            return self.oauth.token(request)
        if path == "/v2/oauth2/tokens/revoke" and request.method == "POST":
            return self.oauth.revoke(request)
        if path == "/v1/openid_connect/userinfo":
            return self.oauth.userinfo(request)
        if path == "/op/v1/jwks":
            return json_response(self.oauth.signer.jwks())
        if path.startswith("/app/"):
            return deep_link(self, request, path[5:].strip("/"))
        match = API_PATH.match(path)
        if match:
            return self._api(request, match.group(1), match.group(2).split("/"), delay)
        if path == "/":
            return json_response({"service": "QuickBooks Online sandbox",
                                  "discovery": self.discovery_url(request), "control": "/_sim/"})
        return json_response({"error": "not found"}, 404)

    def _api(self, request: Request, realm_id: str, parts: list[str], delay: float = 0.0) -> Response:
        denied = self.oauth.check(request.headers.get("Authorization", ""), realm_id)
        if denied is not None:
            return json_response(faults.gateway_body(*denied), denied[0])
        record = self.oauth.state.access[request.headers["Authorization"][7:].strip()]
        is_batch = parts[0] == "batch"
        wait = self.throttle.acquire(realm_id, record["client_id"], is_batch)
        if wait is not None:
            return self._throttled(wait)
        arrived = time.monotonic()
        try:
            return self._api_call(request, realm_id, parts, is_batch)
        finally:
            _answer_after(arrived, delay)  # the slot is held for the whole response time
            self.throttle.release(realm_id)

    def _api_call(self, request: Request, realm_id: str, parts: list[str], is_batch: bool) -> Response:
        request_id = request.args.get("requestid") if request.method == "POST" else None
        if request_id is not None:
            limit = MAX_BATCH_REQUESTID if is_batch else MAX_REQUESTID
            if not request_id or len(request_id) > limit:
                return api.fault_answer(self, faults.ApiFault(
                    "2130", "Invalid Request Id Format",
                    f"Request Id must be at most {limit} characters", "requestid"))
            replay = self.requestids.lookup(realm_id, request_id)
            if replay is not None:
                return Response(replay[1], status=replay[0], mimetype=replay[2])
        response = api.handle(self, request, realm_id, parts)
        if request_id is not None:
            self.requestids.remember(realm_id, request_id, response.status_code, response.get_data(),
                                     response.mimetype or "application/json")
        return response


def default_data() -> dict[str, Any]:
    """A tiny company and the demo app, used when no data set is given."""
    return {"apps": [], "companies": [{
        "realmId": "9130355377384946",
        "settings": {"country": "US", "ast": False, "class_tracking": True, "location_tracking": True,
                     "account_numbers": True, "multicurrency": False, "home_currency": "USD"},
        "CompanyInfo": {"CompanyName": "Sandbox Company US 1"},
        "entities": {
            "Account": [{"Id": "1", "Name": "Services", "AccountType": "Income", "AcctNum": "4000"},
                        {"Id": "2", "Name": "Undeposited Funds", "AccountType": "Other Current Asset",
                         "AccountSubType": "UndepositedFunds", "AcctNum": "1200"},
                        {"Id": "3", "Name": "Accounts Receivable (A/R)", "AccountType": "Accounts Receivable",
                         "AcctNum": "1100"},
                        {"Id": "4", "Name": "Checking", "AccountType": "Bank", "AcctNum": "1000"},
                        {"Id": "5", "Name": "Office Expenses", "AccountType": "Expense", "AcctNum": "6000"}],
            "Term": [{"Id": "1", "Name": "Net 30", "DueDays": 30}],
            "Item": [{"Id": "1", "Name": "Services", "Type": "Service", "IncomeAccountRef": {"value": "1"}}],
            "Customer": [{"Id": "1", "DisplayName": "Amy's Bird Sanctuary"}],
            "Vendor": [{"Id": "1", "DisplayName": "Books by Bessie"}],
        }}]}


def _answer_after(arrived: float, latency: float) -> None:
    """A latency rule sets the response time: the work done counts toward it."""
    remaining = latency - (time.monotonic() - arrived)
    if remaining > 0:
        time.sleep(remaining)
