"""Connection settings: the one ConnectWise member, the Intuit app, QuickBooks companies
and their tokens. Secret columns hold Fernet tokens (`*_enc`), never clear text."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base
from portal.models.types import UTCDateTime, str_enum, utcnow
from portal.models.user import User


class CwConnection(Base):
    """ConnectWise settings (global: one row, id 1)."""

    __tablename__ = "cw_connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(255))
    company_id: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(100))
    private_key_enc: Mapped[str | None] = mapped_column(Text)
    private_key_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    private_key_set_by: Mapped[str | None] = mapped_column(String(254))
    client_id: Mapped[str] = mapped_column(String(100))
    codebase: Mapped[str] = mapped_column(String(60), default="v4_6_release/")
    api_version: Mapped[str] = mapped_column(String(20), default="2025.1")
    verify_tls: Mapped[bool] = mapped_column(default=True)
    timeout_seconds: Mapped[int] = mapped_column(default=30)
    company_name: Mapped[str | None] = mapped_column(String(255))
    version_code: Mapped[str | None] = mapped_column(String(40))
    is_cloud: Mapped[bool | None]
    system_level_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    system_level_confirmed_by: Mapped[str | None] = mapped_column(String(254))
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None]
    last_test_message: Mapped[str | None] = mapped_column(String(500))
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    server_time_zone: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PermissionProbe(Base):
    """One run of the permissions probe: a row per permission of the recommended role."""

    __tablename__ = "cw_permission_probe"

    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ran_by: Mapped[str | None] = mapped_column(String(254))
    results: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    missing: Mapped[int] = mapped_column(default=0)
    unknown: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))


class QboApp(Base):
    """The Intuit app's credentials (global: one row, id 1)."""

    __tablename__ = "qbo_app"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(200))
    client_secret_enc: Mapped[str | None] = mapped_column(Text)
    client_secret_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    environment: Mapped[str] = mapped_column(String(20), default="sandbox")
    discovery_url: Mapped[str | None] = mapped_column(String(500))
    api_base_url: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CompanyStatus(str, enum.Enum):
    CONNECTED = "connected"
    RECONNECT_NEEDED = "reconnect_needed"
    DISCONNECTED = "disconnected"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class Company(Base):
    """One QuickBooks company (realm) with what portal read of its settings."""

    __tablename__ = "company"

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(40), unique=True)
    qbo_name: Mapped[str] = mapped_column(String(255))
    legal_name: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(40))
    is_us: Mapped[bool] = mapped_column(default=True)
    ast_enabled: Mapped[bool] = mapped_column(default=False)
    using_sales_tax: Mapped[bool] = mapped_column(default=True)
    class_tracking: Mapped[str] = mapped_column(String(10), default="none")
    track_locations: Mapped[bool] = mapped_column(default=False)
    location_label: Mapped[str | None] = mapped_column(String(40))
    multicurrency: Mapped[bool] = mapped_column(default=False)
    home_currency: Mapped[str | None] = mapped_column(String(3))
    account_numbers: Mapped[bool] = mapped_column(default=False)
    custom_txn_numbers: Mapped[bool] = mapped_column(default=False)
    epayments_available: Mapped[bool] = mapped_column(default=False)
    book_close_date: Mapped[date | None]
    status: Mapped[CompanyStatus] = mapped_column(str_enum(CompanyStatus),
                                                  default=CompanyStatus.CONNECTED)
    is_default: Mapped[bool] = mapped_column(default=False)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    connected_by: Mapped[str | None] = mapped_column(String(254))
    info_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_intuit_tid: Mapped[str | None] = mapped_column(String(80))

    token: Mapped[QboToken | None] = relationship(back_populates="company",
                                                  cascade="all, delete-orphan")

    @property
    def needs_reconnect(self) -> bool:
        return self.status is CompanyStatus.RECONNECT_NEEDED


class QboToken(Base):
    """A company's OAuth tokens; `version` lets concurrent refreshers detect each other."""

    __tablename__ = "qbo_token"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"),
                                            primary_key=True)
    access_token_enc: Mapped[str] = mapped_column(Text)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_hard_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    company: Mapped[Company] = relationship(back_populates="token")


__all__ = ["Company", "CompanyStatus", "CwConnection", "PermissionProbe", "QboApp", "QboToken",
           "User"]
