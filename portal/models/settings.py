"""Per-company QuickBooks setup settings: current values, immutable versions, mapping rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base
from portal.models.types import UTCDateTime, utcnow


class StoredSettings(Base):
    """The current settings of one company: every tab's values as JSON.

    The definitions (types, defaults, validation) live in `services.company_settings`; this
    row only stores what they produced, so a new setting needs no schema change.
    """

    __tablename__ = "company_settings"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"),
                                            primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SettingsVersion(Base):
    """An immutable snapshot of all tabs of one company, written by every save.

    A batch records the version it started with; rows are never updated or deleted.
    """

    __tablename__ = "settings_version"
    __table_args__ = (UniqueConstraint("company_id", "number",
                                       name="uq_settings_version_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    number: Mapped[int]  # 1, 2, 3 … per company
    tab: Mapped[str | None] = mapped_column(String(20))  # None: the defaults at creation
    values: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    facts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # company prefs then
    author: Mapped[str] = mapped_column(String(254))  # user email, or "system"
    author_id: Mapped[int | None]  # no FK: outlives the user
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaxCodeMapping(Base):
    """One CW tax code -> QBO TaxCode of a company; each CW code appears once."""

    __tablename__ = "tax_code_mapping"
    __table_args__ = (UniqueConstraint("company_id", "cw_tax_code",
                                       name="uq_tax_code_mapping_cw_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    cw_tax_code: Mapped[str] = mapped_column(String(255))  # the CW identifier
    qbo_tax_code_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CurrencyMapping(Base):
    """One CW currency code -> QBO currency code; codes without a row map to themselves."""

    __tablename__ = "currency_mapping"
    __table_args__ = (UniqueConstraint("company_id", "cw_currency",
                                       name="uq_currency_mapping_cw_currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    cw_currency: Mapped[str] = mapped_column(String(10))
    qbo_currency: Mapped[str] = mapped_column(String(3))


ITEM_TYPES = ("Inventory", "NonInventory", "Service")  # the QuickBooks Item types we create


class ItemTypeMapping(Base):
    """One CW product type Xref -> QBO Item type of a company; Xrefs without a row use the
    SPEC 5.2 defaults (services.item_types)."""

    __tablename__ = "item_type_mapping"
    __table_args__ = (
        UniqueConstraint("company_id", "type_xref", name="uq_item_type_mapping_type_xref"),
        sa.CheckConstraint("qbo_type IN ('Inventory', 'NonInventory', 'Service')",
                           name="qbo_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    type_xref: Mapped[str] = mapped_column(String(100))  # the CW Product Type "Type Xref"
    qbo_type: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImmutableRowError(RuntimeError):
    """A settings version was about to be changed or deleted."""


@event.listens_for(SettingsVersion, "before_update")
@event.listens_for(SettingsVersion, "before_delete")
def _refuse_change(_mapper: Any, _connection: Any, target: SettingsVersion) -> None:
    raise ImmutableRowError(f"settings_version {target.id} is immutable")


__all__ = ["ITEM_TYPES", "CurrencyMapping", "ImmutableRowError", "ItemTypeMapping",
           "SettingsVersion", "StoredSettings", "TaxCodeMapping"]
