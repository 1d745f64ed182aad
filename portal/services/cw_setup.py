"""ConnectWise connection: save the settings, test them, probe the security role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations import connectwise as cw
from portal.integrations import errors
from portal.integrations.http import new_session
from portal.models import CwConnection, PermissionProbe, User
from portal.models.types import utcnow
from portal.services import audit
from portal.services.secrets_store import seal, unseal


class SetupError(ValueError):
    """Settings that cannot be saved; `field` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.field = field
        self.hint = hint


@dataclass(frozen=True)
class TestResult:
    ok: bool
    message: str
    hint: str | None = None


def current(session: Session) -> CwConnection | None:
    return session.get(CwConnection, 1)


def _public(row: CwConnection | None) -> dict[str, object]:
    if row is None:
        return {}
    return {"site": row.site, "company_id": row.company_id, "public_key": row.public_key,
            "client_id": row.client_id, "codebase": row.codebase, "verify_tls": row.verify_tls,
            "private_key": row.private_key_enc}


def save(session: Session, *, site: str, company_id: str, public_key: str,
         private_key: str | None, client_id: str, verify_tls: bool, by: User) -> CwConnection:
    """Look the company up on the site, then store the settings (the private key sealed).

    A blank private key keeps the stored one, so the form never needs to show it.
    """
    site = site.strip().rstrip("/")
    company_id = company_id.strip()
    row = current(session)
    if not private_key and (row is None or not row.private_key_enc):
        raise SetupError("Enter the private key.", field="private_key")
    info = lookup(site, company_id, verify_tls)
    before = _public(row)
    if row is None:
        row = CwConnection(id=1, site=site, company_id=company_id, public_key="", client_id="")
        session.add(row)
    row.site = site
    row.company_id = company_id
    row.public_key = public_key.strip()
    row.client_id = client_id.strip()
    row.verify_tls = verify_tls
    row.codebase = info.codebase
    row.company_name = info.company_name
    row.version_code = info.version_code
    row.is_cloud = info.is_cloud
    if private_key:
        row.private_key_enc = seal(private_key.strip())
        row.private_key_set_at = utcnow()
        row.private_key_set_by = by.email
    row.last_test_ok = None
    row.last_test_message = None
    session.flush()
    audit.record(session, "connection.cw.update", target_type="cw_connection", target_id=1,
                 before=before, after=_public(row))
    return row


def lookup(site: str, company_id: str, verify_tls: bool = True) -> cw.CompanyInfo:
    try:
        return cw.company_info(new_session(), site, company_id, verify=verify_tls)
    except errors.IntegrationError as exc:
        raise SetupError(exc.message, field="company_id" if "company id" in exc.message
                         else "site", hint=exc.hint) from None


def client(row: CwConnection, timeout: float | None = None) -> cw.ConnectWiseClient:
    """A client for the stored member; decrypts the key only for this call. Its calls
    share the installation-wide limit of calls in flight (SPEC 6.6)."""
    return cw.ConnectWiseClient(
        new_session(cw.api_url(row.site)), site=row.site, company_id=row.company_id,
        public_key=row.public_key, private_key=unseal(row.private_key_enc or ""),
        client_id=row.client_id, codebase=row.codebase, api_version=row.api_version or None,
        timeout=timeout or row.timeout_seconds, verify=row.verify_tls, pace=_semaphore())


def _semaphore() -> Any:
    """The shared semaphore of ConnectWise calls in flight, or none without Redis."""
    from flask import current_app

    from portal import jobs
    from portal.services.batching.pacing import Semaphore

    try:
        redis = jobs.get_redis()
    except Exception:  # noqa: BLE001 - setup pages still work without Redis
        return None
    return Semaphore(redis, "portal:cw-inflight", current_app.config["CW_MAX_CONCURRENT"])


def test(session: Session, row: CwConnection) -> TestResult:
    """Call /system/info (5 s) and record the outcome; the caller commits."""
    now = utcnow()
    try:
        info = client(row).system_info(timeout=5)
    except errors.NotFound as exc:
        result = TestResult(False, "ConnectWise answered 'not found'. On cloud this usually "
                                   "means wrong keys or company id." if row.is_cloud else
                            f"ConnectWise answered 'not found': {exc.message}",
                            "Check the company id, both keys and the site.")
    except errors.IntegrationError as exc:
        message = exc.message
        if isinstance(exc, errors.Forbidden):
            message = "The API member may not read system information."
        result = TestResult(False, message, exc.hint)
    else:
        kind = "cloud" if info.is_cloud else "on-premise"
        result = TestResult(True, f"Connected to {row.company_name} on ConnectWise "
                                  f"{info.version} ({kind}), server time zone "
                                  f"{info.server_time_zone or 'unknown'}.")
        row.last_success_at = now
        row.server_time_zone = info.server_time_zone
    row.last_test_at = now
    row.last_test_ok = result.ok
    row.last_test_message = result.message[:500]
    audit.record(session, "connection.cw.test", target_type="cw_connection", target_id=1,
                 after={"ok": result.ok, "message": result.message},
                 result="ok" if result.ok else "error")
    return result


def probe(session: Session, row: CwConnection, by: User) -> PermissionProbe:
    """Run the permissions probe and store its result; the caller commits."""
    record = PermissionProbe(ran_by=by.email, results=[])
    try:
        results = client(row, timeout=10).probe()
    except errors.IntegrationError as exc:
        record.error = exc.message
        record.missing = 0
        record.unknown = len(cw.PROBES)
    else:
        record.results = [{"module": r.row.module, "function": r.row.function,
                           "levels": r.row.levels, "needed_for": r.row.needed_for,
                           "state": r.state, "detail": r.detail} for r in results]
        record.missing = sum(r.state == "missing" for r in results)
        record.unknown = sum(r.state == "unknown" for r in results)
    session.add(record)
    session.flush()
    audit.record(session, "connection.cw.probe", target=record,
                 after={"missing": record.missing, "unknown": record.unknown,
                        "error": record.error}, result="error" if record.error else "ok")
    return record


def latest_probe(session: Session) -> PermissionProbe | None:
    return session.scalar(sa.select(PermissionProbe).order_by(PermissionProbe.id.desc())
                          .limit(1))


def confirm_system_level(session: Session, row: CwConnection, by: User, confirmed: bool) -> None:
    before = {"system_level_confirmed": row.system_level_confirmed_at is not None}
    row.system_level_confirmed_at = utcnow() if confirmed else None
    row.system_level_confirmed_by = by.email if confirmed else None
    audit.record(session, "connection.cw.system_level", target_type="cw_connection",
                 target_id=1, before=before, after={"system_level_confirmed": confirmed})


def missing_text(probe: PermissionProbe) -> str:
    """The "copy the missing permissions" block."""
    lines = [f"{r['module']} > {r['function']}: {r['levels']}" for r in probe.results
             if r["state"] != "granted"]
    return "\n".join(lines)
