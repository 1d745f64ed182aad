"""Sandbox-only actions behind `/_sim/`: close a batch, re-close an invoice (new GL entry ids),
re-close a purchase order."""

from __future__ import annotations

from typing import Any

from . import views
from .defaults import complete
from .store import Store


def set_batch_closed(store: Store, payload: dict[str, Any]) -> dict[str, Any]:
    """Close or re-open a batch (what the accounting user does in the PSA screens)."""
    batch_id = payload.get("id")
    if batch_id is None and payload.get("batchIdentifier"):
        batch_id = store.batch_by_identifier.get(str(payload["batchIdentifier"]).casefold())
    batch = store.get("batches", int(batch_id)) if batch_id is not None else None
    if batch is None:
        raise ValueError("no such batch; send id or batchIdentifier")
    batch["closedFlag"] = bool(payload.get("closedFlag", True))
    return {"id": batch["id"], "batchIdentifier": batch["batchIdentifier"],
            "closedFlag": batch["closedFlag"]}


def reclose_invoice(store: Store, invoice_id: int) -> dict[str, Any]:
    """Re-open and re-close an unbatched invoice: CW rebuilds its GL entries with new ids.

    This is the "changed in ConnectWise" case of SPEC §6.3; a batched invoice is refused,
    as the PSA requires it to be unbatched first.
    """
    inv = store.get("invoices", invoice_id)
    if inv is None:
        raise ValueError(f"no invoice {invoice_id}")
    entries = store.tables["gl_entries"]
    old = list(inv.get("_glEntryIds") or [])
    if any(entries.get(i, {}).get("_batch") for i in old):
        raise ValueError(f"invoice {invoice_id} is in a batch; unbatch it first")
    template = [entries[i] for i in old if i in entries]
    if not template:
        template = [{"type": "AR", "amount": inv.get("total"), "description": "Accounts Receivable",
                     "segment1": inv.get("_arAccount"), "segment2": inv.get("_glClass")}]
        template += [{"type": ln["glTypeId"], "amount": ln["total"],
                      "description": ln.get("description"), "segment1": ln["accountNumber"],
                      "segment2": ln.get("glClass") or None} for ln in inv.get("_lines") or []]
    new_ids = []
    for entry in template:
        gl_id = store.next_id("gl_entries")
        entries[gl_id] = complete({**{k: v for k, v in entry.items() if k != "id"},
                                   "id": gl_id, "isBatched": False, "_kind": "invoice",
                                   "_owner": invoice_id, "_batch": None}, "GLEntry")
        new_ids.append(gl_id)
    for gl_id in old:
        entries.pop(gl_id, None)
    inv["_glEntryIds"] = new_ids
    views.refresh(store, "invoice", invoice_id)
    return {"invoice_id": invoice_id, "old_gl_entry_ids": old, "gl_entry_ids": new_ids}


def reclose_po(store: Store, po_id: int, day: str) -> dict[str, Any]:
    """Re-open a purchase order and close it again on `day`: the PO's `dateClosed`, and the
    close date its unbatched receipts carry (unposted `dateClosed`, GL export
    `documentDate`), move to that day; batched receipts keep theirs [inferred]."""
    po = store.get("purchase_orders", po_id)
    if po is None:
        raise ValueError(f"no purchase order {po_id}")
    when = day[:10] + "T00:00:00Z"
    po["dateClosed"] = when
    moved = []
    for rec in store.tables["receipts"].values():
        if rec["purchaseOrderId"] != po_id or views.is_posted(store, rec.get("_glEntryIds") or []):
            continue
        rec["_dateClosed"] = when
        moved.append(rec["id"])
        views.refresh(store, "receipt", rec["id"])
    return {"po_id": po_id, "dateClosed": when, "receipts": moved}
