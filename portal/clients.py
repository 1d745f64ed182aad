"""Builds the integration clients for stored connections (the seam the demo and tests use)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient
from portal.models import Company
from portal.services import cw_setup, qbo_setup


def connectwise(session: Session) -> ConnectWiseClient | None:
    """The ConnectWise client, or None while ConnectWise is not set up."""
    row = cw_setup.current(session)
    if row is None or not row.private_key_enc:
        return None
    return cw_setup.client(row)


def quickbooks(session: Session, company: Company) -> QuickBooksClient:
    return qbo_setup.client_for(session, company)
