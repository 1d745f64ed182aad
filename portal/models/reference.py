"""The reference cache: both sides' lists, kept locally so matching never waits on an API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime, utcnow


class QboRef(Base):
    """One QuickBooks list object of one company (Customer, Account, Item, TaxCode …)."""

    __tablename__ = "qbo_ref"
    __table_args__ = (
        UniqueConstraint("company_id", "entity", "qbo_id", name="uq_qbo_ref_object"),
        Index("ix_qbo_ref_company_entity_name", "company_id", "entity", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(30))
    qbo_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(500))
    fully_qualified_name: Mapped[str | None] = mapped_column(String(1000))
    acct_num: Mapped[str | None] = mapped_column(String(40))
    type: Mapped[str | None] = mapped_column(String(60))
    subtype: Mapped[str | None] = mapped_column(String(60))
    currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)
    parent_id: Mapped[str | None] = mapped_column(String(40))
    sync_token: Mapped[str | None] = mapped_column(String(20))
    last_updated_time: Mapped[str | None] = mapped_column(String(40))
    extra: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CwRef(Base):
    """One ConnectWise list record (company, member, product, GL account, tax code …)."""

    __tablename__ = "cw_ref"
    __table_args__ = (
        UniqueConstraint("entity", "cw_id", name="uq_cw_ref_record"),
        Index("ix_cw_ref_entity_identifier", "entity", "identifier"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(30))
    cw_id: Mapped[int]
    identifier: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(500))
    extra: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefFetch(Base):
    """When each list was last fetched, how many objects it held, and any error."""

    __tablename__ = "ref_fetch"
    __table_args__ = (UniqueConstraint("side", "company_key", "entity",
                                       name="uq_ref_fetch_list"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    side: Mapped[str] = mapped_column(String(3))  # cw or qbo
    company_key: Mapped[int] = mapped_column(default=0)  # company id for qbo, 0 for cw
    entity: Mapped[str] = mapped_column(String(30))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
