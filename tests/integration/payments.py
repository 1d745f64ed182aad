"""Helpers for payment sync tests: QuickBooks documents written through portal's own client
(real HTTP to the sandbox), ConnectWise invoices shaped in the sandbox, runs started and
worked by a real RQ worker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.models import Batch, Company, PaymentItem
from portal.sandbox.connectwise import invoices as cw_invoices
from portal.services import company_settings
from portal.services.payments import sync
from tests.conftest import run_jobs

CUSTOMER = "1"  # any QuickBooks customer: ConnectWise is matched by DocNumber


def qbo(app: Any, call: Any) -> Any:
    """Run `call(client)` with portal's QuickBooks client for the connected company."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        return call(clients.quickbooks(session, company))


def qbo_document(app: Any, entity: str, doc_number: str, amount: str,
                 day: str = "2026-11-01") -> dict:
    """Create a one-line Invoice or CreditMemo in QuickBooks."""
    return qbo(app, lambda c: c.create(entity, {
        "DocNumber": doc_number, "TxnDate": day, "CustomerRef": {"value": CUSTOMER},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": float(amount),
                  "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1,
                                          "UnitPrice": float(amount)}}]}))


def qbo_invoice(app: Any, doc_number: str, amount: str, day: str = "2026-11-01") -> dict:
    return qbo_document(app, "Invoice", doc_number, amount, day)


def qbo_credit_memo(app: Any, doc_number: str, amount: str, day: str = "2026-11-01") -> dict:
    return qbo_document(app, "CreditMemo", doc_number, amount, day)


def lines(*links: tuple[str, str, str]) -> list[dict[str, Any]]:
    """(TxnType, TxnId, amount) -> Payment lines."""
    return [{"Amount": float(amount), "LinkedTxn": [{"TxnId": txn, "TxnType": kind}]}
            for kind, txn, amount in links]


def qbo_payment(app: Any, day: str, *links: tuple[str, str, str], total: str | None = None
                ) -> dict:
    cash = sum((Decimal(a) if k == "Invoice" else -Decimal(a)) for k, _t, a in links)
    return qbo(app, lambda c: c.create("Payment", {
        "CustomerRef": {"value": CUSTOMER}, "TxnDate": day,
        "TotalAmt": float(total if total is not None else cash), "Line": lines(*links)}))


def qbo_edit_payment(app: Any, payment: dict, *links: tuple[str, str, str]) -> dict:
    def edit(c: Any) -> dict:
        current = c.read("Payment", payment["Id"])
        cash = sum((Decimal(a) if k == "Invoice" else -Decimal(a)) for k, _t, a in links)
        return c.create("Payment", {**{k: v for k, v in current.items() if k != "Line"},
                                    "TotalAmt": float(cash), "Line": lines(*links)})
    return qbo(app, edit)


def qbo_delete(app: Any, entity: str, obj: dict) -> None:
    def delete(c: Any) -> None:
        current = c.read(entity, obj["Id"])
        c.delete(entity, current["Id"], current["SyncToken"])
    qbo(app, delete)


def qbo_void(app: Any, entity: str, obj: dict) -> None:
    def void(c: Any) -> None:
        current = c.read(entity, obj["Id"])
        c.void(entity, current["Id"], current["SyncToken"])
    qbo(app, void)


def shape_cw_invoice(cw_sandbox: Any, invoice_id: int, total: str) -> dict:
    """Give a ConnectWise invoice (or, with a negative total, a credit memo) this total."""
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        inv = sandbox.store.tables["invoices"][invoice_id]
        inv["total"] = float(total)
        inv["subtotal"] = float(total)
        inv["salesTax"] = 0.0

        class Ctx:
            store = sandbox.store
        cw_invoices.recompute(Ctx, inv)  # type: ignore[arg-type]
        return dict(inv)


def cw_rows(cw_sandbox: Any, invoice_id: int) -> list[dict]:
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return sorted((dict(p) for p in sandbox.store.tables["payments"].values()
                       if p["invoice"]["id"] == invoice_id), key=lambda p: p["id"])


def cw_invoice(cw_sandbox: Any, invoice_id: int) -> dict:
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        return dict(sandbox.store.tables["invoices"][invoice_id])


def cash_rows(cw_sandbox: Any, invoice_id: int) -> list[tuple[Decimal, str]]:
    return [(Decimal(str(p["amount"])).quantize(Decimal("0.01")), p["paymentDate"][:10])
            for p in cw_rows(cw_sandbox, invoice_id) if not p.get("credit")]


def credit_rows(cw_sandbox: Any, invoice_id: int) -> list[tuple[int, Decimal]]:
    return [(p["credit"]["id"], Decimal(str(p["amount"])).quantize(Decimal("0.01")))
            for p in cw_rows(cw_sandbox, invoice_id) if p.get("credit")]


def save_settings(app: Any, **values: Any) -> None:
    """Save the Sales tab with these payment-sync values (others as they are)."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        current = company_settings.form_values(company_settings.get_settings(session, company),
                                               "sales", company)
        form = {**current, **values}
        saved = company_settings.save_tab(session, company, "sales", form, None)
        assert not isinstance(saved, list), saved
        session.commit()


def run_sync(app: Any, since: Any = None, trigger: str = "test") -> int:
    """Start a payment run as a user would and work it with the RQ worker."""
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        batch = sync.start_and_enqueue(session, company, trigger=trigger, since=since)
        batch_id = batch.id
    run_jobs(app)
    return batch_id


def items_of(app: Any, batch_id: int) -> tuple[Batch, dict[str, PaymentItem]]:
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        items = list(session.scalars(sa.select(PaymentItem).where(
            PaymentItem.batch_id == batch_id)))
        session.expunge_all()
        return batch, {i.qbo_doc_number or i.qbo_invoice_id: i for i in items}
