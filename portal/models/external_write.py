"""ExternalWrite: the intent and the outcome of one write to ConnectWise or QuickBooks that
has no natural key to look it up by (a payment, an email, a delete)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime, str_enum, utcnow


class WriteStatus(str, enum.Enum):
    SENDING = "sending"  # committed before the call: the write may have happened
    DONE = "done"  # the remote side holds it (remote_id, result)
    FAILED = "failed"  # refused: nothing was written
    UNKNOWN = "unknown"  # still unsettled after a crash; the reconciler keeps asking


class ExternalWrite(Base):
    """One write, keyed by what it is for (`key`), so it happens at most once.

    `services.writes.perform_once` commits the row as `sending` before the call and settles
    it after; a row left `sending` by a crash is settled by looking the write up on the
    remote side (the reconciler of the scheduler tick, or the next attempt)."""

    __tablename__ = "external_write"
    __table_args__ = (
        Index("uq_external_write_key", "target", "operation", "key", unique=True),
        Index("ix_external_write_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(10))  # cw | qbo
    operation: Mapped[str] = mapped_column(String(60))  # e.g. cw.invoice_payment.create
    key: Mapped[str] = mapped_column(String(200))
    company_id: Mapped[int | None]
    run_id: Mapped[int | None]
    request_id: Mapped[str] = mapped_column(String(50))
    status: Mapped[WriteStatus] = mapped_column(str_enum(WriteStatus),
                                                default=WriteStatus.SENDING)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # no secrets
    remote_id: Mapped[str | None] = mapped_column(String(60))
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
