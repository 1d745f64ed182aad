"""Per-request context handed to every handler: the store, the caller, its visibility and helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from werkzeug.wrappers import Request, Response

from . import query
from .errors import CwError, not_found
from .render import render

if TYPE_CHECKING:
    from .sandbox import ConnectWiseSandbox
    from .store import Store


@dataclass
class Ctx:
    """What a handler needs: request, sandbox, caller and the URL bases for hrefs and Link."""

    request: Request
    sandbox: "ConnectWiseSandbox"
    base: str
    root: str
    member: dict[str, Any]
    locations: set[int] | None
    require: Callable[[], None] = lambda: None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> "Store":
        """The sandbox's store (callers hold its lock inside handlers)."""
        return self.sandbox.store

    def switch(self, name: str) -> Any:
        """The value of a `sim.cw_*` switch."""
        return self.sandbox.switches.get(name)

    def visible(self, location_id: Any) -> bool:
        """System Level: a member below Level 1 sees only its own location's records."""
        return self.locations is None or location_id in self.locations

    def visible_rows(self, table: str) -> list[dict[str, Any]]:
        """The table's records the caller's System Level lets it see."""
        return [r for r in self.store.rows(table) if self.visible(r.get("locationId"))]

    def visible_row(self, table: str, id: int, what: str) -> dict[str, Any]:
        """One visible record, or the 404 a hidden or unknown one gets."""
        row = self.store.get(table, id)
        if row is None or not self.visible(row.get("locationId")):
            raise not_found(f"{what} {id} was not found.")
        return row

    def now_iso(self) -> str:
        """Sandbox time as CW writes date-times (`…Z`, seconds)."""
        return self.sandbox.clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")

    def who(self) -> str:
        """The caller's member identifier, for `updatedBy` and `appliedBy`."""
        return str(self.member.get("identifier", "api"))

    def body(self) -> Any:
        """The JSON body; a malformed one is a 400, as on the real server."""
        raw = self.request.get_data(cache=True)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise CwError(400, "InvalidObject", "The request body is not valid JSON.") from None

    def list(self, records: Iterable[dict], schema: str) -> Response:
        """A bare JSON array page with its Link header."""
        page, headers = query.list_response(
            self.request, records, schema, self.base, self.root,
            int(self.switch("cw_max_page_size") or 1000))
        return self.json(page, 200, headers, rendered=True)

    def count(self, records: Iterable[dict], schema: str) -> Response:
        """A `{count}` answer over the visible records."""
        return self.json(query.count(self.request, records, schema))

    def one(self, record: dict | None, what: str = "record") -> Response:
        """One rendered record, or the 404 body when it is missing."""
        if record is None:
            raise not_found(f"{what} was not found.")
        return self.json(query.shape(self.request, record, self.base), rendered=True)

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None,
             rendered: bool = False) -> Response:
        """A JSON answer; stored data is rendered (nulls dropped, hrefs) unless already done."""
        body = data if rendered else render(data, self.base)
        return Response(json.dumps(body), status=status, headers=headers,
                        mimetype="application/json")
