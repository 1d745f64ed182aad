"""QuickBooks reads of the payment sync, in as few requests as QuickBooks allows: changes by
CDC or by paged queries (SPEC 10.2), and documents by id as `/batch`es of `IN` queries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from portal.integrations import errors
from portal.integrations.quickbooks import QuickBooksClient, escape

CDC_LIMIT = 1000  # objects per CDC answer; at the limit the answer may be cut short
CDC_DAYS = 30
IN_CHUNK = 100
BATCH_ITEMS = 30
PAGE = 1000
ENTITIES = ("Payment", "CreditMemo", "Invoice")


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def server_time(body: dict[str, Any]) -> datetime | None:
    """QuickBooks' `time` of an answer, as UTC."""
    text = body.get("time")
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def qbo_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class Changes:
    """What changed since the window's start."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    server_time: datetime | None = None
    method: str = "cdc"
    why_queries: str | None = None  # why CDC was not used, or not enough
    requests: int = 0

    def add(self, entity: str, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            if str(row.get("status", "")).lower() == "deleted":
                self.deleted.setdefault(entity, []).append(str(row["Id"]))
            else:
                self.objects.setdefault(entity, []).append(row)

    @property
    def found_by(self) -> str:
        """One line for the run's page: which method found the changes, and why."""
        if self.method == "cdc":
            return "Changes found by CDC"
        return "Changes found by queries" + (f" ({self.why_queries})" if self.why_queries
                                             else "")

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.objects.values()) + \
            sum(len(v) for v in self.deleted.values())


def changes_since(qbo: QuickBooksClient, since: datetime, now: datetime, *,
                  use_cdc: bool) -> Changes:
    """CDC when the window is 30 days or less and `use_cdc`; paged queries on
    `Metadata.LastUpdatedTime` otherwise, or when the CDC answer is at its limit."""
    if use_cdc and now - since <= timedelta(days=CDC_DAYS):
        body = qbo.request("GET", "/cdc", params={"entities": ",".join(ENTITIES),
                                                  "changedSince": qbo_time(since)})
        found = Changes(server_time=server_time(body), requests=1)
        for block in body.get("CDCResponse") or []:
            for response in block.get("QueryResponse") or []:
                for entity in ENTITIES:
                    found.add(entity, response.get(entity) or [])
        if found.count < CDC_LIMIT:
            return found
        paged = _queried(qbo, since, f"CDC answered {found.count:,} objects")
        paged.requests += found.requests
        paged.server_time = found.server_time or paged.server_time
        # deletions are only known to CDC: keep the ones it listed
        paged.deleted = found.deleted
        return paged
    return _queried(qbo, since, "the window is longer than 30 days" if use_cdc
                    else "CDC is off in the settings")


def _queried(qbo: QuickBooksClient, since: datetime, why: str) -> Changes:
    found = Changes(method="query", why_queries=why)
    for entity in ENTITIES:
        start = 1
        while True:
            body = qbo.request("POST", "/query", data=(
                f"SELECT * FROM {entity} WHERE Metadata.LastUpdatedTime >= "
                f"'{qbo_time(since)}' ORDERBY Metadata.LastUpdatedTime "
                f"STARTPOSITION {start} MAXRESULTS {PAGE}").encode(),
                headers={"Content-Type": "application/text"})
            found.requests += 1
            found.server_time = found.server_time or server_time(body)
            rows = (body.get("QueryResponse") or {}).get(entity) or []
            found.add(entity, rows)
            if len(rows) < PAGE:
                break
            start += PAGE
    return found


def read_by_id(qbo: QuickBooksClient, wanted: dict[str, set[str]]) -> tuple[
        dict[str, dict[str, dict[str, Any]]], int]:
    """entity -> id -> object, for every id asked, with `/batch`es of `Id IN (…)` queries
    (100 ids each, 30 queries per request). Returns the objects and the request count."""
    queries: list[tuple[str, str]] = []
    for entity, ids in wanted.items():
        for chunk in _chunks(sorted(ids), IN_CHUNK):
            queries.append((entity, f"SELECT * FROM {entity} WHERE Id IN "
                                    f"({', '.join(escape(i) for i in chunk)}) MAXRESULTS 1000"))
    found: dict[str, dict[str, dict[str, Any]]] = {entity: {} for entity in wanted}
    requests = 0
    for group in _chunks(queries, BATCH_ITEMS):
        answers = qbo.batch([{"bId": f"q{n}", "Query": text} for n, (_e, text) in
                             enumerate(group)])
        requests += 1
        by_bid = {a.get("bId"): a for a in answers}
        for n, (entity, _text) in enumerate(group):
            answer = by_bid.get(f"q{n}") or {}
            if answer.get("Fault"):
                error = (answer["Fault"].get("Error") or [{}])[0]
                raise errors.Transient(f"QuickBooks could not read {entity}: "
                                       f"{error.get('Message') or error.get('Detail')}")
            for row in (answer.get("QueryResponse") or {}).get(entity) or []:
                found[entity][str(row["Id"])] = row
    return found, requests
