"""The review list's charts: posted totals per month and type, failed records per month.

Both follow the list's filters. SQL sums per batch (one row per batch, type, currency and
sign), and the months are counted here, which keeps the query the same on SQLite and
PostgreSQL and the memory bounded by the number of batches, not of items.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Batch, BatchItem, BatchItemEvent, Company, ItemState
from portal.services.batches import Filters, matching_ids
from portal.services.charts import Chart, stacked_bars

POSTED = (ItemState.POSTED, ItemState.MARKED, ItemState.DONE)  # a QuickBooks document exists
SERIES = [("invoice", "Invoices"), ("credit", "Credit memos"), ("expense", "Expenses"),
          ("inventory", "Inventory"), ("payment", "Payments")]
MONTHS = 24  # the newest months shown; older ones stay in the CSV


def _months(found: set[str]) -> list[str]:
    """Every month from the first to the last found (gaps shown as empty), newest 24."""
    if not found:
        return []
    first, last = min(found), max(found)
    year, month = int(first[:4]), int(first[5:])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out[-MONTHS:]


def _posted(session: Session, batch_ids: Any, states: Sequence[ItemState] = POSTED
            ) -> Iterator[tuple[str, datetime, str, Decimal]]:
    """(series, when the batch started, currency, amount) per batch, type, currency and
    sign, for the items in `states`; negative invoices are the "credit" series."""
    amount = sa.func.coalesce(BatchItem.qbo_amount, BatchItem.cw_amount)
    negative = sa.case((amount < 0, True), else_=False)
    currency = sa.func.coalesce(BatchItem.currency, Company.home_currency, "USD")
    rows = session.execute(
        sa.select(Batch.type, sa.func.coalesce(Batch.started_at, Batch.created_at),
                  currency, negative, sa.func.sum(amount))
        .join(BatchItem, BatchItem.batch_id == Batch.id)
        .join(Company, Company.id == Batch.company_id)
        .where(Batch.id.in_(batch_ids), BatchItem.state.in_([s.value for s in states]))
        .group_by(Batch.id, Batch.type, Batch.started_at, Batch.created_at, currency,
                  negative))
    for kind, when, code, below, total in rows:
        if when is not None and total:
            yield ("credit" if below and kind.value == "invoice" else kind.value), when, \
                code, Decimal(total)


def posted_by_month(session: Session, filters: Filters) -> list[Chart]:
    """One chart per currency: the amounts posted to QuickBooks, by the month the batch
    started and by type; credit memos (negative amounts) are drawn below zero."""
    per_currency: dict[str, dict[tuple[str, str], Decimal]] = {}
    for key, when, code, total in _posted(session, matching_ids(filters)):
        values = per_currency.setdefault(code, {})
        bucket = (_month(when), key)
        values[bucket] = values.get(bucket, Decimal(0)) + total
    charts = []
    for code, values in sorted(per_currency.items()):
        months = _months({month for month, _key in values})
        kept = {k: v for k, v in values.items() if k[0] in months}
        charts.append(stacked_bars(
            f"Posted to QuickBooks per month ({code})",
            "Amounts of the records posted, by the month their batch started; credit "
            "memos below zero.", months, SERIES, kept, money=True, currency=code))
    return charts


def failed_by_month(session: Session, filters: Filters) -> Chart:
    """Records that failed, by the month they failed (a record retried later still
    counts where it failed), from the items' event log."""
    rows = session.execute(
        sa.select(sa.func.min(BatchItemEvent.at),
                  sa.func.count(sa.distinct(BatchItemEvent.item_id)))
        .join(Batch, Batch.id == BatchItemEvent.batch_id)
        .where(Batch.id.in_(matching_ids(filters)), BatchItemEvent.to_state == "failed",
               BatchItemEvent.item_id.is_not(None))
        .group_by(BatchItemEvent.batch_id))
    values: dict[tuple[str, str], Decimal] = {}
    for when, count in rows:
        if when is not None and count:
            bucket = (_month(when), "failed")
            values[bucket] = values.get(bucket, Decimal(0)) + Decimal(count)
    months = _months({month for month, _key in values})
    return stacked_bars("Failed records per month",
                        "Records that failed, by the month of the failure.", months,
                        [("failed", "Failed records")],
                        {k: v for k, v in values.items() if k[0] in months}, money=False)


def synced_per_day(session: Session, company: Company, today: date, days: int = 30
                   ) -> Chart:
    """The dashboard's "Amounts synced per day" (SPEC 2 item 7): the last `days` days of
    the company's done records per type, in its home currency, by the day their batch
    started; records in other currencies are left out rather than added unconverted."""
    home = company.home_currency or "USD"
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tzinfo=timezone.utc)
    ids = sa.select(Batch.id).where(Batch.company_id == company.id,
                                    sa.func.coalesce(Batch.started_at, Batch.created_at)
                                    >= start)
    values: dict[tuple[str, str], Decimal] = {}
    for key, when, code, total in _posted(session, ids, (ItemState.DONE,)):
        if code == home:
            bucket = (when.date().isoformat(), key)
            values[bucket] = values.get(bucket, Decimal(0)) + total
    return stacked_bars(f"Amounts synced per day ({home})",
                        f"The last {days} days of {company.qbo_name}; credit memos below zero.",
                        [(first + timedelta(days=n)).isoformat() for n in range(days)],
                        SERIES, values, money=True, currency=home, bucket_name="Day")


def _month(when: object) -> str:
    return when.strftime("%Y-%m") if hasattr(when, "strftime") else str(when)[:7]
