"""QuickBooks Online connection: app credentials, connecting companies, reading their
settings, the default company, disconnecting."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for
from sqlalchemy.orm import Session

from portal.integrations import errors, qbo_auth
from portal.integrations.http import new_session
from portal.integrations.quickbooks import QuickBooksClient
from portal.models import Company, CompanyStatus, QboApp, QboToken, User
from portal.models.types import utcnow
from portal.services import audit, tokens
from portal.services.cw_setup import SetupError
from portal.services.secrets_store import seal, unseal

log = logging.getLogger(__name__)

API_BASE = {"production": "https://quickbooks.api.intuit.com",
            "sandbox": "https://sandbox-quickbooks.api.intuit.com"}
ENVIRONMENTS = ("sandbox", "production", "custom")
US_NAMES = {"US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"}


def app_row(session: Session) -> QboApp | None:
    return session.get(QboApp, 1)


def env_locked() -> bool:
    """PORTAL_QBO_CLIENT_ID/_SECRET fill in and lock the app credentials."""
    return bool(current_app.config.get("QBO_CLIENT_ID"))


def redirect_uri() -> str:
    """PORTAL_BASE_URL's callback, else this request's; refresh and revoke (in jobs) do
    not use it, so outside a request without a base URL it is empty."""
    base = current_app.config.get("BASE_URL")
    if base:
        return f"{base.rstrip('/')}/setup/quickbooks/callback"
    if not has_request_context():
        return ""
    return url_for("setup.quickbooks_callback", _external=True)


def save_app(session: Session, *, client_id: str, client_secret: str | None, environment: str,
             discovery_url: str | None, api_base_url: str | None, by: User) -> QboApp:
    """Store the Intuit app's credentials; a blank secret keeps the stored one."""
    if environment not in ENVIRONMENTS:
        raise SetupError("Choose production, sandbox or custom.", field="environment")
    if environment == "custom":
        for name, value in (("discovery_url", discovery_url), ("api_base_url", api_base_url)):
            if not value or not value.startswith(("http://", "https://")):
                raise SetupError("Enter an http(s) URL (required for a custom environment).",
                                 field=name)
    row = app_row(session)
    before = None if row is None else {"client_id": row.client_id,
                                       "environment": row.environment,
                                       "discovery_url": row.discovery_url,
                                       "client_secret": row.client_secret_enc}
    if row is None:
        if not client_secret:
            raise SetupError("Enter the client secret.", field="client_secret")
        row = QboApp(id=1, client_id="")
        session.add(row)
    row.client_id = client_id.strip()
    row.environment = environment
    row.discovery_url = discovery_url.strip() if environment == "custom" and discovery_url \
        else None
    row.api_base_url = api_base_url.strip().rstrip("/") if environment == "custom" and \
        api_base_url else None
    if client_secret:
        row.client_secret_enc = seal(client_secret.strip())
        row.client_secret_set_at = utcnow()
    session.flush()
    audit.record(session, "connection.qbo.app_update", target_type="qbo_app", target_id=1,
                 before=before, after={"client_id": row.client_id,
                                       "environment": row.environment,
                                       "discovery_url": row.discovery_url,
                                       "client_secret": row.client_secret_enc})
    return row


def credentials(session: Session) -> qbo_auth.AppCredentials:
    """The app credentials intuit-oauth needs; SetupError when they are not configured."""
    row = app_row(session)
    config = current_app.config
    client_id = config.get("QBO_CLIENT_ID") or (row.client_id if row else None)
    secret = config.get("QBO_CLIENT_SECRET") or (
        unseal(row.client_secret_enc) if row and row.client_secret_enc else None)
    if not client_id or not secret:
        raise SetupError("Enter the Intuit app's client id and secret first.",
                         field="client_id")
    environment = row.environment if row else "sandbox"
    target = row.discovery_url if row and environment == "custom" else environment
    return qbo_auth.AppCredentials(client_id, secret, redirect_uri(), target or "sandbox")


def api_base(session: Session) -> str:
    row = app_row(session)
    if row is None:
        return API_BASE["sandbox"]
    if row.environment == "custom":
        return row.api_base_url or ""
    return API_BASE[row.environment]


def client_for(session: Session, company: Company) -> QuickBooksClient:
    base = api_base(session)
    return QuickBooksClient(new_session(base), base, company.realm_id,
                            tokens.DbTokenSource(company.id, credentials(session)),
                            pace=_pacer(company.realm_id))


def _pacer(realm_id: str) -> Any:
    """The realm's shared pacing (SPEC 6.7), or none when Redis cannot be opened here."""
    from portal import jobs
    from portal.services.batching.pacing import Pacer

    config = current_app.config
    try:
        redis = jobs.get_redis()
    except Exception:  # noqa: BLE001 - pages that call QuickBooks still work without Redis
        return None
    return Pacer(redis, realm_id, per_minute=config["QBO_MAX_RPM"],
                 batch_per_minute=config["QBO_MAX_BATCH_RPM"],
                 concurrent=config["QBO_MAX_CONCURRENT"])


