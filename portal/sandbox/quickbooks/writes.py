"""Write operations shared by single calls and /batch: create, update, delete, void, settings."""

from __future__ import annotations

from typing import Any

from . import blanks, entities, faults
from .context import Ctx
from .prefs import settings_from_preferences
from .util import meta_time

WriteAnswer = tuple[int, dict[str, Any], bool]  # status, body without time, add time?


def operation_of(params: Any, options: str | None = None) -> str:
    """write | delete | void from ?operation=, ?include=void or batch optionsData."""
    op = str(params.get("operation") or "").lower()
    include = str(params.get("include") or "").lower()
    if op == "delete":
        return "delete"
    if op == "void" or "void" in include.split(",") or str(options or "").lower() == "void":
        return "void"
    if op in ("", "create", "update"):
        return "write"
    raise faults.unsupported(op)


def perform(ctx: Ctx, entity: str, body: dict[str, Any], operation: str) -> WriteAnswer:
    """One write, shared by single calls and /batch items."""
    if not isinstance(body, dict):
        raise faults.ApiFault("2010", "Request has invalid or unsupported property",
                              "Property Name:Can not deserialize the request body", "")
    if entity in ("CompanyInfo", "Preferences"):
        return 200, {entity: _settings_update(ctx, entity, body)}, True
    if operation == "delete":
        return 200, {entity: entities.delete(ctx, entity, body)}, True
    if operation == "void":
        return _void(ctx, entity, body)
    if body.get("Id") not in (None, ""):
        obj = entities.update(ctx, entity, body)
    else:
        obj = entities.create(ctx, entity, body)
    return 200, {entity: entities.render(ctx, entity, obj)}, True


def _void(ctx: Ctx, entity: str, body: dict[str, Any]) -> WriteAnswer:
    sw = ctx.switches
    if entity == "Bill":
        if sw.get("sim.qbo_void_bill_http200_fault"):
            return 200, {"Fault": faults.system_fault().fault()}, False
        raise faults.unsupported("void")
    if entity == "Purchase" and sw.get("sim.qbo_void_purchase_unsupported"):
        raise faults.unsupported("void")
    if entity == "JournalEntry" and sw.get("sim.qbo_void_journalentry_noop"):
        return 200, {"BatchItemResponse": []}, True
    if entity == "CreditMemo" and not sw.get("sim.qbo_void_creditmemo_supported"):
        raise faults.unsupported("void")
    if entity not in ("Invoice", "Payment", "SalesReceipt", "Purchase", "JournalEntry", "CreditMemo"):
        raise faults.unsupported("void")
    obj = entities.void(ctx, entity, body)
    return 200, {entity: entities.render(ctx, entity, obj)}, True


def _settings_update(ctx: Ctx, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    realm = ctx.realm
    current = realm.company_info if entity == "CompanyInfo" else realm.preferences
    if str(body.get("SyncToken")) != current.get("SyncToken"):
        raise faults.stale()
    sent = blanks.drop_blanks(entity, {k: v for k, v in body.items()
                                       if k not in entities.SERVER_FIELDS})
    merged = _deep_merge(current, sent)
    merged["SyncToken"] = str(int(current["SyncToken"]) + 1)
    merged["MetaData"] = {**current.get("MetaData", {}), "LastUpdatedTime": meta_time(ctx.now)}
    if entity == "CompanyInfo":
        realm.company_info = merged
    else:
        realm.preferences = merged
        realm.settings = settings_from_preferences(merged, realm.settings)
    return merged


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and \
            isinstance(out.get(key), dict) else value
    return out
