"""AutoSync state (SPEC 15): per company (failures, auto-disable, the tick's cursors) and per
company and type (next run, last run, the records left out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime


class AutoSyncCompany(Base):
    __tablename__ = "autosync_company"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"),
                                            primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure: Mapped[str | None] = mapped_column(sa.Text)
    # cursors of the tick: batches up to these ids were mailed (AfterBatch) and notified
    emailed_batch_id: Mapped[int | None]
    notified_batch_id: Mapped[int | None]


class AutoSyncType(Base):
    """One type of one company: when it runs next and what its last run did. `attention`
    lists the records left out (their fingerprint, message and hint)."""

    __tablename__ = "autosync_type"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"),
                                            primary_key=True)
    type: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_batch_id: Mapped[int | None]
    last_settled: Mapped[bool] = mapped_column(default=True)  # its result was counted
    last_result: Mapped[str | None] = mapped_column(sa.Text)
    last_colour: Mapped[str | None] = mapped_column(String(10))
    attention: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
