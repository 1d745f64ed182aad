"""Accounting Interface endpoints: unposted lists, the GL export, and accounting batches (CW-REF §9-12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from werkzeug.wrappers import Response

from . import glexport, views
from .conditions import parse_date
from .context import Ctx
from .defaults import complete, complete_all
from .errors import CwError, invalid, not_found

UNPOSTED_SCHEMA = views.VIEW_SCHEMA


def _visible_rows(ctx: Ctx, name: str) -> list[dict[str, Any]]:
    return [v for v in ctx.store.unposted[name].values() if ctx.visible(v.get("locationId"))]


def unposted_list(ctx: Ctx, name: str) -> Response:
    """GET /finance/accounting/unposted{invoices|expenses|procurement}."""
    return ctx.list(_visible_rows(ctx, name), UNPOSTED_SCHEMA[name])


def unposted_count(ctx: Ctx, name: str) -> Response:
    """GET …/unposted*/count: the same visibility and conditions as the list."""
    return ctx.count(_visible_rows(ctx, name), UNPOSTED_SCHEMA[name])


def _unposted_row(ctx: Ctx, name: str, row_id: int) -> dict[str, Any]:
    row = ctx.store.unposted[name].get(row_id)
    if row is None or not ctx.visible(row.get("locationId")):
        raise not_found(f"Unposted record {row_id} was not found.")
    return row


def unposted_get(ctx: Ctx, name: str, id: int) -> Response:
    """GET …/unposted*/{id}: one unposted row (404 when batched or hidden)."""
    return ctx.one(_unposted_row(ctx, name, id))


def _taxable_levels(ctx: Ctx, name: str, row_id: int) -> list[dict[str, Any]]:
    row = _unposted_row(ctx, name, row_id)
    kind, owner_id = row["_owner"]
    owner = ctx.store.tables[views.OWNER_TABLE[kind]][owner_id]
    return [{"id": lv["taxLevel"], "taxLevel": lv["taxLevel"], "taxCodeXref": lv["taxCodeXref"],
             "taxAmount": lv.get("taxAmount"), "_info": {}}
            for lv in owner.get("_taxLevels") or []]


def taxable_levels(ctx: Ctx, name: str, id: int, sub: int | None = None,
                   counting: bool = False) -> Response:
    """GET …/unposted*/{parentId}/taxableLevels[/count|/{id}]."""
    schema = UNPOSTED_SCHEMA[name] + "TaxableLevel"
    rows = complete_all(_taxable_levels(ctx, name, id), schema)
    if counting:
        return ctx.count(rows, schema)
    if sub is not None:
        return ctx.one(next((r for r in rows if r["id"] == sub), None), "Taxable level")
    return ctx.list(rows, schema)


def unposted_payments(ctx: Ctx, id: int | None = None, counting: bool = False) -> Response:
    """GET /finance/accounting/unpostedpayments: invoice payments not yet in a batch."""
    rows = []
    for pay in ctx.store.rows("payments"):
        inv = ctx.store.tables["invoices"].get(pay["invoice"]["id"]) or {}
        if pay.get("glBatchID") or not ctx.visible(inv.get("locationId")):
            continue
        rows.append({"id": pay["id"], "type": pay.get("type"), "source": pay.get("source"),
                     "invoice": pay["invoice"], "amount": pay.get("amount"),
                     "paymentDate": pay.get("paymentDate"), "appliedBy": pay.get("appliedBy"),
                     "_info": pay.get("_info"), "wisePayPayment": pay.get("wisePayPayment"),
                     "paymentSyncStatus": pay.get("paymentSyncStatus")})
    complete_all(rows, "UnpostedPayments")
    if counting:
        return ctx.count(rows, "UnpostedPayments")
    if id is not None:
        return ctx.one(next((r for r in rows if r["id"] == id), None), "Unposted payment")
    return ctx.list(rows, "UnpostedPayments")


# ---------------------------------------------------------------- GL export

def _ids(body: dict[str, Any], name: str, cast: type = int) -> set | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid("exportAccountingBatch", "InvalidValue", f"{name} must be a list.", name)
    try:
        return {cast(v) for v in value}
    except (TypeError, ValueError):
        raise invalid("exportAccountingBatch", "InvalidValue",
                      f"{name} holds a value that is not valid.", name) from None


def _thru(ctx: Ctx, body: dict[str, Any]) -> datetime:
    raw = body.get("thruDate")
    if raw in (None, ""):
        return ctx.sandbox.clock.utcnow()
    when = parse_date(str(raw))
    if when is None:
        raise invalid("exportAccountingBatch", "InvalidValue",
                      f"thruDate '{raw}' is not a valid date.", "thruDate")
    return when


def _before(value: str | None, thru: datetime) -> bool:
    when = parse_date(value or "")
    return when is None or when <= thru


def _pick_invoices(ctx: Ctx, body: dict[str, Any], thru: datetime,
                   location: Any) -> list[tuple[str, int]]:
    included = _ids(body, "includedInvoiceIds")
    excluded = _ids(body, "excludedInvoiceIds") or set()
    kind = ctx.switch("cw_export_invoice_id_kind") or "both"
    picked = []
    matched = {"invoice_id": 0, "unposted_id": 0}
    for row in sorted(_visible_rows(ctx, "invoices"), key=lambda r: r["id"]):
        if location is not None and row.get("locationId") != location:
            continue
        keys = {"invoice_id": row["billingLogId"], "unposted_id": row["id"]}
        accepted = ["invoice_id", "unposted_id"] if kind == "both" else [kind]
        if included is not None:
            hit = [k for k in accepted if keys[k] in included]
            if not hit:
                continue
            matched[hit[0]] += 1
        elif not _before(row.get("invoiceDate"), thru):
            continue
        if any(keys[k] in excluded for k in accepted):
            continue
        picked.append(row["_owner"])
    if included is not None:
        ctx.notes["included_invoice_ids_matched"] = matched
    return picked


def _pick_generic(ctx: Ctx, body: dict[str, Any], name: str, inc: str, exc: str,
                  key_fields: tuple[str, ...], date_field: str, thru: datetime,
                  location: Any, cast: type) -> list[tuple[str, int]]:
    included = _ids(body, inc, cast)
    excluded = _ids(body, exc, cast) or set()
    picked = []
    for row in sorted(_visible_rows(ctx, name), key=lambda r: r["id"]):
        if location is not None and row.get("locationId") != location:
            continue
        keys = {cast(row[k]) for k in key_fields if row.get(k) is not None}
        if included is not None and not keys & included:
            continue
        if included is None and not _before(row.get(date_field), thru):
            continue
        if keys & excluded:
            continue
        picked.append(row["_owner"])
    return picked


def select_records(ctx: Ctx, body: dict[str, Any]) -> list[tuple[str, int]]:
    """The unposted records an export request names (flags, ids, thruDate, location)."""
    flags = [body.get("exportInvoicesFlag"), body.get("exportExpensesFlag"),
             body.get("exportProductsFlag"), body.get("exportPaymentsFlag")]
    if not any(flag is True for flag in flags):
        raise invalid("exportAccountingBatch", "InvalidValue",
                      "Export must include invoices, expenses, or products.", "exportInvoicesFlag")
    thru = _thru(ctx, body)
    location = body.get("locationId")
    owners: list[tuple[str, int]] = []
    if body.get("exportInvoicesFlag") is True:
        owners += _pick_invoices(ctx, body, thru, location)
    if body.get("exportExpensesFlag") is True:
        owners += _pick_generic(ctx, body, "expenses", "includedExpenseIds", "excludedExpenseIds",
                                ("expenseDetailId", "id"), "dateExpense", thru, location, int)
    if body.get("exportProductsFlag") is True:
        owners += _pick_generic(ctx, body, "procurement", "includedProductIds",
                                "excludedProductIds", ("unpostedProductId", "id"), "dateClosed",
                                thru, location, str)
    return owners


def export(ctx: Ctx) -> Response:
    """POST /finance/accounting/export: a read-only GLExport of unposted records (200)."""
    body = ctx.body() or {}
    if not isinstance(body, dict):
        raise invalid("exportAccountingBatch", "InvalidValue", "Send a JSON object.", "body")
    owners = select_records(ctx, body)
    settings = {k: v for k, v in body.items() if not k.endswith("Ids")}
    return ctx.json(glexport.build(ctx.store, owners, settings))


# ---------------------------------------------------------------- batches

def _live_batches(ctx: Ctx) -> list[dict[str, Any]]:
    return list(ctx.store.rows("batches"))


def batch_list(ctx: Ctx) -> Response:
    """GET /finance/accounting/batches: live batches (look-ups by batchIdentifier)."""
    return ctx.list(_live_batches(ctx), "AccountingBatch")


def batch_count(ctx: Ctx) -> Response:
    """GET /finance/accounting/batches/count."""
    return ctx.count(_live_batches(ctx), "AccountingBatch")


def batch_get(ctx: Ctx, id: int) -> Response:
    """GET /finance/accounting/batches/{id}: an AccountingBatch."""
    return ctx.one(ctx.store.get("batches", id), f"Accounting batch {id}")


def _batch_error(code: str, message: str, field: str) -> CwError:
    return invalid("accountingBatch", code, message, field)


def _validate_batch(ctx: Ctx, body: Any) -> tuple[str, list[int]]:
    if not isinstance(body, dict):
        raise _batch_error("MissingRequiredField", "processedRecordIds is required.",
                           "processedRecordIds")
    ids = body.get("processedRecordIds")
    if not isinstance(ids, list) or not ids:
        raise _batch_error("MissingRequiredField", "processedRecordIds is required.",
                           "processedRecordIds")
    try:
        gl_ids = [int(i) for i in ids]
    except (TypeError, ValueError):
        raise _batch_error("InvalidValue", "processedRecordIds must hold integers.",
                           "processedRecordIds") from None
    if not any(body.get(f) is True for f in ("exportInvoicesFlag", "exportExpensesFlag",
                                              "exportProductsFlag")):
        raise _batch_error("InvalidValue", "Batch must export Invoices, Expenses or Products.",
                           "exportInvoicesFlag")
    identifier = body.get("batchIdentifier")
    if identifier in (None, ""):
        identifier = ctx.sandbox.clock.utcnow().strftime("%Y%m%d%H%M%S")
    identifier = str(identifier)
    if len(identifier) > 50:
        raise _batch_error("OutOfRange", "The field batchIdentifier must be a string with a "
                           "maximum length of 50.", "batchIdentifier")
    if ctx.store.batch_identifier_taken(identifier):
        raise _batch_error("ObjectExists", f"The batch identifier '{identifier}' already exists.",
                           "batchIdentifier")
    entries = ctx.store.tables["gl_entries"]
    for gl_id in gl_ids:
        entry = entries.get(gl_id)
        if entry is None or not _entry_visible(ctx, entry):
            raise _batch_error("InvalidValue", f"GL entry {gl_id} was not found.",
                               "processedRecordIds")
        if entry.get("_batch"):
            raise _batch_error("InvalidValue", f"GL entry {gl_id} is already in a batch.",
                               "processedRecordIds")
    return identifier, gl_ids


def _entry_visible(ctx: Ctx, entry: dict[str, Any]) -> bool:
    owner = ctx.store.tables[views.OWNER_TABLE[entry["_kind"]]].get(entry["_owner"]) or {}
    if entry["_kind"] == "receipt":
        owner = ctx.store.tables["purchase_orders"].get(owner.get("purchaseOrderId")) or {}
    return ctx.visible(owner.get("locationId"))


def batch_create(ctx: Ctx) -> Response:
    """POST /finance/accounting/batches: 201 with a GLExport; the records leave the lists."""
    body = ctx.body()
    identifier, gl_ids = _validate_batch(ctx, body)
    ctx.require()
    batch_id = ctx.store.next_id("batches")
    batch = {"id": batch_id, "batchIdentifier": identifier,
             "exportInvoicesFlag": bool(body.get("exportInvoicesFlag")),
             "exportExpensesFlag": bool(body.get("exportExpensesFlag")),
             "exportProductsFlag": bool(body.get("exportProductsFlag")), "closedFlag": False,
             "_info": {"lastUpdated": ctx.now_iso(), "updatedBy": ctx.who()},
             "_entryIds": list(gl_ids)}
    ctx.store.tables["batches"][batch_id] = complete(batch, "AccountingBatch")
    ctx.store.batch_by_identifier[identifier.casefold()] = batch_id
    owners = attach_entries(ctx, batch, gl_ids)
    ctx.sandbox.touch()
    return ctx.json(glexport.build(ctx.store, owners, {"batchIdentifier": identifier}), 201)


def _batch_ref(batch: dict[str, Any]) -> dict[str, Any]:
    return {"id": batch["id"], "name": batch["batchIdentifier"],
            "_info": {"batch_href": f"{{base}}finance/accounting/batches/{batch['id']}"}}


def attach_entries(ctx: Ctx, batch: dict[str, Any], gl_ids: list[int]) -> list[tuple[str, int]]:
    """Put GL entries into a batch and refresh their records' unposted state and flags."""
    entries = ctx.store.tables["gl_entries"]
    owners: list[tuple[str, int]] = []
    for gl_id in gl_ids:
        entry = entries[gl_id]
        entry["_batch"] = batch["id"]
        entry["isBatched"] = True
        owner = (entry["_kind"], entry["_owner"])
        if owner not in owners:
            owners.append(owner)
    batch["_entryIds"] = sorted(set(batch["_entryIds"]) | set(gl_ids))
    for kind, owner_id in owners:
        after_change(ctx, kind, owner_id, batch)
    return owners


