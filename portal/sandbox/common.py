"""Pieces both simulators share: a scalable clock, fault rules, a request log, a live server.

The sandboxes import nothing from the rest of portal (see STYLE section 5): a simulator that
borrowed our own rules would agree with our bugs. This module is the only code they share.
"""

from __future__ import annotations

import io
import json
import random
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

FAULT_KINDS = (
    "error",
    "throttle",
    "latency",
    "queued",  # the request waits `latency_ms` before it is worked: a write lands late
    "drop_after_commit",
    "timeout",
    "token_expire",
    "revoke",
    "stale",
)


class SimClock:
    """Sandbox time: wall time scaled by `speed`, which tests can freeze or advance.

    Throttle windows and token lifetimes read this clock, so a test can make an hour pass
    in a millisecond (`advance(3600)`) or run a benchmark at 60x (`speed=60`).
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._base_real = time.monotonic()
        self._base_sim = time.time() if start is None else float(start)
        self._frozen: float | None = None

    def now(self) -> float:
        """Seconds since the epoch, in sandbox time."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return self._base_sim + (time.monotonic() - self._base_real) * self._speed

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)

    def _rebase(self, sim_now: float) -> None:
        self._base_real = time.monotonic()
        self._base_sim = sim_now

    def advance(self, seconds: float) -> float:
        """Jump forward (frozen or not); returns the new time."""
        current = self.now()
        with self._lock:
            if self._frozen is not None:
                self._frozen = current + seconds
                return self._frozen
            self._rebase(current + seconds)
            return current + seconds

    def freeze(self, at: float | None = None) -> None:
        current = self.now() if at is None else float(at)
        with self._lock:
            self._frozen = current

    def unfreeze(self) -> None:
        current = self.now()
        with self._lock:
            self._frozen = None
            self._rebase(current)

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        current = self.now()
        with self._lock:
            self._rebase(current)
            self._speed = float(speed)

    def sleep(self, sim_seconds: float) -> None:
        """Sleep for `sim_seconds` of sandbox time (shorter in real time when sped up)."""
        if sim_seconds > 0 and self._frozen is None:
            time.sleep(sim_seconds / self._speed)

    def state(self) -> dict[str, Any]:
        return {"now": self.now(), "iso": self.utcnow().isoformat(), "speed": self._speed,
                "frozen": self._frozen is not None}


@dataclass
class FaultRule:
    """One injected fault: which requests it hits, what it does, how often.

    `rate` (0-1) fires at random from the seeded generator; `count` fires on the next N
    matching requests and then the rule is spent. `after` skips the first N matches.
    """

    kind: str
    target: str = "*"
    method: str = "*"
    path_regex: str = ".*"
    rate: float | None = None
    count: int | None = None
    after: int = 0
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: int = 0
    jitter_ms: int = 0
    id: int = 0
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.rate is not None and not 0 <= float(self.rate) <= 1:
            raise ValueError("rate must be between 0 and 1")
        re.compile(self.path_regex)

    def applies_to(self, target: str, method: str, path: str) -> bool:
        return (self.target in ("*", target)
                and self.method in ("*", method.upper())
                and re.search(self.path_regex, path) is not None)

    @property
    def spent(self) -> bool:
        return self.count is not None and self.fired >= self.count


