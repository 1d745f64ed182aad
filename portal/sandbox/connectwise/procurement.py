"""Purchase orders, their line items, and the PO unbatch / rebatch actions (CW-REF §20)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from . import accounting
from .context import Ctx


def _pos(ctx: Ctx) -> list[dict[str, Any]]:
    return ctx.visible_rows("purchase_orders")


def _po(ctx: Ctx, id: int) -> dict[str, Any]:
    return ctx.visible_row("purchase_orders", id, "Purchase order")


def po_list(ctx: Ctx) -> Response:
    """GET /procurement/purchaseorders."""
    return ctx.list(_pos(ctx), "PurchaseOrder")


def po_count(ctx: Ctx) -> Response:
    """GET /procurement/purchaseorders/count."""
    return ctx.count(_pos(ctx), "PurchaseOrder")


def po_get(ctx: Ctx, id: int) -> Response:
    """GET /procurement/purchaseorders/{id}."""
    return ctx.one(_po(ctx, id))


def _lines(ctx: Ctx, po: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in ctx.store.rows("po_lines") if line.get("purchaseOrderId") == po["id"]]


def line_items(ctx: Ctx, id: int, sub: int | None = None, counting: bool = False) -> Response:
    """GET /procurement/purchaseorders/{id}/lineitems[/count|/{lineId}]."""
    rows = _lines(ctx, _po(ctx, id))
    if counting:
        return ctx.count(rows, "PurchaseOrderLineItem")
    if sub is not None:
        return ctx.one(next((r for r in rows if r["id"] == sub), None), "Line item")
    return ctx.list(rows, "PurchaseOrderLineItem")


def _receipts(ctx: Ctx, po: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in ctx.store.rows("receipts") if r.get("purchaseOrderId") == po["id"]]


def unbatch(ctx: Ctx, id: int) -> Response:
    """POST …/{id}/unbatch: the PO's receipts leave their batch and are unposted again (200)."""
    po = _po(ctx, id)
    ctx.require()
    moved = 0
    for rec in _receipts(ctx, po):
        by_batch: dict[int, list[int]] = {}
        for gl_id in rec.get("_glEntryIds") or []:
            entry = ctx.store.tables["gl_entries"].get(gl_id) or {}
            if entry.get("_batch"):
                by_batch.setdefault(entry["_batch"], []).append(gl_id)
        for batch_id, gl_ids in by_batch.items():
            batch = ctx.store.get("batches", batch_id)
            if batch is not None:
                accounting.detach_entries(ctx, batch, gl_ids)
                moved += len(gl_ids)
    if not moved:
        return ctx.json({"success": False,
                         "message": f"Purchase order {po['poNumber']} has no batched items."})
    ctx.sandbox.touch()
    return ctx.json({"success": True,
                     "message": f"Purchase order {po['poNumber']} was unbatched."})


def rebatch(ctx: Ctx, id: int) -> Response:
    """POST …/{id}/rebatch: lines go back into the batch they left (`unbatchedRecId`)."""
    po = _po(ctx, id)
    ctx.require()
    moved = 0
    lines = ctx.store.tables["po_lines"]
    for rec in _receipts(ctx, po):
        batch_ids = {lines[i].get("unbatchedRecId") for i in rec.get("lineIds") or []
                     if i in lines} - {None}
        batch = ctx.store.get("batches", next(iter(batch_ids))) if batch_ids else None
        if batch is None:
            continue
        free = [g for g in rec.get("_glEntryIds") or []
                if not (ctx.store.tables["gl_entries"].get(g) or {}).get("_batch")]
        if free:
            accounting.attach_entries(ctx, batch, free)
            moved += len(free)
    if not moved:
        return ctx.json({"success": False, "message": f"Purchase order {po['poNumber']} has no "
                         "unbatched items whose batch still exists."})
    ctx.sandbox.touch()
    return ctx.json({"success": True, "message": f"Purchase order {po['poNumber']} was rebatched."})
