"""Which DocNumbers QuickBooks already holds: `IN (…)` queries, 100 numbers each, sent 30
at a time inside /batch, so checking a thousand invoices costs one request (SPEC 7.2 step 5).
Used by the backlog check and by a batch's pre-flight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.integrations import errors
from portal.integrations.quickbooks import escape

ENTITIES = ("Invoice", "CreditMemo")
PER_QUERY = 100
PER_BATCH = 30

Send = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def taken(send: Send, numbers: list[str]) -> dict[str, tuple[str, str, str]]:
    """DocNumber -> (entity, QuickBooks id, TxnDate) of the documents already using it.

    `send` posts one /batch (the engine passes its throttle-aware wrapper).
    """
    queries = []
    for entity in ENTITIES:
        for start in range(0, len(numbers), PER_QUERY):
            chunk = ", ".join(escape(n) for n in numbers[start:start + PER_QUERY])
            queries.append({"bId": f"q{len(queries)}", "Query":
                            f"SELECT * FROM {entity} WHERE DocNumber IN ({chunk}) "
                            "MAXRESULTS 1000"})
    found: dict[str, tuple[str, str, str]] = {}
    for start in range(0, len(queries), PER_BATCH):
        for answer in send(queries[start:start + PER_BATCH]):
            if "Fault" in answer:
                raise errors.Transient(f"QuickBooks could not check DocNumbers: "
                                       f"{answer['Fault']}")
            for entity, rows in (answer.get("QueryResponse") or {}).items():
                for obj in rows if isinstance(rows, list) else []:
                    found.setdefault(str(obj.get("DocNumber")), (
                        entity, str(obj.get("Id")), str(obj.get("TxnDate"))))
    return found
