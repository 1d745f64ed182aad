"""The ConnectWise PSA sandbox: a WSGI app with auth, routing, faults, the `/_sim/` API and state."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, Callable, Iterable

from werkzeug.wrappers import Request, Response

from ..common import (
    FaultSet,
    RequestLog,
    SimClock,
    control,
    drop_connection,
    json_response,
)
from . import auth, faults, permissions, routes, simops, views
from . import switches as sim_switches
from .context import Ctx
from .errors import CwError, forbidden, not_found
from .faults import PRE_KINDS
from .store import Saver, Store

API_PATH = re.compile(r"^/(?:(?P<codebase>[^/]+)/)?apis/3\.0(?:/(?P<rest>.*))?$", re.I)
COMPANY_INFO = re.compile(r"^/login/companyinfo/(?P<company>[^/]*)/?$", re.I)


class ConnectWiseSandbox:
    """A local ConnectWise PSA: the REST API of CW-REF, fed by the demo data set.

    Thread-safe: one lock guards the store; injected latency and timeouts sleep outside it.
    """

    def __init__(self, *, data: dict | None = None, state_path: Any = None,
                 clock: SimClock | None = None, seed: int = 0,
                 switches: dict | None = None, public_url: str | None = None) -> None:
        self.clock = clock or SimClock()
        self.faults = FaultSet(seed=seed, target="cw")
        self.log = RequestLog()
        self.switches: dict[str, Any] = sim_switches.merged(switches)
        self._start_switches = dict(self.switches)
        self.public_url = public_url.rstrip("/") + "/" if public_url else None
        self.seed = seed
        self.store = Store()
        self.saver = Saver(self.store, state_path)
        self._initial = data
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._stop = threading.Event()
        if not self.saver.load_if_present():
            self.load(self._initial_data())
        else:
            views.rebuild(self.store)

    # ------------------------------------------------------------ state

    def _initial_data(self) -> dict:
        if self._initial is None:
            from ..demo_data import generate
            self._initial = generate(seed=self.seed or 42)["connectwise"]
        return self._initial

    def load(self, data: dict) -> None:
        """Replace the state with a data set (the "connectwise" part of demo_data.generate())."""
        with self.store.lock:
            self.store.load(data)
            views.rebuild(self.store)
        self.touch()

    def dump(self) -> dict:
        """The whole state as JSON-ready data; `load(dump())` restores it."""
        return self.store.dump()

    def reset(self) -> None:
        """Back to the initial data set and start-up switches (the `--reset` of the demo)."""
        self.switches.clear()
        self.switches.update(self._start_switches)
        self.load(self._initial_data())

    def touch(self) -> None:
        """Schedule a debounced save after a write (no-op without a state path)."""
        self.saver.touch()

    def close(self) -> None:
        """Flush pending saves and release hanging `timeout` faults."""
        self._stop.set()
        self.saver.cancel()
        self.saver.save_now()

    @property
    def credentials(self) -> dict[str, Any]:
        """The demo API member's company id, keys and clientId."""
        return dict(self.store.meta.get("credentials", {}))

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The WSGI entry point (also `__call__`), for LiveServer or a transport adapter."""
        request = Request(environ)
        response = self.dispatch(request, environ)
        return response(environ, start_response)

    def dispatch(self, request: Request, environ: dict) -> Response:
        """Answer one request: control API, company info, or the REST API."""
        path = request.path
        if path.lower().startswith("/_sim"):
            return self._control(request)
        info = COMPANY_INFO.match(path)
        if info:
            company = info.group("company")
            return self._guarded(request, environ, lambda: (self._company_info(company), {}))
        api = API_PATH.match(path)
        if not api:
            return self._finish(request, self._error(not_found("The requested URL was not found.")))
        codebase, rest = api.group("codebase") or "", api.group("rest") or ""
        return self._guarded(request, environ,
                             lambda: self._route(request, codebase, request.method.upper(), rest))

    def _company_info(self, company: str) -> Response:
        """GET /login/companyinfo/{company}: no auth; 200 `null` for an unknown company."""
        info = self.store.meta.get("company_info", {})
        known = company.casefold() == str(info.get("CompanyID", "")).casefold()
        return json_response(info if known else None)

    def _guarded(self, request: Request, environ: dict,
                 answer: Callable[[], tuple[Response, dict[str, Any]]]) -> Response:
        """Run `answer` inside the fault rules: pre-request faults, then drop-after-commit."""
        method = request.method.upper()
        drop = False
        started = time.monotonic()
        latency = 0.0
        request.get_data(cache=True)  # the request has arrived whole before it is worked
        try:
            for rule in self.faults.fire(method, request.path, PRE_KINDS):
                latency += faults.apply_before(rule, self.faults, self.switches, self._stop)
            drop = bool(self.faults.fire(method, request.path, ["drop_after_commit"]))
            response, notes = answer()
        except CwError as err:
            response, notes = self._error(err), {}
        except (ConnectionAbortedError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a sandbox bug still answers in the vendor's 500 shape
            response = self._error(CwError(500, "UnexpectedError",
                                           f"An unexpected error has occurred: {exc!r}"))
            notes = {"exception": repr(exc)}
        remaining = latency - (time.monotonic() - started)
        if remaining > 0:  # a latency rule sets the response time, work included
            time.sleep(remaining)
        self._finish(request, response, **notes)
        if drop:
            drop_connection(environ)
        return response

    def _route(self, request: Request, codebase: str, method: str,
               rest: str) -> tuple[Response, dict[str, Any]]:
        parts = [p for p in rest.lower().split("/") if p]
        auth.check_client_id(self, request)
        member = auth.authenticate(self, request)
        route, params, known = routes.find(method, parts)
        if route is None:
            if known:
                raise CwError(405, "MethodNotAllowed",
                              f"The requested resource does not support http method '{method}'.")
            raise not_found("The requested URL was not found.")
        ctx = self._context(request, codebase, member)
        if route.permission is not None:
            function, verb = route.permission
            role = auth.role_of(self, member)

            def require() -> None:
                if not permissions.allows(role, function, verb):
                    raise forbidden(function[0], function[1], verb)
            if self.switches.get("cw_permission_before_validation") or method == "GET":
                require()
            else:
                ctx.require = require
        with self.store.lock:
            response = route.handler(ctx, **params)
        return response, ctx.notes

    def _context(self, request: Request, codebase: str, member: dict[str, Any]) -> Ctx:
        root = self.public_url or request.host_url
        prefix = f"{codebase}/" if codebase else ""
        return Ctx(request=request, sandbox=self, base=f"{root}{prefix}apis/3.0/", root=root,
                   member=member, locations=auth.visible_locations(self, member))

    def _error(self, err: CwError) -> Response:
        return Response(json.dumps(err.body()), status=err.status, headers=err.headers,
                        mimetype="application/json")

    def _finish(self, request: Request, response: Response, **notes: Any) -> Response:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        response.headers.setdefault("api-current-version", "2025.1")
        response.headers.setdefault("x-cw-request-id", f"sandbox-{seq:08d}")
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("Pragma", "no-cache")
        self.log.record(request.method, request.path, response.status_code, self.clock.now(),
                        **notes)
        return response

    # ------------------------------------------------------------ /_sim/

    def _control(self, request: Request) -> Response:
        shared = control(request, self.clock, self.faults, self.log, reset=self.reset)
        if shared is not None:
            return shared
        path = request.path.rstrip("/").lower()
        try:
            if path == "/_sim/switches":
                return self._sim_switches(request)
            if path == "/_sim/state":
                return self._sim_state(request)
            if path == "/_sim/role":
                return self._sim_role(request)
            if path == "/_sim/batches" and request.method == "POST":
                with self.store.lock:
                    answer = simops.set_batch_closed(self.store, request.get_json(silent=True) or {})
                self.touch()
                return json_response(answer)
            if path == "/_sim/reclose" and request.method == "POST":
                payload = request.get_json(silent=True) or {}
                with self.store.lock:
                    answer = simops.reclose_invoice(self.store, int(payload["invoice_id"]))
                self.touch()
                return json_response(answer)
            if path == "/_sim/reclose_po" and request.method == "POST":
                payload = request.get_json(silent=True) or {}
                with self.store.lock:
                    answer = simops.reclose_po(self.store, int(payload["po_id"]),
                                               str(payload["date"]))
                self.touch()
                return json_response(answer)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"error": f"unknown control endpoint {request.path}"}, 404)

    def _sim_switches(self, request: Request) -> Response:
        if request.method == "POST":
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict):
                raise ValueError("send an object of switch names and values")
            self.switches.update(sim_switches.merged({**self.switches, **payload}))
        return json_response(self.switches)

    def _sim_state(self, request: Request) -> Response:
        if request.method == "POST":
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict):
                raise ValueError("send a data set object")
            self.load(payload)
        if request.args.get("full"):
            return json_response(self.dump())
        with self.store.lock:
            summary = {
                "tables": {name: len(rows) for name, rows in self.store.tables.items()},
                "unposted": {name: len(rows) for name, rows in self.store.unposted.items()},
                "batches": [{"id": b["id"], "batchIdentifier": b["batchIdentifier"],
                             "closedFlag": b.get("closedFlag", False),
                             "entries": len(b.get("_entryIds", []))}
                            for b in self.store.rows("batches")],
                "credentials": self.credentials,
            }
        return json_response(summary)

    def _sim_role(self, request: Request) -> Response:
        with self.store.lock:
            payload = request.get_json(silent=True) if request.method == "POST" else None
            member_id = int((payload or {}).get("member_id")
                            or self.credentials.get("member_id") or 0)
            member = self.store.get("members", member_id)
            if member is None:
                raise ValueError(f"no member {member_id}")
            if payload is not None:
                self._apply_role(member, payload)
            return json_response(self._role_state(member))

    def _apply_role(self, member: dict[str, Any], payload: dict[str, Any]) -> None:
        """Change the API member's role permissions and System Level (SPEC §3.2-3.3)."""
        roles = self.store.meta.setdefault("roles", {})
        name = str(payload.get("name") or (member.get("securityRole") or {}).get("name")
                   or "API Role")
        current = permissions.normalise(roles.get(name, {}))
        if "permissions" in payload:
            current = permissions.normalise(payload["permissions"])
        for fn, verbs in (payload.get("revoke") or {}).items():
            current[fn] = [v for v in current.get(fn, []) if v not in
                           permissions.normalise({fn: verbs})[fn]]
        for fn, verbs in (payload.get("grant") or {}).items():
            current[fn] = sorted(set(current.get(fn, [])) | set(permissions.normalise({fn: verbs})[fn]))
        roles[name] = current
        member["securityRole"] = {"id": member.get("securityRole", {}).get("id", 99), "name": name}
        if "system_level" in payload:
            member["_systemLevel"] = int(payload["system_level"])
        if "location_id" in payload:
            loc = self.store.get("locations", int(payload["location_id"]))
            if loc is None:
                raise ValueError(f"no location {payload['location_id']}")
            member["securityLocation"] = {"id": loc["id"], "name": loc["name"], "_info": {
                "location_href": f"{{base}}system/locations/{loc['id']}"}}
        self.touch()

    def _role_state(self, member: dict[str, Any]) -> dict[str, Any]:
        name = (member.get("securityRole") or {}).get("name")
        return {"member_id": member["id"], "name": name,
                "permissions": self.store.meta.get("roles", {}).get(name, {}),
                "system_level": int(member.get("_systemLevel") or 1),
                "location_id": (member.get("securityLocation") or {}).get("id")}
