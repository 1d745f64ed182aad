"""What the payment screens read: a batch's invoice rows (keyset pages), counts per status,
the company's recent payment batches, and the rows as CSV."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Batch, BatchStatus, BatchType, PaymentItem, PaymentStatus
from portal.services import spreadsheet

ITEM_PAGE = 100
CSV_HEADER = ["qbo_invoice_id", "qbo_doc_number", "cw_invoice_id", "cw_invoice_number",
              "customer", "currency", "qbo_total", "qbo_applied", "qbo_payment_ids",
              "cw_cash_before", "cw_credits_before", "cw_balance_before", "cw_cash_after",
              "cw_credits_after", "cw_balance_after", "status", "actions", "message",
              "fix_link", "warnings"]


def item_page(session: Session, batch_id: int, status: PaymentStatus | None,
              after: int | None) -> list[PaymentItem]:
    query = sa.select(PaymentItem).where(PaymentItem.batch_id == batch_id)
    if status is not None:
        query = query.where(PaymentItem.status == status)
    if after is not None:
        query = query.where(PaymentItem.id > after)
    return list(session.scalars(query.order_by(PaymentItem.id).limit(ITEM_PAGE)))


def status_counts(session: Session, batch_id: int) -> dict[str, int]:
    rows = session.execute(sa.select(PaymentItem.status, sa.func.count()).where(
        PaymentItem.batch_id == batch_id).group_by(PaymentItem.status)).all()
    return {(s.value if isinstance(s, PaymentStatus) else str(s)): n for s, n in rows}


def recent_batches(session: Session, company_id: int, limit: int = 10) -> list[Batch]:
    return list(session.scalars(sa.select(Batch).where(
        Batch.company_id == company_id, Batch.type == BatchType.PAYMENT)
        .order_by(Batch.id.desc()).limit(limit)))


def checklist_state(session: Session) -> tuple[str, str]:
    """Done once a payment sync finished; a warning when the latest is yellow or red."""
    batch = session.scalar(sa.select(Batch).where(
        Batch.type == BatchType.PAYMENT, Batch.status == BatchStatus.FINISHED)
        .order_by(Batch.id.desc()).limit(1))
    if batch is None:
        return "todo", "No payment sync has finished yet."
    if batch.colour in ("yellow", "red"):
        return "warning", f"Payment sync #{batch.id} is {batch.colour}: {batch.message or ''}"
    return "done", f"Payment sync #{batch.id} finished: {batch.message or ''}"


def _money(figures: dict | None, key: str) -> str | None:  # type: ignore[type-arg]
    return (figures or {}).get(key)


def items_csv(session: Session, batch_id: int, *, bom: bool = False) -> Iterator[str]:
    """Every invoice row of the batch, read 500 at a time."""

    def rows() -> Iterator[list[object]]:
        after = 0
        while True:
            page = list(session.scalars(sa.select(PaymentItem).where(
                PaymentItem.batch_id == batch_id, PaymentItem.id > after)
                .order_by(PaymentItem.id).limit(500)))
            if not page:
                return
            for i in page:
                yield [i.qbo_invoice_id, i.qbo_doc_number, i.cw_invoice_id,
                       i.cw_invoice_number, i.customer, i.currency, i.qbo_total,
                       i.qbo_applied, " ".join(i.qbo_payment_ids or []),
                       _money(i.before, "cash"), _money(i.before, "credits"),
                       _money(i.before, "balance"), _money(i.after, "cash"),
                       _money(i.after, "credits"), _money(i.after, "balance"),
                       i.status.value, " | ".join(i.actions or []), i.message, i.fix_link,
                       " | ".join(i.warnings or [])]
            after = page[-1].id

    return spreadsheet.stream(CSV_HEADER, rows(), bom=bom)
