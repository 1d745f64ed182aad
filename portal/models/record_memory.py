"""RecordMemory: a fact about a ConnectWise record that must not change once portal has seen
it, even when ConnectWise later reports it differently (e.g. the day a purchase order was
first closed, which re-closing the PO moves in ConnectWise)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime, utcnow


class RecordMemory(Base):
    """One remembered value per company and key; the first value written stays."""

    __tablename__ = "record_memory"

    company_id: Mapped[int] = mapped_column(
        sa.ForeignKey("company.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. po-first-closed:17
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
