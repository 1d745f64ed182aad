"""What ConnectWise should hold for one invoice, from QuickBooks alone (SPEC 10.4 steps 2-3,
10.5). Pure functions: no database, no HTTP, so the worked examples are unit tests.

A QuickBooks payment can apply credit memos and several invoices at once without saying
which invoice the credit went to; `credit_memo_multi_invoice` decides (Error, oldest first,
or in proportion to the invoice lines, in cents with the remainder on the largest line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MODES = ("Error", "AllocateOldestFirst", "AllocateProportionally")


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Payment:
    """The parts of a QuickBooks Payment the sync reads."""

    id: str
    txn_date: date
    ref: str  # PaymentRefNum, else the Id
    invoices: dict[str, Decimal]  # invoice id -> amount applied (in line order)
    credits: dict[str, Decimal]  # credit memo id -> amount applied (in line order)
    unapplied: Decimal = ZERO
    currency: str | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Payment:
        invoices: dict[str, Decimal] = {}
        credits: dict[str, Decimal] = {}
        for line in raw.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                target = invoices if link.get("TxnType") == "Invoice" else \
                    credits if link.get("TxnType") == "CreditMemo" else None
                if target is not None:
                    key = str(link.get("TxnId"))
                    target[key] = target.get(key, ZERO) + money(line.get("Amount"))
        return cls(id=str(raw["Id"]), txn_date=date.fromisoformat(str(raw["TxnDate"])[:10]),
                   ref=str(raw.get("PaymentRefNum") or raw["Id"]), invoices=invoices,
                   credits=credits, unapplied=money(raw.get("UnappliedAmt")),
                   currency=(raw.get("CurrencyRef") or {}).get("value"))


@dataclass(frozen=True)
class InvoiceOrder:
    """What oldest-first sorts by."""

    txn_date: str
    doc_number: str


class RuleError(Exception):
    """`credit_memo_multi_invoice = Error` and a payment applies credit to several invoices."""

    def __init__(self, payment: Payment, memo_numbers: list[str], invoices: int,
                 link: str) -> None:
        memos = ", ".join(memo_numbers)
        super().__init__(
            f"QuickBooks payment {payment.ref} (Id {payment.id}, dated "
            f"{payment.txn_date.isoformat()}) applies credit memo {memos} to {invoices} "
            "invoices. Split it in QuickBooks into one payment per invoice, then run the sync "
            "again.")
        self.link = link


def split_credit(payment: Payment, mode: str, order: Mapping[str, InvoiceOrder]
                 ) -> dict[str, Decimal]:
    """Invoice id -> how much of the payment's credit it takes (all of it for one invoice).
    Raises ValueError for the Error mode: the caller turns that into RuleError."""
    credit = sum(payment.credits.values(), ZERO)
    lines = payment.invoices
    if len(lines) == 1:
        return {next(iter(lines)): credit}
    if mode == "AllocateOldestFirst":
        ranked = sorted(lines, key=lambda i: (order[i].txn_date, order[i].doc_number, i)
                        if i in order else ("9999", "", i))
        left, shares = credit, {}
        for invoice in ranked:
            shares[invoice] = min(left, lines[invoice])
            left -= shares[invoice]
        return shares
    if mode == "AllocateProportionally":
        total = sum(lines.values(), ZERO)
        if total <= 0:
            return {i: ZERO for i in lines}
        largest = max(lines, key=lambda i: (lines[i], -list(lines).index(i)))
        shares = {i: money(credit * lines[i] / total) for i in lines if i != largest}
        shares[largest] = credit - sum(shares.values(), ZERO)
        return shares
    raise ValueError(mode)


def memo_shares(payment: Payment, shares: Mapping[str, Decimal], invoice_id: str
                ) -> dict[str, Decimal]:
    """Credit memo id -> amount for `invoice_id`: the memos fill the invoices' shares in
    line order (a waterfall), so every memo's total is kept exactly."""
    memos = [[memo, amount] for memo, amount in payment.credits.items()]
    found: dict[str, Decimal] = {}
    for invoice, need in shares.items():
        for pair in memos:
            if need <= 0:
                break
            take = min(need, pair[1])
            if take <= 0:
                continue
            pair[1] -= take
            need -= take
            if invoice == invoice_id:
                found[pair[0]] = found.get(pair[0], ZERO) + take
    return found


@dataclass
class Target:
    """What ConnectWise should show for one invoice."""

    cash: Decimal = ZERO
    cash_date: date | None = None
    credits: dict[int, Decimal] = field(default_factory=dict)  # CW credit memo id -> amount
    unmapped_credit: Decimal = ZERO  # QuickBooks-only credit applied to this invoice
    warnings: list[str] = field(default_factory=list)
    payment_ids: list[str] = field(default_factory=list)

    @property
    def credit_total(self) -> Decimal:
        return sum(self.credits.values(), ZERO)


def target_for(invoice_id: str, payments: list[Payment], *, mode: str,
               order: Mapping[str, InvoiceOrder], memo_map: Mapping[str, int | None],
               memo_numbers: Mapping[str, str], unmapped_as_cash: bool,
               payment_link: Any = None, home_currency: str | None = None) -> Target:
    """The credit applications and the one cash row for `invoice_id` (SPEC 10.4 steps 2-3).

    `memo_map` maps a QuickBooks credit memo id to its ConnectWise credit memo id (None: a
    QuickBooks-only credit memo). Raises RuleError under `Error` for a payment that applies
    credit to several invoices; `payment_link(payment_id)` gives the link it names."""
    target = Target()
    newest: date | None = None
    for payment in sorted(payments, key=lambda p: (p.txn_date, p.id)):
        line = payment.invoices.get(invoice_id)
        if line is None:
            continue
        target.payment_ids.append(payment.id)
        credit_here = ZERO
        if payment.credits:
            try:
                shares = split_credit(payment, mode, order)
            except ValueError:
                raise RuleError(payment, [memo_numbers.get(m, m) for m in payment.credits],
                                len(payment.invoices),
                                payment_link(payment.id) if payment_link else "") from None
            for memo, amount in memo_shares(payment, shares, invoice_id).items():
                credit_here += amount
                cw_memo = memo_map.get(memo)
                if cw_memo is None:
                    target.unmapped_credit += amount
                    target.warnings.append(
                        f"QuickBooks-only credit memo {memo_numbers.get(memo, memo)} applies "
                        f"{amount:.2f} to this invoice; it has no ConnectWise credit memo, so "
                        + ("it counts as cash in ConnectWise." if unmapped_as_cash else
                           "ConnectWise does not see it."))
                    if unmapped_as_cash:
                        credit_here -= amount
                else:
                    target.credits[cw_memo] = target.credits.get(cw_memo, ZERO) + amount
        share = line - credit_here
        if payment.unapplied > 0:
            target.warnings.append(f"QuickBooks payment {payment.ref} (Id {payment.id}) has "
                                   f"{payment.unapplied:.2f} unapplied credit; it is ignored.")
        if payment.currency and home_currency and payment.currency != home_currency:
            target.warnings.append(f"QuickBooks payment {payment.ref} (Id {payment.id}) is in "
                                   f"{payment.currency}; amounts are in the invoice currency.")
        if share > 0:
            target.cash += share
            newest = payment.txn_date if newest is None or payment.txn_date > newest \
                else newest
    target.cash = money(target.cash)
    target.cash_date = newest if target.cash > 0 else None
    return target