def after_change(ctx: Ctx, kind: str, owner_id: int, batch: dict[str, Any] | None,
                 left: dict[str, Any] | None = None) -> None:
    """Sync the record's own flags (glBatch, batchedFlag) with its GL entries' batch state."""
    store = ctx.store
    rec = store.tables[views.OWNER_TABLE[kind]].get(owner_id)
    if rec is None:
        return
    posted = views.is_posted(store, rec.get("_glEntryIds") or [])
    if kind == "invoice":
        if posted and batch is not None:
            rec["glBatch"] = _batch_ref(batch)
        elif not posted:
            rec["glBatch"] = None
            if left is not None:
                rec["unbatchedBatch"] = _batch_ref(left)
    if kind == "receipt":
        for line_id in rec.get("lineIds") or []:
            line = store.tables["po_lines"].get(line_id)
            if line is not None:
                line["batchedFlag"] = posted
                if not posted and left is not None:
                    line["unbatchedRecId"] = left["id"]
                elif posted:
                    line["unbatchedRecId"] = None
    views.refresh(store, kind, owner_id)


def detach_entries(ctx: Ctx, batch: dict[str, Any], gl_ids: list[int]) -> None:
    """Take GL entries out of a batch; their records return to the unposted lists."""
    entries = ctx.store.tables["gl_entries"]
    owners: list[tuple[str, int]] = []
    for gl_id in gl_ids:
        entry = entries.get(gl_id)
        if entry is None:
            continue
        entry["_batch"] = None
        entry["isBatched"] = False
        owner = (entry["_kind"], entry["_owner"])
        if owner not in owners:
            owners.append(owner)
    leaving = set(gl_ids)
    batch["_entryIds"] = [i for i in batch["_entryIds"] if i not in leaving]
    for kind, owner_id in owners:
        after_change(ctx, kind, owner_id, None, left=batch)


