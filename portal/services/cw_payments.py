"""ConnectWise invoice payments, each written once (SPEC 10.4 steps 4-5, 6.5).

A payment row has no key of ours on the ConnectWise side, so every create, update and
delete goes through `writes.perform_once`: the intent is committed first, and a write whose
answer was lost is found again (a create by invoice, amount, date and credit memo; an update
by the row holding the new amount and date; a delete by the row being gone) before anything
is sent twice. A credit memo applied to an invoice is a payment row whose `credit` names the
ConnectWise credit memo [CW-REF §14]; `_body` is the one place that shape is written.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
from portal.models import ExternalWrite
from portal.services import writes

CREATE = "cw.invoice_payment.create"
UPDATE = "cw.invoice_payment.update"
DELETE = "cw.invoice_payment.delete"


def _amount(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def credit_of(row: dict[str, Any]) -> int | None:
    """The ConnectWise credit memo a payment row applies, or None for cash."""
    credit = row.get("credit")
    return int(credit["id"]) if isinstance(credit, dict) and credit.get("id") else None


def day_of(row: dict[str, Any]) -> str:
    return str(row.get("paymentDate") or "")[:10]


def rows(cw: ConnectWiseClient, invoice_id: int) -> list[dict[str, Any]]:
    """Every payment row of the invoice (cash, credits, and rows entered in ConnectWise)."""
    return list(cw.get(f"/finance/invoices/{invoice_id}/payments", pageSize=1000) or [])


def find(cw: ConnectWiseClient, invoice_id: int, amount: Decimal, day: date | None,
         credit_id: int | None = None, exclude: Collection[int] = ()
         ) -> dict[str, Any] | None:
    """The invoice's payment row of this amount, date and credit memo (not one of
    `exclude`, the rows already accounted for), if ConnectWise holds one."""
    for row in rows(cw, invoice_id):
        if int(row.get("id") or 0) in exclude:
            continue
        if _amount(row.get("amount")) == _amount(amount) and credit_of(row) == credit_id and \
                (day is None or day_of(row) == day.isoformat()):
            return row
    return None


def _body(amount: Decimal, day: date | None, credit_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": float(amount)}
    if day is not None:
        body["paymentDate"] = f"{day.isoformat()}T00:00:00Z"
    if credit_id is not None:
        body["credit"] = {"id": credit_id}
    return body


def create(session: Session, cw: ConnectWiseClient, *, invoice_id: int, amount: Decimal,
           day: date | None, key: str, credit_id: int | None = None,
           exclude: Collection[int] = (), company_id: int | None = None,
           run_id: int | None = None) -> writes.Outcome:
    """Create the payment (or credit application) for `key` unless it already exists
    (committed intent, lookup before any repeat). Commits."""
    amount = _amount(amount)
    known = sorted(int(i) for i in exclude)

    def call(_request_id: str) -> dict[str, Any]:
        return cw.request("POST", f"/finance/invoices/{invoice_id}/payments", json={
            "invoice": {"id": invoice_id}, **_body(amount, day, credit_id)}).json()

    return writes.perform_once(
        session, target="cw", operation=CREATE, key=key, call=call,
        lookup=lambda: find(cw, invoice_id, amount, day, credit_id, known),
        params={"invoice_id": invoice_id, "amount": str(amount),
                "date": day.isoformat() if day else None, "credit_id": credit_id,
                "exclude": known},
        company_id=company_id, run_id=run_id)


def _current(cw: ConnectWiseClient, invoice_id: int, payment_id: int) -> dict[str, Any] | None:
    try:
        return cw.get(f"/finance/invoices/{invoice_id}/payments/{payment_id}")
    except errors.NotFound:
        return None


def _updated(cw: ConnectWiseClient, invoice_id: int, payment_id: int, amount: Decimal,
             day: date | None) -> dict[str, Any] | None:
    row = _current(cw, invoice_id, payment_id)
    if row is not None and _amount(row.get("amount")) == amount and \
            (day is None or day_of(row) == day.isoformat()):
        return row
    return None


def update(session: Session, cw: ConnectWiseClient, *, invoice_id: int, payment_id: int,
           amount: Decimal, day: date | None, key: str, company_id: int | None = None,
           run_id: int | None = None) -> writes.Outcome:
    """Set a row's amount and date (a PATCH of both). Commits."""
    amount = _amount(amount)
    path = f"/finance/invoices/{invoice_id}/payments/{payment_id}"
    ops = [{"op": "replace", "path": "amount", "value": float(amount)}]
    if day is not None:
        ops.append({"op": "replace", "path": "paymentDate",
                    "value": f"{day.isoformat()}T00:00:00Z"})
    return writes.perform_once(
        session, target="cw", operation=UPDATE, key=key,
        call=lambda _rid: cw.request("PATCH", path, json=ops).json(),
        lookup=lambda: _updated(cw, invoice_id, payment_id, amount, day),
        params={"invoice_id": invoice_id, "payment_id": payment_id, "amount": str(amount),
                "date": day.isoformat() if day else None},
        company_id=company_id, run_id=run_id)


def _gone(cw: ConnectWiseClient, invoice_id: int, payment_id: int) -> dict[str, Any] | None:
    return {"id": payment_id, "deleted": True} \
        if _current(cw, invoice_id, payment_id) is None else None


def delete(session: Session, cw: ConnectWiseClient, *, invoice_id: int, payment_id: int,
           key: str, company_id: int | None = None, run_id: int | None = None
           ) -> writes.Outcome:
    """Remove a row; a row already gone counts as removed. Commits."""
    path = f"/finance/invoices/{invoice_id}/payments/{payment_id}"

    def call(_request_id: str) -> dict[str, Any]:
        try:
            cw.request("DELETE", path)
        except errors.NotFound:
            pass  # gone already: what we wanted
        return {"id": payment_id, "deleted": True}

    return writes.perform_once(
        session, target="cw", operation=DELETE, key=key, call=call,
        lookup=lambda: _gone(cw, invoice_id, payment_id),
        params={"invoice_id": invoice_id, "payment_id": payment_id},
        company_id=company_id, run_id=run_id)


def _client(session: Session) -> ConnectWiseClient | None:
    from portal import clients

    return clients.connectwise(session)


@writes.settler(CREATE)
def _settle(session: Session, row: ExternalWrite) -> dict[str, Any] | None:
    cw = _client(session)
    if cw is None:
        return None
    params = row.params
    day = date.fromisoformat(params["date"]) if params.get("date") else None
    return find(cw, int(params["invoice_id"]), Decimal(params["amount"]), day,
                params.get("credit_id"), params.get("exclude") or ())


@writes.settler(UPDATE)
def _settle_update(session: Session, row: ExternalWrite) -> dict[str, Any] | None:
    cw = _client(session)
    if cw is None:
        return None
    params = row.params
    day = date.fromisoformat(params["date"]) if params.get("date") else None
    return _updated(cw, int(params["invoice_id"]), int(params["payment_id"]),
                    Decimal(params["amount"]), day)


@writes.settler(DELETE)
def _settle_delete(session: Session, row: ExternalWrite) -> dict[str, Any] | None:
    cw = _client(session)
    if cw is None:
        return None
    return _gone(cw, int(row.params["invoice_id"]), int(row.params["payment_id"]))
