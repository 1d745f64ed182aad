"""Unbatching (SPEC 11) and validation reports (SPEC 13.3).

An unbatch request is one posted record taken back out of both systems. Its `step` is the
resume point of the job: `qbo` (the QuickBooks void or delete is still to be done or
confirmed), `cw` (QuickBooks is settled; the ConnectWise accounting batch is still to be
deleted), `done` or `failed`. Each step commits before the next external call, so a
retry after a crash finishes only what is missing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.batch import BatchItem
from portal.models.types import UTCDateTime, utcnow

QBO_ACTIONS = ("None", "Void", "Delete")


class UnbatchRequest(Base):
    """One record to unbatch, in one unbatch run."""

    __tablename__ = "unbatch_request"
    __table_args__ = (Index("ix_unbatch_request_run", "run_id", "id"),
                      Index("ix_unbatch_request_item", "item_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_run.id", ondelete="SET NULL"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("batch_item.id", ondelete="CASCADE"))
    qbo_action: Mapped[str] = mapped_column(String(10))  # None | Void | Delete
    unlink_payments: Mapped[bool] = mapped_column(default=False)
    step: Mapped[str] = mapped_column(String(10), default="qbo")  # qbo | cw | done | failed
    state_before: Mapped[str] = mapped_column(String(20))  # the item's state, for a refusal
    qbo_request_id: Mapped[str] = mapped_column(String(32))
    qbo_result: Mapped[str | None] = mapped_column(String(200))  # what QuickBooks holds now
    unlinked: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    cw_batch_id: Mapped[int | None]
    message: Mapped[str | None] = mapped_column(sa.Text)
    requested_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[BatchItem] = relationship()


class ValidationReport(Base):
    """One validation run: every posted document re-read and compared (SPEC 13.3)."""

    __tablename__ = "validation_report"
    __table_args__ = (Index("ix_validation_report_company", "company_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_run.id", ondelete="SET NULL"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id", ondelete="SET NULL"))
    record_type: Mapped[str | None] = mapped_column(String(20))
    date_from: Mapped[date | None]
    date_to: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued|running|done
    checked: Mapped[int] = mapped_column(default=0)
    mismatched: Mapped[int] = mapped_column(default=0)
    summary: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    rows: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    message: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