def batch_delete(ctx: Ctx, id: int) -> Response:
    """DELETE /finance/accounting/batches/{id}: 204; records unposted again; closed ones refused."""
    batch = ctx.store.get("batches", id)
    if batch is None:
        raise not_found(f"Accounting batch {id} was not found.")
    if batch.get("closedFlag"):
        raise _batch_error("InvalidValue", "Closed batches cannot be deleted.", "closedFlag")
    ctx.require()
    detach_entries(ctx, batch, list(batch["_entryIds"]))
    del ctx.store.tables["batches"][id]
    ctx.store.retire_identifier(batch["batchIdentifier"])
    ctx.sandbox.touch()
    return Response(status=204)


def batch_entries(ctx: Ctx, id: int, sub: int | None = None, counting: bool = False) -> Response:
    """GET /finance/accounting/batches/{id}/entries[/count|/{entryId}]: BatchEntry rows."""
    batch = ctx.store.get("batches", id)
    if batch is None:
        raise not_found(f"Accounting batch {id} was not found.")
    rows = [complete(batch_entry(ctx, ctx.store.tables["gl_entries"][i]), "BatchEntry")
            for i in batch["_entryIds"] if i in ctx.store.tables["gl_entries"]]
    if counting:
        return ctx.count(rows, "BatchEntry")
    if sub is not None:
        return ctx.one(next((r for r in rows if r["id"] == sub), None), "Batch entry")
    return ctx.list(rows, "BatchEntry")


