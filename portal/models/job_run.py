"""JobRun: one background run, its progress bar, its lock and its resume point."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.types import UTCDateTime, str_enum, utcnow
from portal.models.user import User


class RunKind(str, enum.Enum):
    SELF_CHECK = "self_check"
    REFERENCE_REFRESH = "reference_refresh"
    MAPPING_SCAN = "mapping_scan"
    MAPPING_CREATE = "mapping_create"
    BATCH = "batch"
    UNBATCH = "unbatch"
    CLEAR = "clear"
    VALIDATION = "validation"
    PAYMENT_SYNC = "payment_sync"

    @property
    def label(self) -> str:
        return {"self_check": "Self-check", "reference_refresh": "Reference data refresh",
                "mapping_scan": "Mapping check",
                "mapping_create": "Create in QuickBooks", "batch": "Batch",
                "unbatch": "Unbatch", "clear": "Clearing old transactions",
                "validation": "Validation", "payment_sync": "Payment sync"}.get(
            self.value, self.value.replace("_", " "))


class RunStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)


ACTIVE = sa.text("status IN ('queued', 'running')")


class JobRun(Base):
    """One long operation. At most one queued or running run per company (the lock)."""

    __tablename__ = "job_run"
    __table_args__ = (
        Index("uq_job_run_active_company", "company_id", unique=True,
              sqlite_where=ACTIVE, postgresql_where=ACTIVE),
        Index("ix_job_run_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RunKind] = mapped_column(str_enum(RunKind, 30))
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus), default=RunStatus.QUEUED)
    company_id: Mapped[int | None]
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    rq_job_id: Mapped[str | None] = mapped_column(String(64))
    claim_token: Mapped[str | None] = mapped_column(String(32))  # the worker holding it
    phase: Mapped[str | None] = mapped_column(String(30))  # what the run is doing now
    phase_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # per step of a run: {"posting": {"done": 40, "total": 110, "started": "<iso>"}, …}
    steps: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    message: Mapped[str | None] = mapped_column(String(500))
    log: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    started_by: Mapped[User | None] = relationship()

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if not self.active else 0
        return min(100, round(100 * self.done / self.total))

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return (end - self.started_at).total_seconds()
