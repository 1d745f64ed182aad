"""Invoices, their GL entries and PDF, and invoice payments with the one-payment rule (CW-REF §13-14)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from .conditions import parse_date
from .context import Ctx
from .defaults import complete
from .errors import CwError, invalid, not_found
from .pdf import invoice_pdf


def _visible_invoices(ctx: Ctx) -> list[dict[str, Any]]:
    return ctx.visible_rows("invoices")


def _invoice(ctx: Ctx, id: int) -> dict[str, Any]:
    return ctx.visible_row("invoices", id, "Invoice")


def invoice_list(ctx: Ctx) -> Response:
    """GET /finance/invoices (only the caller's locations below System Level 1)."""
    return ctx.list(_visible_invoices(ctx), "Invoice")


def invoice_count(ctx: Ctx) -> Response:
    """GET /finance/invoices/count."""
    return ctx.count(_visible_invoices(ctx), "Invoice")


def invoice_get(ctx: Ctx, id: int) -> Response:
    """GET /finance/invoices/{id}: glBatch / unbatchedBatch show the batch state."""
    return ctx.one(_invoice(ctx, id))


def invoice_pdf_get(ctx: Ctx, id: int) -> Response:
    """GET /finance/invoices/{id}/pdf: 200 application/pdf."""
    inv = _invoice(ctx, id)
    company = inv["company"].get("name", "")
    lines = [f"Invoice {inv['invoiceNumber']}", company, f"Date: {(inv.get('date') or '')[:10]}",
             f"Due: {(inv.get('dueDate') or '')[:10]}", ""]
    for line in inv.get("_lines") or []:
        if line.get("glTypeId") == "RP":
            lines.append(f"{line.get('description') or ''}  {-float(line.get('total') or 0):.2f}")
    lines += ["", f"Tax: {float(inv.get('salesTax') or 0):.2f}",
              f"Total: {float(inv.get('total') or 0):.2f}",
              f"Balance: {float(inv.get('balance') or 0):.2f}"]
    return Response(invoice_pdf(lines), status=200, mimetype="application/pdf",
                    headers={"Content-Disposition": f"inline; filename=Invoice-{inv['invoiceNumber']}.pdf"})


def gl_entries(ctx: Ctx, id: int, sub: int | None = None, counting: bool = False) -> Response:
    """GET /finance/invoices/{id}/glEntries/ (the spec's trailing slash is tolerated anyway)."""
    inv = _invoice(ctx, id)
    rows = [ctx.store.tables["gl_entries"][g] for g in inv.get("_glEntryIds") or []
            if g in ctx.store.tables["gl_entries"]]
    if counting:
        return ctx.count(rows, "GLEntry")
    if sub is not None:
        return ctx.one(next((r for r in rows if r["id"] == sub), None), "GL entry")
    return ctx.list(rows, "GLEntry")


# ---------------------------------------------------------------- payments

def _payments_of(ctx: Ctx, invoice_id: int) -> list[dict[str, Any]]:
    table = ctx.store.tables["payments"]
    return [table[p] for p in ctx.store.payments_by_invoice.get(invoice_id, []) if p in table]


def _invoice_ref(inv: dict[str, Any]) -> dict[str, Any]:
    return {"id": inv["id"], "identifier": inv["invoiceNumber"], "billingType": inv.get("type"),
            "applyToType": inv.get("applyToType", "All"), "invoiceDate": inv.get("date"),
            "chargeFirmFlag": False,
            "_info": {"invoice_href": f"{{base}}finance/invoices/{inv['id']}"}}


def recompute(ctx: Ctx, inv: dict[str, Any]) -> None:
    """payments, credits and balance = total - payments - credits; credit memos track use."""
    rows = _payments_of(ctx, inv["id"])
    cash = round(sum(float(p.get("amount") or 0) for p in rows if not p.get("credit")), 2)
    credit = round(sum(float(p.get("amount") or 0) for p in rows if p.get("credit")), 2)
    inv["payments"] = cash
    inv["credits"] = credit
    total = float(inv.get("total") or 0)
    if inv.get("type") == "CreditMemo":
        inv["balance"] = round(total + float(inv.get("_creditApplied") or 0), 2)
    else:
        inv["balance"] = round(total - cash - credit, 2)
    for pay in rows:
        pay["invoiceBalance"] = inv["balance"]
        pay["invoiceTotal"] = total
        pay["balance"] = inv["balance"]


def _credit_memo_used(ctx: Ctx, memo_id: int) -> float:
    return round(sum(float(p.get("amount") or 0) for p in ctx.store.rows("payments")
                     if (p.get("credit") or {}).get("id") == memo_id), 2)


def _sync_memo(ctx: Ctx, memo_id: int | None) -> None:
    if memo_id is None:
        return
    memo = ctx.store.get("invoices", memo_id)
    if memo is not None:
        memo["_creditApplied"] = _credit_memo_used(ctx, memo_id)
        recompute(ctx, memo)


def payment_list(ctx: Ctx, id: int) -> Response:
    """GET /finance/invoices/{id}/payments."""
    _invoice(ctx, id)
    return ctx.list(_payments_of(ctx, id), "InvoicePayment")


def payment_count(ctx: Ctx, id: int) -> Response:
    """GET /finance/invoices/{id}/payments/count."""
    _invoice(ctx, id)
    return ctx.count(_payments_of(ctx, id), "InvoicePayment")


def _payment(ctx: Ctx, id: int, pid: int) -> dict[str, Any]:
    pay = ctx.store.get("payments", pid)
    if pay is None or pay["invoice"]["id"] != id:
        raise not_found(f"Invoice payment {pid} was not found.")
    return pay


def payment_get(ctx: Ctx, id: int, pid: int) -> Response:
    """GET /finance/invoices/{id}/payments/{paymentId}."""
    _invoice(ctx, id)
    return ctx.one(_payment(ctx, id, pid))


def _pay_error(code: str, message: str, field: str) -> CwError:
    return invalid("invoicePayment", code, message, field)


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _pay_error("MissingRequiredField" if value is None else "InvalidValue",
                         "amount is required and must be a number.", "amount")
    if value <= 0:
        raise _pay_error("OutOfRange", "The field amount must be greater than 0.", "amount")
    return round(float(value), 2)


def _date(ctx: Ctx, value: Any) -> str:
    if value in (None, ""):
        return ctx.now_iso()[:10] + "T00:00:00Z"
    when = parse_date(str(value))
    if when is None:
        raise _pay_error("InvalidValue", f"paymentDate '{value}' is not a valid date.",
                         "paymentDate")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _credit_ref(ctx: Ctx, inv: dict[str, Any], value: Any, amount: float,
                own: float = 0.0) -> dict[str, Any] | None:
    if value in (None, {}):
        return None
    if not ctx.switch("cw_credit_via_credit_ref"):
        raise _pay_error("InvalidValue", "credit cannot be set on an invoice payment.", "credit")
    memo_id = value.get("id") if isinstance(value, dict) else None
    memo = ctx.store.get("invoices", memo_id) if isinstance(memo_id, int) else None
    if memo is None or memo.get("type") != "CreditMemo":
        raise _pay_error("InvalidValue", "credit must reference a credit memo invoice.", "credit")
    if memo["company"]["id"] != inv["company"]["id"]:
        raise _pay_error("InvalidValue", "The credit memo belongs to another company.", "credit")
    available = round(-float(memo.get("total") or 0) - _credit_memo_used(ctx, memo["id"]) + own, 2)
    if amount > available + 0.005:
        raise _pay_error("OutOfRange", f"The credit memo has {available:.2f} left to apply.",
                         "amount")
    return _invoice_ref(memo)


def _check_balance(inv: dict[str, Any], amount: float, own: float = 0.0) -> None:
    room = round(float(inv.get("balance") or 0) + own, 2)
    if amount > room + 0.005:
        raise _pay_error("OutOfRange", f"The payment amount {amount:.2f} is more than the invoice "
                         f"balance {room:.2f}.", "amount")


def payment_create(ctx: Ctx, id: int) -> Response:
    """POST /finance/invoices/{id}/payments: 201 InvoicePayment (one cash payment per invoice)."""
    inv = _invoice(ctx, id)
    body = ctx.body()
    if not isinstance(body, dict):
        raise _pay_error("MissingRequiredField", "amount is required.", "amount")
    amount = _amount(body.get("amount"))
    credit = _credit_ref(ctx, inv, body.get("credit"), amount)
    if (credit is None and ctx.switch("cw_single_payment_per_invoice")
            and any(not p.get("credit") for p in _payments_of(ctx, id))):
        raise _pay_error("ObjectExists", "Only one payment is allowed per invoice; update the "
                         "existing payment instead.", "invoice")
    _check_balance(inv, amount)
    ctx.require()
    pid = ctx.store.next_id("payments")
    pay = {"id": pid, "type": "Credit" if credit else "Payment", "source": "API",
           "invoice": _invoice_ref(inv), "credit": credit, "amount": amount,
           "paymentDate": _date(ctx, body.get("paymentDate")), "appliedBy": ctx.who(),
           "paymentSyncStatus": None,
           "_info": {"lastUpdated": ctx.now_iso(), "updatedBy": ctx.who()}}
    ctx.store.tables["payments"][pid] = complete(pay, "InvoicePayment")
    ctx.store.payments_by_invoice.setdefault(id, []).append(pid)
    recompute(ctx, inv)
    _sync_memo(ctx, (credit or {}).get("id"))
    ctx.sandbox.touch()
    return ctx.json(pay, 201)


def _apply_changes(ctx: Ctx, inv: dict[str, Any], pay: dict[str, Any],
                   changes: dict[str, Any]) -> None:
    own = float(pay.get("amount") or 0)
    amount = _amount(changes.get("amount", pay.get("amount")))
    old_memo = (pay.get("credit") or {}).get("id")
    credit = pay.get("credit")
    if "credit" in changes:
        credit = _credit_ref(ctx, inv, changes["credit"], amount,
                             own if old_memo == (changes["credit"] or {}).get("id") else 0.0)
    elif credit:
        credit = _credit_ref(ctx, inv, {"id": credit["id"]}, amount, own)
    _check_balance(inv, amount, own)
    date = _date(ctx, changes["paymentDate"]) if "paymentDate" in changes else pay["paymentDate"]
    ctx.require()
    pay.update({"amount": amount, "paymentDate": date, "credit": credit,
                "type": "Credit" if credit else "Payment",
                "_info": {"lastUpdated": ctx.now_iso(), "updatedBy": ctx.who()}})
    recompute(ctx, inv)
    _sync_memo(ctx, old_memo)
    _sync_memo(ctx, (credit or {}).get("id"))
    ctx.sandbox.touch()


def payment_patch(ctx: Ctx, id: int, pid: int) -> Response:
    """PATCH with JSON-Patch style `[{op: replace, path, value}]`."""
    inv = _invoice(ctx, id)
    pay = _payment(ctx, id, pid)
    ops = ctx.body()
    if not isinstance(ops, list) or not ops:
        raise _pay_error("InvalidValue", "Send a list of patch operations.", "body")
    changes: dict[str, Any] = {}
    for op in ops:
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in ("replace", "add"):
            raise _pay_error("InvalidValue", "Only replace operations are supported.", "op")
        path = str(op.get("path", "")).strip("/")
        field = {"amount": "amount", "paymentdate": "paymentDate", "credit": "credit"}.get(path.lower())
        if field is None:
            raise _pay_error("InvalidValue", f"The field {path} cannot be changed.", path or "path")
        changes[field] = op.get("value")
    _apply_changes(ctx, inv, pay, changes)
    return ctx.json(pay)


def payment_put(ctx: Ctx, id: int, pid: int) -> Response:
    """PUT replaces amount, date and credit of a payment."""
    inv = _invoice(ctx, id)
    pay = _payment(ctx, id, pid)
    body = ctx.body()
    if not isinstance(body, dict):
        raise _pay_error("MissingRequiredField", "amount is required.", "amount")
    changes = {k: body[k] for k in ("amount", "paymentDate", "credit") if k in body}
    changes.setdefault("amount", None)
    _apply_changes(ctx, inv, pay, changes)
    return ctx.json(pay)


def payment_delete(ctx: Ctx, id: int, pid: int) -> Response:
    """DELETE …/payments/{id}: 204, balance restored."""
    inv = _invoice(ctx, id)
    pay = _payment(ctx, id, pid)
    ctx.require()
    del ctx.store.tables["payments"][pid]
    ctx.store.payments_by_invoice[id] = [p for p in ctx.store.payments_by_invoice.get(id, [])
                                         if p != pid]
    recompute(ctx, inv)
    _sync_memo(ctx, (pay.get("credit") or {}).get("id"))
    ctx.sandbox.touch()
    return Response(status=204)