class FaultSet:
    """The active fault rules of one simulator; deterministic for a given seed."""

    def __init__(self, seed: int = 0, target: str = "*") -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self.target = target
        self.seed = seed
        self._random = random.Random(seed)

    def add(self, spec: dict[str, Any] | FaultRule) -> FaultRule:
        rule = spec if isinstance(spec, FaultRule) else FaultRule(**{
            k: v for k, v in spec.items() if k not in ("id", "matched", "fired")})
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self, seed: int | None = None) -> None:
        with self._lock:
            self._rules.clear()
            if seed is not None:
                self.seed = seed
            self._random = random.Random(self.seed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def fire(self, method: str, path: str, kinds: Iterable[str] | None = None) -> list[FaultRule]:
        """Return the rules that fire for this request, counting them as fired.

        `kinds` limits the check to some kinds, so a simulator can ask for the pre-request
        faults (error, throttle, latency) and the post-commit ones at different moments.
        """
        wanted = set(kinds) if kinds is not None else None
        fired: list[FaultRule] = []
        with self._lock:
            for rule in self._rules:
                if wanted is not None and rule.kind not in wanted:
                    continue
                if rule.spent or not rule.applies_to(self.target, method, path):
                    continue
                rule.matched += 1
                if rule.matched <= rule.after:
                    continue
                if rule.rate is not None and self._random.random() >= float(rule.rate):
                    continue
                rule.fired += 1
                fired.append(rule)
        return fired

    def latency_seconds(self, rule: FaultRule) -> float:
        with self._lock:
            jitter = self._random.uniform(0, rule.jitter_ms) if rule.jitter_ms else 0
        return (rule.latency_ms + jitter) / 1000


class RequestLog:
    """Every request a simulator answered, for performance tests that count calls."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._limit = limit
        self._counts: dict[str, int] = {}

    def record(self, method: str, path: str, status: int, at: float, **extra: Any) -> None:
        key = f"{method} {path}"
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if len(self._entries) < self._limit:
                self._entries.append({"method": method, "path": path, "status": status,
                                      "at": at, **extra})

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counts.clear()


def drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's socket without an answer (the "uncertain outcome" case).

    Works under `LiveServer`, whose handler puts the socket in the environ. Raising
    ConnectionAbortedError makes Werkzeug's handler give up quietly on the request.
    """
    sock = environ.get("sandbox.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionAbortedError("sandbox dropped the connection on purpose")


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler, quiet, exposing the socket so a fault can drop it, and counting
    the connections clients open (keep-alive means one connection serves many requests)."""

    timeout = 120  # an idle kept-alive connection is closed after this many seconds

    def setup(self) -> None:
        super().setup()
        # A kept-alive answer written in two pieces (headers, body) would otherwise wait
        # for the client's delayed ACK (Nagle): 40 ms a request. Real servers set this.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        counter = getattr(self.server, "connection_counter", None)
        if counter is not None:
            counter()

    def run_wsgi(self) -> None:
        """Serve one request with HTTP/1.1 keep-alive, as the real APIs keep connections
        open (Werkzeug's own server closes every one, since it cannot tell where a request
        ends). The body is read in full first, and the app (and Werkzeug's drain of unread
        input) read that copy, so the socket stays at the next request's first byte."""
        socket_file = self.rfile
        self._keep_alive = False
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not chunked and length >= 0:
            self.rfile = io.BytesIO(socket_file.read(length) if length else b"")
            self._keep_alive = self.request_version == "HTTP/1.1" and \
                "close" not in (self.headers.get("Connection") or "").lower()
        try:
            super().run_wsgi()
        finally:
            self.rfile = socket_file

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["sandbox.socket"] = self.connection
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and \
                getattr(self, "_keep_alive", False):
            return  # the body was read in full: the connection can serve the next request
        super().send_header(keyword, value)

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        if "timed out" not in (format % args if args else format):
            super().log_error(format, *args)  # an idle kept-alive connection is not news


class LiveServer:
    """A WSGI app served over real HTTP on a loopback port, in a daemon thread."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_Handler)
        self.host = host
        self.port = self.server.port
        self.url = f"http://{host}:{self.port}"
        self._connections = 0
        self._count_lock = threading.Lock()
        self.server.connection_counter = self._opened  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        name=f"sandbox-{self.port}", daemon=True)

    def _opened(self) -> None:
        with self._count_lock:
            self._connections += 1

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._count_lock:
            return self._connections

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the `portal sandbox` commands)."""
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers,
                    mimetype="application/json")


def control(request: Request, clock: SimClock, faults: FaultSet, log: RequestLog,
            *, reset: Callable[[], None] | None = None) -> Response | None:
    """Answer the shared part of the `/_sim/` control API, or None when the path is not ours.

    GET/POST/DELETE /_sim/faults, GET/POST /_sim/clock ({"advance": s} | {"freeze": true,
    "at": t} | {"freeze": false} | {"speed": x}), GET/DELETE /_sim/requests, POST /_sim/reset.
    Each simulator adds its own endpoints (outbox, webhooks/fire) around this.
    """
    path = request.path.rstrip("/")
    method = request.method
    if path == "/_sim/faults":
        if method == "GET":
            return json_response({"seed": faults.seed, "rules": faults.rules()})
        if method == "POST":
            payload = request.get_json(silent=True)
            specs = payload if isinstance(payload, list) else [payload]
            try:
                rules = [faults.add(spec) for spec in specs if isinstance(spec, dict)]
            except (TypeError, ValueError, re.error) as exc:
                return json_response({"error": str(exc)}, 400)
            if not rules:
                return json_response({"error": "send a fault rule object or a list of them"}, 400)
            return json_response({"rules": [asdict(r) for r in rules]}, 201)
        if method == "DELETE":
            rule_id = request.args.get("id", type=int)
            if rule_id is None:
                faults.clear(seed=request.args.get("seed", type=int))
            else:
                faults.remove(rule_id)
            return Response(status=204)
    if path == "/_sim/clock":
        if method == "POST":
            payload = request.get_json(silent=True) or {}
            try:
                if "speed" in payload:
                    clock.set_speed(float(payload["speed"]))
                if "advance" in payload:
                    clock.advance(float(payload["advance"]))
                if payload.get("freeze") is True:
                    clock.freeze(payload.get("at"))
                elif payload.get("freeze") is False:
                    clock.unfreeze()
            except (TypeError, ValueError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(clock.state())
    if path == "/_sim/requests":
        if method == "DELETE":
            log.clear()
            return Response(status=204)
        return json_response({"total": log.total(), "counts": log.counts(),
                              "entries": log.entries() if request.args.get("entries") else []})
    if path == "/_sim/reset" and method == "POST" and reset is not None:
        reset()
        faults.clear()
        log.clear()
        return json_response({"reset": True})
    return None


def _pdf_escape(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(lines: list[str]) -> bytes:
    """A valid one-page PDF of text lines (Helvetica), with exact cross-reference offsets.

    Written by hand so neither simulator needs a PDF library; readers only need the xref.
    """
    content = ["BT", "/F1 11 Tf", "14 TL", "50 760 Td"]
    content += [f"({_pdf_escape(line)}) Tj T*" for line in lines]
    content.append("ET")
    stream = "\n".join(content).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)
