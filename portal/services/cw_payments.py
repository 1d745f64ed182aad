"""ConnectWise invoice payments, each written once (SPEC 10.4 steps 4-5, 6.5).

A payment row has no key of ours on the ConnectWise side, so its creation goes through
`writes.perform_once`: the intent is committed first, and a write whose answer was lost
is found again by invoice, amount and date before anything is sent twice. Payment sync
(SPEC 10) builds its cash and credit writes on this.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from portal.integrations.connectwise import ConnectWiseClient
from portal.models import ExternalWrite
from portal.services import writes

CREATE = "cw.invoice_payment.create"


def _amount(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def find(cw: ConnectWiseClient, invoice_id: int, amount: Decimal, day: date
         ) -> dict[str, Any] | None:
    """The invoice's payment row of this amount and date, if ConnectWise holds one."""
    for row in cw.get(f"/finance/invoices/{invoice_id}/payments") or []:
        if _amount(row.get("amount")) == amount and \
                str(row.get("paymentDate") or "")[:10] == day.isoformat():
            return row
    return None


def create(session: Session, cw: ConnectWiseClient, *, invoice_id: int, amount: Decimal,
           day: date, key: str, company_id: int | None = None,
           run_id: int | None = None) -> writes.Outcome:
    """Create the payment for `key` unless it already exists (committed intent, lookup
    before any repeat). Commits."""
    amount = _amount(amount)

    def call(_request_id: str) -> dict[str, Any]:
        return cw.request("POST", f"/finance/invoices/{invoice_id}/payments", json={
            "invoice": {"id": invoice_id}, "amount": float(amount),
            "paymentDate": f"{day.isoformat()}T00:00:00Z"}).json()

    return writes.perform_once(
        session, target="cw", operation=CREATE, key=key, call=call,
        lookup=lambda: find(cw, invoice_id, amount, day),
        params={"invoice_id": invoice_id, "amount": str(amount), "date": day.isoformat()},
        company_id=company_id, run_id=run_id)


@writes.settler(CREATE)
def _settle(session: Session, row: ExternalWrite) -> dict[str, Any] | None:
    from portal import clients

    cw = clients.connectwise(session)
    if cw is None:
        return None
    params = row.params
    return find(cw, int(params["invoice_id"]), Decimal(params["amount"]),
                date.fromisoformat(params["date"]))
