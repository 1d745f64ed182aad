"""Mapping overrides and the results of the latest mapping scan of the unposted backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.types import UTCDateTime, utcnow


class MappingOverride(Base):
    """An explicit choice: this ConnectWise value means this QuickBooks object (by id, so
    it survives renames in QuickBooks)."""

    __tablename__ = "mapping_override"
    __table_args__ = (UniqueConstraint("company_id", "entity", "cw_key",
                                       name="uq_mapping_override_value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(20))
    cw_key: Mapped[str] = mapped_column(String(500))
    qbo_id: Mapped[str] = mapped_column(String(40))
    qbo_name_at_save: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MappingScan(Base):
    """One scan of the unposted backlog: what would fail if it were batched now."""

    __tablename__ = "mapping_scan"
    __table_args__ = (Index("ix_mapping_scan_company_id_desc", "company_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    run_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    records: Mapped[int] = mapped_column(default=0)
    records_with_errors: Mapped[int] = mapped_column(default=0)

    values: Mapped[list[MappingValue]] = relationship(back_populates="scan",
                                                      cascade="all, delete-orphan",
                                                      passive_deletes=True)


class MappingValue(Base):
    """One distinct ConnectWise value (or record-level problem) found by a scan."""

    __tablename__ = "mapping_value"
    __table_args__ = (Index("ix_mapping_value_scan_kind_status", "scan_id", "kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("mapping_scan.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # editor entity, or "record"
    cw_value: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))
    qbo_id: Mapped[str | None] = mapped_column(String(40))
    qbo_name: Mapped[str | None] = mapped_column(String(500))
    records: Mapped[int] = mapped_column(default=0)
    record_refs: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    message: Mapped[str | None] = mapped_column(sa.Text)
    hint: Mapped[str | None] = mapped_column(sa.Text)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    create_fields: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # item type, accounts

    scan: Mapped[MappingScan] = relationship(back_populates="values")

    @property
    def blocking(self) -> bool:
        return self.status in ("near_miss", "missing", "conflict", "inactive", "error")
