"""Batches: one run of one type for one company, and one item per ConnectWise record.

The item rows are the resume point of the engine (SPEC 6.2, 6.3): every state change is
committed before the next external call, so a killed worker leaves a row that says exactly
what is known about the record's QuickBooks document and ConnectWise marking.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.job_run import JobRun
from portal.models.types import Money, UTCDateTime, str_enum, utcnow
from portal.models.user import User


class BatchType(str, enum.Enum):
    INVOICE = "invoice"
    EXPENSE = "expense"
    INVENTORY = "inventory"
    PAYMENT = "payment"
    CLEAR = "clear"

    @property
    def label(self) -> str:
        return {"invoice": "Invoices", "expense": "Expenses", "inventory": "Inventory",
                "payment": "Payment sync", "clear": "Clearing"}.get(self.value, self.value)


class BatchStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in (BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.PAUSED)


class ItemState(str, enum.Enum):
    SELECTED = "selected"
    VALIDATED = "validated"
    POSTING = "posting"
    POSTED = "posted"
    MARKED = "marked"
    DONE = "done"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"
    RETRIED = "retried"
    UNBATCHING = "unbatching"
    UNBATCHED = "unbatched"
    CLEARED = "cleared"
    UNCLEARED = "uncleared"

    @property
    def closed(self) -> bool:
        """No live QuickBooks document for this generation hangs on this row."""
        return self in CLOSED_STATES


CLOSED_STATES = frozenset({ItemState.FAILED, ItemState.SKIPPED, ItemState.RETRIED,
                           ItemState.UNBATCHED, ItemState.UNCLEARED})
LIVE = sa.text("state NOT IN ('failed', 'skipped', 'retried', 'unbatched', 'uncleared')")


class Batch(Base):
    """One batch; its JobRun holds the company lock, the claim and the heartbeat."""

    __tablename__ = "batch"
    __table_args__ = (Index("ix_batch_company_created", "company_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[BatchType] = mapped_column(str_enum(BatchType))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("job_run.id", ondelete="SET NULL"))
    status: Mapped[BatchStatus] = mapped_column(str_enum(BatchStatus),
                                                default=BatchStatus.QUEUED)
    colour: Mapped[str] = mapped_column(String(10), default="grey")
    trigger: Mapped[str] = mapped_column(String(40))
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    settings_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("settings_version.id", ondelete="SET NULL"))
    settings_snapshot: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    counts: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
    totals: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    preflight: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    message: Mapped[str | None] = mapped_column(String(500))
    qbo_requests: Mapped[int] = mapped_column(default=0)
    cw_requests: Mapped[int] = mapped_column(default=0)
    throttled_seconds: Mapped[float] = mapped_column(default=0.0)
    preflight_passed: Mapped[bool] = mapped_column(default=False)  # all-or-nothing check done
    cancel_requested_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    run: Mapped[JobRun | None] = relationship()
    started_by: Mapped[User | None] = relationship()
    company: Mapped[Any] = relationship("Company")

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()

    @property
    def trigger_label(self) -> str:
        if self.trigger.startswith(("retry-of:", "adopt-of:")):
            verb = self.trigger.split("-", 1)[0]
            return f"{verb} from #{self.trigger.split(':', 1)[1]}"
        if self.trigger.startswith("user:"):
            return self.started_by.email if self.started_by else "a user"
        return self.trigger


class BatchItem(Base):
    """One ConnectWise record in one batch; at most one live item per record."""

    __tablename__ = "batch_item"
    __table_args__ = (
        Index("uq_batch_item_live_record", "record_key", unique=True,
              sqlite_where=LIVE, postgresql_where=LIVE),
        Index("ix_batch_item_batch_state", "batch_id", "state"),
        Index("ix_batch_item_batch_position", "batch_id", "position", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"))
    record_key: Mapped[str] = mapped_column(String(120))
    generation: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    cw_unposted_id: Mapped[int | None]
    cw_id: Mapped[int | None]
    cw_number: Mapped[str] = mapped_column(String(60))
    cw_kind: Mapped[str | None] = mapped_column(String(30))
    party: Mapped[str | None] = mapped_column(String(500))
    record_date: Mapped[date | None]
    gl_entry_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    source_refs: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # e.g. expense ids
    state: Mapped[ItemState] = mapped_column(str_enum(ItemState), default=ItemState.SELECTED)
    skip_reason: Mapped[str | None] = mapped_column(String(20))  # see SKIP_REASONS
    qbo_entity: Mapped[str | None] = mapped_column(String(30))
    qbo_id: Mapped[str | None] = mapped_column(String(40))
    qbo_doc_number: Mapped[str | None] = mapped_column(String(40))
    qbo_sync_token: Mapped[str | None] = mapped_column(String(20))
    request_token: Mapped[str | None] = mapped_column(String(32))
    qbo_batch_request_id: Mapped[str | None] = mapped_column(String(40))
    bid: Mapped[str | None] = mapped_column(String(10))
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    conflict_entity: Mapped[str | None] = mapped_column(String(30))  # a document holding
    conflict_qbo_id: Mapped[str | None] = mapped_column(String(40))  # our DocNumber: Adopt
    cw_batch_identifier: Mapped[str | None] = mapped_column(String(50))
    cw_batch_id: Mapped[int | None]
    cw_amount: Mapped[Decimal | None] = mapped_column(Money)
    cw_tax: Mapped[Decimal | None] = mapped_column(Money)
    qbo_amount: Mapped[Decimal | None] = mapped_column(Money)
    qbo_tax: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    message: Mapped[str | None] = mapped_column(sa.Text)
    fix_hint: Mapped[str | None] = mapped_column(sa.Text)
    fix_link: Mapped[str | None] = mapped_column(String(300))
    warnings: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    attempts: Mapped[int] = mapped_column(default=0)
    unknown_outcomes: Mapped[int] = mapped_column(default=0)
    mark_attempts: Mapped[int] = mapped_column(default=0)
    # re-batching (SPEC 11.3): the unbatched generation's document, whether it is still
    # live, voided or deleted, and what this generation does with it (new|update|adopt)
    earlier_qbo_id: Mapped[str | None] = mapped_column(String(40))
    earlier_state: Mapped[str | None] = mapped_column(String(10))
    rebatch_mode: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    batch: Mapped[Batch] = relationship()

    @property
    def colour(self) -> str:
        return item_colour(self.state, self.message, self.warnings, self.skip_reason)

    @property
    def retryable(self) -> bool:
        return self.state in RETRYABLE or (self.state is ItemState.SKIPPED
                                           and self.skip_reason in RETRY_SKIPS)


# Why an item was skipped: "blocked" (pre-flight found problems in other records, so the
# batch wrote nothing), "cancelled" (someone cancelled the batch) - both grey and carried by
# Retry - or "deliberate" (zero, unapproved, personal: nothing to post), which is green.
# "problem": a batch that posts what passes (AutoSync) left the record out with its error.
SKIP_REASONS = ("blocked", "cancelled", "deliberate", "problem")
RETRY_SKIPS = ("blocked", "cancelled", "problem")
RETRYABLE = frozenset({ItemState.FAILED, ItemState.UNCERTAIN, ItemState.POSTED})


def item_colour(state: ItemState, message: str | None, warnings: list[str] | None,
                skip_reason: str | None) -> str:
    """SPEC 6.8 for one record: red needs attention, green is finished, grey is not there
    yet (or was moved to another batch); `colour_sql` is the same rule for queries."""
    if state in (ItemState.FAILED, ItemState.UNCERTAIN) or (
            state is ItemState.POSTED and message):
        return "red"
    if state is ItemState.DONE:
        return "yellow" if warnings else "green"
    if state is ItemState.CLEARED:  # handled without posting (SPEC 12)
        return "green"
    if state is ItemState.SKIPPED and skip_reason == "deliberate":
        return "green"
    return "grey"


def colour_sql() -> sa.ColumnElement[str]:
    """`item_colour` as a SQL expression, for filters and counts on large batches."""
    warned = sa.and_(BatchItem.warnings.is_not(None),
                     sa.cast(BatchItem.warnings, sa.Text) != "[]")
    return sa.case(
        (BatchItem.state.in_([ItemState.FAILED.value, ItemState.UNCERTAIN.value]), "red"),
        (sa.and_(BatchItem.state == ItemState.POSTED.value, BatchItem.message.is_not(None)),
         "red"),
        (sa.and_(BatchItem.state == ItemState.DONE.value, warned), "yellow"),
        (BatchItem.state == ItemState.DONE.value, "green"),
        (BatchItem.state == ItemState.CLEARED.value, "green"),
        (sa.and_(BatchItem.state == ItemState.SKIPPED.value,
                 BatchItem.skip_reason == "deliberate"), "green"),
        else_="grey")


class BatchItemEvent(Base):
    """Every state change and external call of an item (the 'show events' view)."""

    __tablename__ = "batch_item_event"
    __table_args__ = (Index("ix_batch_item_event_item", "item_id", "id"),
                      Index("ix_batch_item_event_batch", "batch_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("batch_item.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    endpoint: Mapped[str | None] = mapped_column(String(200))
    http_status: Mapped[int | None]
    intuit_tid: Mapped[str | None] = mapped_column(String(80))
    text: Mapped[str | None] = mapped_column(String(1000))
    duration_ms: Mapped[int | None]
