"""Email: the global SMTP server, the invoice email log and the notification log (SPEC 14)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime, str_enum, utcnow


class SmtpSettings(Base):
    """The one SMTP server (id 1) that sends invoices in Smtp mode and every notification.
    The password is a Fernet token (services.secrets_store), never clear text."""

    __tablename__ = "smtp_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(default=587)
    security: Mapped[str] = mapped_column(String(10), default="starttls")
    username: Mapped[str] = mapped_column(String(255), default="")
    password_enc: Mapped[str | None] = mapped_column(sa.Text)
    timeout: Mapped[int] = mapped_column(default=20)
    from_address: Mapped[str] = mapped_column(String(254), default="")
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None]
    last_test_error: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EmailStatus(str, enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"  # committed before the call: the mail may have gone
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # a crash left it sending; never sent again by itself
    SKIPPED = "skipped"


class EmailLog(Base):
    """One attempt to email one invoice (SPEC 14.3). `send_seq` 1 is the first send; each
    Resend adds one, so (company, invoice, send_seq) is unique."""

    __tablename__ = "email_log"
    __table_args__ = (
        Index("uq_email_log_send", "company_id", "qbo_invoice_id", "send_seq", unique=True),
        Index("ix_email_log_status", "status"),
        Index("ix_email_log_company", "company_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    qbo_invoice_id: Mapped[str] = mapped_column(String(40))
    qbo_entity: Mapped[str] = mapped_column(String(20), default="Invoice")
    cw_invoice_number: Mapped[str | None] = mapped_column(String(40))
    cw_invoice_id: Mapped[int | None]
    batch_id: Mapped[int | None]
    send_seq: Mapped[int] = mapped_column(default=1)
    channel: Mapped[str] = mapped_column(String(12))  # QuickBooks | Smtp
    recipients: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    status: Mapped[EmailStatus] = mapped_column(str_enum(EmailStatus),
                                                default=EmailStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(sa.Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[str] = mapped_column(String(254), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """One event worth a mail (SPEC 14.4). The first of a kind per company per hour is
    mailed at once (`sent_at`); later ones wait for the hourly digest (`digest_at`)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_kind", "kind", "company_id", "id"),
                      Index("ix_notification_pending", "sent_at", "digest_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    company_id: Mapped[int | None]
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    link: Mapped[str | None] = mapped_column(String(500))
    recipients: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.Text)