def batch_entry(ctx: Ctx, entry: dict[str, Any]) -> dict[str, Any]:
    """One BatchEntry: the GL line with a reference to the record it belongs to."""
    store = ctx.store
    amount = float(entry.get("amount") or 0.0)
    row: dict[str, Any] = {"id": entry["id"], "accountType": entry.get("type"),
                           "name": entry.get("description"), "accountNumber": entry.get("segment1"),
                           "debit": amount if amount > 0 else 0.0,
                           "credit": -amount if amount < 0 else 0.0,
                           "cost": float(entry.get("cost") or 0.0), "_info": {}}
    kind, owner_id = entry["_kind"], entry["_owner"]
    if kind == "invoice":
        inv = store.tables["invoices"][owner_id]
        row["invoice"] = {"id": inv["id"], "identifier": inv["invoiceNumber"],
                          "billingType": inv.get("type"),
                          "_info": {"invoice_href": f"{{base}}finance/invoices/{inv['id']}"}}
    elif kind == "expense":
        exp = store.tables["expense_entries"][owner_id]
        row["expense"] = {"id": exp["id"], "amount": exp.get("amount"),
                          "_info": {"expense_href": f"{{base}}expense/entries/{exp['id']}"}}
    elif kind == "receipt":
        rec = store.tables["receipts"][owner_id]
        po = store.tables["purchase_orders"][rec["purchaseOrderId"]]
        row["purchaseOrder"] = {"id": po["id"], "name": po["poNumber"], "_info": {
            "purchaseOrder_href": f"{{base}}procurement/purchaseorders/{po['id']}"}}
        if entry.get("_lineId"):
            row["lineItem"] = {"id": entry["_lineId"], "identifier": str(entry["_lineId"])}
    elif kind == "adjustment":
        adj = store.tables["adjustments"][owner_id]
        row["adjustmentDetail"] = {"id": adj["id"], "name": adj.get("identifier")}
    elif kind == "transfer":
        row["transfer"] = str(owner_id)
    return row


def batch_export(ctx: Ctx, id: int) -> Response:
    """POST /finance/accounting/batches/{id}/export: the batch's GLExport again (200)."""
    batch = ctx.store.get("batches", id)
    if batch is None:
        raise not_found(f"Accounting batch {id} was not found.")
    owners: list[tuple[str, int]] = []
    for gl_id in batch["_entryIds"]:
        entry = ctx.store.tables["gl_entries"].get(gl_id)
        if entry is not None and (entry["_kind"], entry["_owner"]) not in owners:
            owners.append((entry["_kind"], entry["_owner"]))
    return ctx.json(glexport.build(ctx.store, owners, {"batchIdentifier": batch["batchIdentifier"]}))

