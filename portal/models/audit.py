"""The append-only audit log: who did what, when, with before and after values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime, utcnow


class AuditEvent(Base):
    """One audited action. Rows are never updated or deleted (a trigger enforces it on
    PostgreSQL)."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))  # user email, cli, system:*
    user_id: Mapped[int | None] = mapped_column(index=True)  # no FK: outlives the user
    ip: Mapped[str | None] = mapped_column(String(45))
    action: Mapped[str] = mapped_column(String(80), index=True)
    company_id: Mapped[int | None]
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(80))
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(10), default="ok")