def complete_connect(session: Session, *, code: str, realm_id: str, by: User) -> Company:
    """Exchange the code, store the tokens, read the company's settings; the caller commits.

    A realm already known is a reconnect: its tokens are replaced and the flag cleared.
    """
    app = credentials(session)
    token_set = qbo_auth.exchange_code(app, code, realm_id)
    company = session.scalar(sa.select(Company).where(Company.realm_id == realm_id))
    reconnect = company is not None
    if company is None:
        first = session.scalar(sa.select(sa.func.count()).select_from(Company)) == 0
        company = Company(realm_id=realm_id, qbo_name=realm_id, is_default=first)
        session.add(company)
    before = {"status": company.status} if reconnect else None
    company.status = CompanyStatus.CONNECTED
    company.connected_at = utcnow()
    company.connected_by = by.email
    company.last_error = None
    session.flush()  # the company has its id
    tokens.store(session, session.get(QboToken, company.id), company, token_set)
    session.flush()
    session.commit()  # the tokens are durable before anything else can fail
    try:
        refresh_info(session, company)
    except errors.IntegrationError as exc:
        company.last_error = f"Connected, but the company settings could not be read: " \
                             f"{exc.message}"[:500]
        company.last_intuit_tid = exc.tid
    from portal.services import company_settings

    company_settings.ensure_settings(session, company)  # pages then only read them
    audit.record(session, "connection.qbo.reconnect" if reconnect else "connection.qbo.connect",
                 target=company, company_id=company.id, before=before,
                 after={"realm_id": realm_id, "name": company.qbo_name,
                        "status": company.status})
    return company


def refresh_info(session: Session, company: Company) -> None:
    """Read CompanyInfo and Preferences and store what the sync depends on."""
    client = client_for(session, company)
    info = client.company_info()
    prefs = client.preferences()
    apply_settings(company, info, prefs)
    company.info_refreshed_at = utcnow()


def apply_settings(company: Company, info: dict, prefs: dict) -> None:  # type: ignore[type-arg]
    accounting = prefs.get("AccountingInfoPrefs", {})
    sales = prefs.get("SalesFormsPrefs", {})
    tax = prefs.get("TaxPrefs", {})
    currency = prefs.get("CurrencyPrefs", {})
    company.qbo_name = str(info.get("CompanyName") or company.qbo_name)[:255]
    company.legal_name = info.get("LegalName")
    country = str(info.get("Country") or "").strip()
    company.country = country or None
    company.is_us = country.upper() in US_NAMES or not country
    company.ast_enabled = bool(tax.get("PartnerTaxEnabled"))
    company.using_sales_tax = bool(tax.get("UsingSalesTax", True))
    company.class_tracking = ("line" if accounting.get("ClassTrackingPerTxnLine") else
                              "txn" if accounting.get("ClassTrackingPerTxn") else "none")
    company.track_locations = bool(accounting.get("TrackDepartments"))
    company.location_label = accounting.get("DepartmentTerminology")
    company.account_numbers = bool(accounting.get("UseAccountNumbers"))
    company.multicurrency = bool(currency.get("MultiCurrencyEnabled"))
    home = currency.get("HomeCurrency")
    company.home_currency = (home.get("value") if isinstance(home, dict) else home) or None
    company.custom_txn_numbers = bool(sales.get("CustomTxnNumbers"))
    company.epayments_available = bool(sales.get("ETransactionPaymentEnabled"))
    close = accounting.get("BookCloseDate")
    try:
        company.book_close_date = date.fromisoformat(close) if close else None
    except ValueError:
        company.book_close_date = None


def set_default(session: Session, company: Company) -> None:
    previous = session.scalar(sa.select(Company).where(Company.is_default.is_(True)))
    if previous is company:
        return
    if previous is not None:
        previous.is_default = False
        session.flush()
    company.is_default = True
    audit.record(session, "connection.qbo.default", target=company, company_id=company.id,
                 before={"default": previous.realm_id if previous else None},
                 after={"default": company.realm_id})


def disconnect(session: Session, company: Company) -> str | None:
    """Revoke the refresh token and forget both tokens; returns a warning when the revoke
    failed (it never blocks the disconnect). The caller commits."""
    warning = None
    token = company.token
    if token is not None:
        try:
            qbo_auth.revoke(credentials(session), unseal(token.refresh_token_enc))
        except (errors.IntegrationError, SetupError) as exc:
            warning = f"Intuit did not confirm the revoke ({exc}); the tokens were deleted here."
        session.delete(token)
        company.token = None
    before = {"status": company.status}
    company.status = CompanyStatus.DISCONNECTED
    audit.record(session, "connection.qbo.disconnect", target=company, company_id=company.id,
                 before=before, after={"status": company.status})
    return warning


def companies(session: Session) -> list[Company]:
    return list(session.scalars(sa.select(Company).order_by(Company.is_default.desc(),
                                                            Company.qbo_name)))


def needing_reconnect(session: Session) -> list[Company]:
    return list(session.scalars(sa.select(Company).where(
        Company.status == CompanyStatus.RECONNECT_NEEDED)))


def token_of(session: Session, company: Company) -> QboToken | None:
    return session.get(QboToken, company.id)
