"""One invoice of a payment run: make ConnectWise's payment rows match the target
(SPEC 10.4 steps 4-7).

Order of writes: foreign rows removed (under the QuickBooks authority), portal cash removed
when any credit changes (so ConnectWise never holds credits above the balance), credit
applications removed, lowered, raised and added, then the one cash row updated, created or
deleted. Each write goes through `perform_once` under a key naming the item and its attempt,
so a crash is settled by looking the write up (and adopting the row) before anything is
written again; a second run on an unchanged invoice writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
from portal.models import ExternalWrite, PaymentItem, PaymentLink, PaymentSeen, WriteStatus
from portal.models.types import utcnow
from portal.services import cw_payments
from portal.services.payments.allocation import ZERO, Target, money

log = logging.getLogger(__name__)
TOLERANCE = Decimal("0.01")
RECHECK_SECONDS = 1.0


def in_flight_window(cw: ConnectWiseClient) -> timedelta:
    """How long a ConnectWise write can still land after it was sent: the client's timeout
    and a margin."""
    return timedelta(seconds=float(getattr(cw, "timeout", 30) or 30) + 5)


def _key_prefix(company_id: int, cw_invoice_id: int) -> str:
    return f"pay:{company_id}:{cw_invoice_id}:"


def _day(row: dict[str, Any]) -> date | None:
    text = cw_payments.day_of(row)
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def figures(invoice: dict[str, Any] | None) -> dict[str, str]:
    """What a ConnectWise invoice shows as paid: cash, credits and balance."""
    invoice = invoice or {}
    return {"cash": str(money(invoice.get("payments"))),
            "credits": str(money(invoice.get("credits"))),
            "balance": str(money(invoice.get("balance")))}


@dataclass
class InvoiceJob:
    """Everything one invoice needs: who, where, the target, and the run's write context."""

    session: Session
    cw: ConnectWiseClient
    item: PaymentItem
    company_id: int
    run_id: int | None
    cw_invoice: dict[str, Any]
    target: Target
    authority: str
    voided: bool = False
    credit_date: date | None = None  # the newest payment date: credit rows are dated so
    guard: Callable[[], None] = lambda: None  # raises LostClaim once another worker owns it
    claimed_at: datetime | None = None  # when this worker took the run: older intents are
    # a previous owner's, whose request may still be in flight
    warnings: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    writes: int = 0

    @property
    def invoice_id(self) -> int:
        return int(self.cw_invoice["id"])

    def key(self, what: str) -> str:
        return f"{_key_prefix(self.company_id, self.invoice_id)}{self.item.id}." \
               f"{self.item.attempts}:{what}"

    # -- the links (which rows portal wrote) ----------------------------------------------

    def links(self) -> dict[int, PaymentLink]:
        return {link.cw_payment_id: link for link in self.session.scalars(
            sa.select(PaymentLink).where(PaymentLink.company_id == self.company_id,
                                         PaymentLink.cw_invoice_id == self.invoice_id))}

    def _link(self, row: dict[str, Any], kind: str) -> None:
        found = self.session.scalar(sa.select(PaymentLink).where(
            PaymentLink.company_id == self.company_id,
            PaymentLink.cw_payment_id == int(row["id"])))
        if found is None:
            found = PaymentLink(company_id=self.company_id, cw_invoice_id=self.invoice_id,
                                cw_payment_id=int(row["id"]), kind=kind)
            self.session.add(found)
        found.qbo_invoice_id = self.item.qbo_invoice_id
        found.cw_credit_memo_id = cw_payments.credit_of(row)
        found.amount = money(row.get("amount"))
        found.payment_date = _day(row)
        found.qbo_payment_ids = list(self.target.payment_ids)

    def _unlink(self, payment_id: int) -> None:
        self.session.execute(sa.delete(PaymentLink).where(
            PaymentLink.company_id == self.company_id,
            PaymentLink.cw_payment_id == payment_id))

    def any_writes(self) -> bool:
        """Whether portal ever wrote (or tried to write) to this invoice's payments."""
        return self.session.scalar(sa.select(ExternalWrite.id).where(
            ExternalWrite.target == "cw",
            ExternalWrite.key.like(_key_prefix(self.company_id, self.invoice_id) + "%"))
            .limit(1)) is not None

    # -- step 4: settle what an earlier attempt left open ----------------------------------

    def settle_open(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Writes of earlier attempts on this invoice: look up those whose outcome is not
        known, and adopt every created row ConnectWise holds into `payment_link`. Returns
        the rows as last read."""
        linked = set(self.links())
        open_rows = self.session.scalars(sa.select(ExternalWrite).where(
            ExternalWrite.target == "cw",
            ExternalWrite.key.like(_key_prefix(self.company_id, self.invoice_id) + "%"),
            ExternalWrite.status != WriteStatus.FAILED).order_by(ExternalWrite.id)).all()
        rows = self._await_in_flight(rows, linked, open_rows)
        present = {int(r["id"]): r for r in rows}
        for write in open_rows:
            if write.status in (WriteStatus.SENDING, WriteStatus.UNKNOWN):
                found = self._lookup(write, rows, linked)
                write.status = WriteStatus.DONE if found else WriteStatus.FAILED
                write.result = found
                write.remote_id = str(found["id"]) if found else None
                write.error = None if found else "not found in ConnectWise: never written"
                write.settled_at = utcnow()
            if write.operation == cw_payments.CREATE and write.status is WriteStatus.DONE \
                    and write.remote_id and int(write.remote_id) in present \
                    and int(write.remote_id) not in linked:
                row = present[int(write.remote_id)]
                self._link(row, "credit" if cw_payments.credit_of(row) else "cash")
                linked.add(int(write.remote_id))
                self.actions.append(f"adopted row {write.remote_id} written before a crash")
        self.session.commit()
        return rows

    def _await_in_flight(self, rows: list[dict[str, Any]], linked: set[int],
                         writes: Sequence[ExternalWrite]) -> list[dict[str, Any]]:
        """A previous owner's write not found yet may still be on its way (the worker was
        taken over while its request was in flight): read the rows again until it shows or
        until the request would have timed out, so it is adopted rather than written twice.
        Intents of this worker need no wait: its own requests have ended."""
        if self.claimed_at is None:
            return rows
        waiting = [w for w in writes if w.status in (WriteStatus.SENDING, WriteStatus.UNKNOWN)
                   and w.updated_at < self.claimed_at]
        if not waiting:
            return rows
        deadline = max(w.updated_at for w in waiting) + in_flight_window(self.cw)
        self.session.commit()  # nothing held open while waiting
        while any(self._lookup(w, rows, linked) is None for w in waiting) and \
                utcnow() < deadline:
            self.guard()
            time.sleep(RECHECK_SECONDS)
            rows = cw_payments.rows(self.cw, self.invoice_id)
        return rows

    def _lookup(self, write: ExternalWrite, rows: list[dict[str, Any]],
                linked: set[int]) -> dict[str, Any] | None:
        params = write.params
        if write.operation == cw_payments.CREATE:
            for row in rows:
                if int(row["id"]) in linked or int(row["id"]) in (params.get("exclude") or []):
                    continue
                if money(row.get("amount")) == Decimal(params["amount"]) and \
                        cw_payments.credit_of(row) == params.get("credit_id") and \
                        (not params.get("date") or cw_payments.day_of(row) == params["date"]):
                    return row
            return None
        by_id = {int(r["id"]): r for r in rows}
        row = by_id.get(int(params["payment_id"]))
        if write.operation == cw_payments.DELETE:
            return {"id": params["payment_id"], "deleted": True} if row is None else None
        if row is not None and money(row.get("amount")) == Decimal(params["amount"]) and \
                (not params.get("date") or cw_payments.day_of(row) == params["date"]):
            return row
        return None

    # -- the writes ---------------------------------------------------------------------

    def _write(self, outcome: Any, text: str) -> dict[str, Any]:
        self.writes += 1
        self.actions.append(text)
        return outcome.result

    def delete(self, row: dict[str, Any], why: str) -> None:
        self.guard()
        pid = int(row["id"])
        outcome = cw_payments.delete(self.session, self.cw, invoice_id=self.invoice_id,
                                     payment_id=pid, key=self.key(f"del:{pid}"),
                                     company_id=self.company_id, run_id=self.run_id)
        self._write(outcome, f"removed {why} {money(row.get('amount')):.2f} "
                             f"(row {pid}, dated {cw_payments.day_of(row)})")
        self._unlink(pid)
        self.session.commit()

    def update(self, row: dict[str, Any], amount: Decimal, day: date | None, kind: str,
               what: str) -> None:
        self.guard()
        pid = int(row["id"])
        outcome = cw_payments.update(self.session, self.cw, invoice_id=self.invoice_id,
                                     payment_id=pid, amount=amount, day=day,
                                     key=self.key(f"upd:{pid}:{amount}"),
                                     company_id=self.company_id, run_id=self.run_id)
        result = self._write(outcome, f"{what} {money(row.get('amount')):.2f} → {amount:.2f}"
                                      + (f" dated {day.isoformat()}" if day else ""))
        self._link({**row, **result, "amount": float(amount)}, kind)
        self.session.commit()

    def create(self, amount: Decimal, day: date | None, credit_id: int | None,
               known: set[int], what: str) -> None:
        self.guard()
        outcome = cw_payments.create(
            self.session, self.cw, invoice_id=self.invoice_id, amount=amount, day=day,
            credit_id=credit_id, exclude=known,
            key=self.key(f"new:{credit_id or 'cash'}"), company_id=self.company_id,
            run_id=self.run_id)
        result = self._write(outcome, f"{what} {amount:.2f}"
                                      + (f" dated {day.isoformat()}" if day else ""))
        self._link(result, "credit" if credit_id else "cash")
        self.session.commit()


def _is_wisepay(row: dict[str, Any]) -> bool:
    return bool(row.get("wisePayPayment"))


def reconcile(job: InvoiceJob) -> None:
    """Steps 4-5: classify the rows and write what differs from the target."""
    links = job.links()
    untouched = job.item.attempts == 1 and not links and not job.any_writes() and \
        money(job.cw_invoice.get("payments")) == 0 and money(job.cw_invoice.get("credits")) == 0
    job.session.commit()
    # an invoice ConnectWise shows unpaid, that portal never wrote to, has no rows to read
    rows = [] if untouched else cw_payments.rows(job.cw, job.invoice_id)
    rows = job.settle_open(rows)
    links = job.links()
    present = {int(r["id"]) for r in rows}
    for stale in set(links) - present:  # removed in ConnectWise by hand
        job._unlink(stale)  # noqa: SLF001
    job.session.commit()
    target = job.target
    portal_cash: list[dict[str, Any]] = []
    portal_credits: dict[int, list[dict[str, Any]]] = {}
    foreign: list[dict[str, Any]] = []
    for row in rows:
        link = links.get(int(row["id"]))
        if link is None or _is_wisepay(row):
            foreign.append(row)
        elif cw_payments.credit_of(row):
            portal_credits.setdefault(cw_payments.credit_of(row) or 0, []).append(row)
        else:
            portal_cash.append(row)
    foreign_cash_kept = False
    for row in foreign:
        kind = "credit" if cw_payments.credit_of(row) else "payment"
        label = f"{kind} {money(row.get('amount')):.2f} dated {cw_payments.day_of(row)}"
        if _is_wisepay(row) or job.authority == "KeepManual":
            foreign_cash_kept = foreign_cash_kept or kind == "payment"
            job.warnings.append(
                f"A {'WisePay ' if _is_wisepay(row) else ''}ConnectWise {label} that portal "
                "did not write was kept" + (" (WisePay rows are never deleted)"
                                           if _is_wisepay(row) else "") + ".")
        else:
            job.delete(row, f"foreign ConnectWise {kind}")
            job.warnings.append(f"A ConnectWise {label} that portal did not write was "
                                "removed: QuickBooks is the payment authority.")
    for extra in portal_cash[1:]:  # one cash row only
        job.delete(extra, "second portal payment")
    cash = portal_cash[0] if portal_cash else None
    current = {memo: money(found[0].get("amount")) for memo, found in portal_credits.items()}
    for memo, found in portal_credits.items():
        for extra in found[1:]:
            job.delete(extra, "second credit application")
    if current != target.credits and cash is not None:  # (a) cash first
        job.delete(cash, "portal payment (credits change first)")
        cash = None
    _credits(job, portal_credits, current)
    _cash(job, cash, foreign_cash_kept)


def _credits(job: InvoiceJob, rows: dict[int, list[dict[str, Any]]],
             current: dict[int, Decimal]) -> None:
    """(b): removals and decreases before increases and additions."""
    target = job.target.credits
    day = job.target.cash_date or job.credit_date
    for memo, amount in current.items():
        if memo not in target or target[memo] <= 0:
            job.delete(rows[memo][0], f"credit application of memo {memo}")
    ordered = sorted((m for m in current if target.get(m, ZERO) > 0),
                     key=lambda m: target[m] - current[m])
    for memo in ordered:
        if target[memo] != current[memo]:
            job.update(rows[memo][0], target[memo], None, "credit", f"credit memo {memo}")
    for memo, amount in target.items():
        if memo not in current and amount > 0:
            known = {int(r["id"]) for found in rows.values() for r in found}
            job.create(amount, day, memo, known, f"applied credit memo {memo}")


def _cash(job: InvoiceJob, cash: dict[str, Any] | None, foreign_cash_kept: bool) -> None:
    """(c): one cash row, updated, created or deleted."""
    target = job.target
    if foreign_cash_kept:
        if target.cash > 0 or cash is not None:
            job.warnings.append("A payment entered in ConnectWise is kept, so portal wrote "
                                f"no cash (QuickBooks cash {target.cash:.2f}).")
        return
    if target.cash <= 0:
        if cash is not None:
            job.delete(cash, "portal payment")
        return
    if cash is None:
        job.create(target.cash, target.cash_date, None, set(), "payment")
        return
    if money(cash.get("amount")) != target.cash or \
            cw_payments.day_of(cash) != (target.cash_date.isoformat()
                                         if target.cash_date else ""):
        job.update(cash, target.cash, target.cash_date, "cash", "payment")


def remember_payments(session: Session, company_id: int, qbo_invoice_id: str,
                      payment_ids: list[str]) -> None:
    """Keep `payment_seen` equal to the payments now applied to the invoice."""
    rows = session.scalars(sa.select(PaymentSeen).where(
        PaymentSeen.company_id == company_id, PaymentSeen.qbo_invoice_id == qbo_invoice_id))
    have = set()
    for row in rows:
        if row.qbo_payment_id not in payment_ids:
            session.delete(row)
        have.add(row.qbo_payment_id)
    for pid in payment_ids:
        if pid not in have:
            session.add(PaymentSeen(company_id=company_id, qbo_payment_id=pid,
                                    qbo_invoice_id=qbo_invoice_id))


def run_invoice(job: InvoiceJob, qbo_applied: Decimal) -> None:
    """Reconcile, then verify by re-reading the ConnectWise invoice (step 6)."""
    job.item.before = figures(job.cw_invoice)
    reconcile(job)
    after = job.cw_invoice
    if job.actions or job.item.attempts > 1:  # written, adopted, or an earlier try wrote
        after = job.cw.get(f"/finance/invoices/{job.invoice_id}") or {}
    job.item.after = figures(after)
    paid = money(after.get("payments")) + money(after.get("credits"))
    if abs(paid - qbo_applied) > TOLERANCE:
        job.warnings.append(f"Paid amounts differ after the sync: ConnectWise {paid:.2f}, "
                            f"QuickBooks {qbo_applied:.2f}.")


def transient(exc: Exception) -> bool:
    return isinstance(exc, (errors.Transient, errors.RateLimited, errors.Unreachable))


