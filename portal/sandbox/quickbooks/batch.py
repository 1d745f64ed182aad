"""`/batch`: up to 30 independent items, each answered with its bId and its entity or Fault."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from . import entities, faults, query
from .context import Ctx
from .writes import operation_of, perform

MAX_ITEMS = 30


def run_batch(sb: Any, ctx: Ctx, request: Request) -> tuple[int, dict[str, Any]]:
    """Return (status, body) for the whole batch: HTTP 200 even when items fail."""
    payload = request.get_json(force=True, silent=True) or {}
    items = payload.get("BatchItemRequest")
    if not isinstance(items, list) or not items:
        raise faults.required("BatchItemRequest")
    if len(items) > MAX_ITEMS:
        raise faults.ApiFault("1040", "Batch size exceeds allowed limit",
                              f"Batch size exceeds allowed limit: {len(items)} items, maximum {MAX_ITEMS}",
                              "")
    kinds: dict[str, int] = {}
    for item in items:  # what the request log shows: queries are metered reads
        name = "query" if isinstance(item, dict) and "Query" in item else str(next(
            (k for k in (item if isinstance(item, dict) else {}) if k in entities.SPECS),
            "other")).lower()
        kinds[name] = kinds.get(name, 0) + 1
    request.environ["sandbox.batch_items"] = kinds
    return 200, {"BatchItemResponse": [_item(sb, ctx, item) for item in items]}


def _item(sb: Any, ctx: Ctx, item: dict[str, Any]) -> dict[str, Any]:
    bid = item.get("bId")
    answer: dict[str, Any] = {"bId": bid}
    try:
        if "Query" in item:
            _injected(sb, ctx, "query")
            answer["QueryResponse"] = query.execute(ctx.realm, item["Query"], known=entities.SPECS.keys(),
                                                    switches=ctx.switches,
                                                    render=lambda e, o: entities.render(ctx, e, o))
            return answer
        entity = next((k for k in item if k in entities.SPECS), None)
        if entity is None:
            raise faults.ApiFault("2000", "Invalid or unsupported object name",
                                  "Batch item carries no supported entity", None)
        _injected(sb, ctx, entity.lower())
        operation = operation_of({"operation": item.get("operation")}, item.get("optionsData"))
        status, body, _ = perform(ctx, entity, item[entity], operation)
        if "Fault" in body:
            answer["Fault"] = body["Fault"]
        elif entity in body:
            answer[entity] = body[entity]
    except faults.ApiFault as fault:
        answer["Fault"] = fault.fault()
    return answer


def _injected(sb: Any, ctx: Ctx, name: str) -> None:
    """Item-level `error` fault rules match the virtual path …/batch/item/<entity>."""
    path = f"/v3/company/{ctx.realm.realm_id}/batch/item/{name}"
    for rule in sb.faults.fire("POST", path, kinds=["error"]):
        if isinstance(rule.body, dict) and "Fault" in rule.body:
            error = (rule.body["Fault"].get("Error") or [{}])[0]
            raise faults.ApiFault(str(error.get("code", "10000")), error.get("Message", ""),
                                  error.get("Detail", ""), error.get("element", ""),
                                  fault_type=rule.body["Fault"].get("type", "ValidationFault"))
        raise faults.system_fault("System Failure Error: An unexpected error occurred while "
                                  "accessing or saving your data.", None)
