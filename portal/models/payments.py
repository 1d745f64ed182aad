"""Payment sync (SPEC 10): the items of a payment batch, the ConnectWise rows portal wrote,
the cursor and retry set per company, and the webhook events and their settings."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import Money, UTCDateTime, str_enum, utcnow


class PaymentStatus(str, enum.Enum):
    PENDING = "pending"
    DONE = "done"
    WARNING = "warning"
    FAILED = "failed"

    @property
    def colour(self) -> str:
        return {"pending": "grey", "done": "green", "warning": "yellow",
                "failed": "red"}[self.value]


class PaymentItem(Base):
    """One QuickBooks invoice in one payment batch: what ConnectWise held before and after,
    the writes made, and the outcome (SPEC 10.4 step 7)."""

    __tablename__ = "payment_item"
    __table_args__ = (Index("ix_payment_item_batch_position", "batch_id", "position", "id"),
                      Index("ix_payment_item_batch_status", "batch_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    qbo_invoice_id: Mapped[str] = mapped_column(String(40))
    qbo_doc_number: Mapped[str | None] = mapped_column(String(40))
    cw_invoice_id: Mapped[int | None]
    cw_invoice_number: Mapped[str | None] = mapped_column(String(60))
    customer: Mapped[str | None] = mapped_column(String(500))
    currency: Mapped[str | None] = mapped_column(String(3))
    qbo_total: Mapped[Decimal | None] = mapped_column(Money)
    qbo_applied: Mapped[Decimal | None] = mapped_column(Money)
    qbo_payment_ids: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # cash, credits, balance
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    actions: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus),
                                                  default=PaymentStatus.PENDING)
    message: Mapped[str | None] = mapped_column(sa.Text)
    fix_link: Mapped[str | None] = mapped_column(String(300))
    warnings: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    attempts: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def colour(self) -> str:
        return self.status.colour


class PaymentLink(Base):
    """A ConnectWise payment row portal wrote (or adopted after a crash): cash or a credit
    application. Rows not listed here are foreign (entered in ConnectWise)."""

    __tablename__ = "payment_link"
    __table_args__ = (Index("uq_payment_link_row", "company_id", "cw_payment_id", unique=True),
                      Index("ix_payment_link_invoice", "company_id", "cw_invoice_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    qbo_invoice_id: Mapped[str] = mapped_column(String(40))
    cw_invoice_id: Mapped[int]
    cw_payment_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))  # cash | credit
    cw_credit_memo_id: Mapped[int | None]
    amount: Mapped[Decimal] = mapped_column(Money)
    payment_date: Mapped[date | None]
    qbo_payment_ids: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaymentSeen(Base):
    """Which QuickBooks payment applied to which invoice when last synced, so a deleted
    payment still names its invoices (SPEC 10.2 step 3)."""

    __tablename__ = "payment_seen"
    __table_args__ = (Index("uq_payment_seen", "company_id", "qbo_payment_id", "qbo_invoice_id",
                            unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    qbo_payment_id: Mapped[str] = mapped_column(String(40))
    qbo_invoice_id: Mapped[str] = mapped_column(String(40))


class PaymentSyncState(Base):
    """Per company: the cursor (QuickBooks' server time at the start of the last run), the
    retry set of the last run, and a sync requested by a webhook."""

    __tablename__ = "payment_sync_state"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"),
                                            primary_key=True)
    cursor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_set: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_batch_id: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """One QuickBooks change notification, stored once (SPEC 10.3)."""

    __tablename__ = "webhook_event"
    __table_args__ = (Index("uq_webhook_event", "realm_id", "entity", "entity_id", "operation",
                            "event_time", unique=True),
                      Index("ix_webhook_event_processed", "processed", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(20))
    event_time: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed: Mapped[bool] = mapped_column(default=False)


class WebhookConfig(Base):
    """The receiver's global settings (SPEC 3.4, 10.3): one row, id 1."""

    __tablename__ = "qbo_webhook_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    verifier_token_enc: Mapped[str | None] = mapped_column(sa.Text)
    debounce_seconds: Mapped[int] = mapped_column(default=60)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
