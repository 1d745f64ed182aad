"""Small helpers shared by the QuickBooks sandbox modules: times, money, ids, copies."""

from __future__ import annotations

import copy
import json
import secrets
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

try:
    COMPANY_TZ: Any = ZoneInfo("America/Los_Angeles")
except Exception:  # pragma: no cover - no tz database on this machine
    COMPANY_TZ = timezone(timedelta(hours=-8))


def local_dt(epoch: float) -> datetime:
    """Sandbox companies live in Pacific time, like Intuit's own sample companies."""
    return datetime.fromtimestamp(epoch, tz=COMPANY_TZ)


def _offset(dt: datetime) -> str:
    text = dt.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def meta_time(epoch: float) -> str:
    """MetaData timestamps: seconds precision with offset, e.g. 2015-07-24T10:35:08-07:00."""
    dt = local_dt(epoch)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + _offset(dt)


def response_time(epoch: float) -> str:
    """The envelope `time`: milliseconds with offset, e.g. 2015-07-24T10:33:39.110-07:00."""
    dt = local_dt(epoch)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}" + _offset(dt)


def utc_millis(epoch: float) -> str:
    """Webhook `lastUpdated` style: UTC with milliseconds and a Z."""
    dt = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def utc_nanos(epoch: float) -> str:
    """CloudEvents `time`: UTC with nine fractional digits, as Intuit sends it."""
    dt = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def local_date(epoch: float) -> str:
    """Today's date in the company's time zone (default TxnDate)."""
    return local_dt(epoch).date().isoformat()


def parse_date(text: str) -> date | None:
    """A date from YYYY-MM-DD (or the date part of a timestamp)."""
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds of an ISO date or datetime; a bare date means midnight company time."""
    raw = str(text).strip()
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=COMPANY_TZ)
    return dt.timestamp()


def money(value: Any) -> float:
    """Round to cents the way QBO reports amounts (a JSON number)."""
    try:
        return round(float(value) + 0.0, 2)
    except (TypeError, ValueError):
        return 0.0


def number(value: Any) -> float | None:
    """A float, or None for anything that is not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def deep(obj: Any) -> Any:
    """An independent copy, so stored objects never share structure with answers."""
    return copy.deepcopy(obj)


def fast_copy(obj: Any) -> Any:
    """JSON round-trip copy (faster than deepcopy for plain JSON data)."""
    return json.loads(json.dumps(obj))


def token(prefix: str = "", nbytes: int = 24) -> str:
    """A random URL-safe token."""
    return prefix + secrets.token_urlsafe(nbytes)


def is_true(value: Any) -> bool:
    """Loose boolean parsing for CLI and query-string values."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
