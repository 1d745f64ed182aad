"""The `sim.*` switches of the QuickBooks sandbox: defaults, and parsing of CLI/JSON values."""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    # requestid idempotency (README §9)
    "sim.qbo_requestid_window_seconds": 86400,
    "sim.qbo_requestid_broken": False,
    # throttling (README §11)
    "sim.qbo_retry_after_header": False,
    "sim.qbo_throttle_body": "fault",          # "fault" (examples/fault_429_throttle.json) or "gateway"
    "sim.qbo_rate_per_minute": 500,
    "sim.qbo_rate_per_second": 0,              # sandbox's 10/s per realm+app since 2025; 0 = off
    "sim.qbo_max_concurrent": 10,
    "sim.qbo_batch_per_minute": 40,
    "sim.qbo_batch_per_minute_realm": 120,
    # OAuth (README §12)
    "sim.qbo_refresh_rotation": "daily",       # "daily" or "every"
    "sim.qbo_old_refresh_token_grace_seconds": 0,
    "sim.qbo_access_token_seconds": 3600,
    "sim.qbo_refresh_token_seconds": 8726400,
    "sim.qbo_refresh_token_hard_seconds": 157680000,
    # observed quirks (README §5)
    "sim.qbo_void_bill_http200_fault": True,
    "sim.qbo_void_purchase_unsupported": True,
    "sim.qbo_void_journalentry_noop": True,
    "sim.qbo_void_creditmemo_supported": False,  # [unverified] in the guide
    "sim.qbo_je_unbalanced_code": "6000",      # "6000" or "2300" (error-codes.md)
    # data conventions
    "sim.qbo_trims_names": True,
    "sim.qbo_us_manual_honours_total_tax": True,   # SPEC 7.4 [uncertain]
    "sim.qbo_nonus_honours_tax_lines": True,       # SPEC 7.4 [uncertain]
    "sim.qbo_query_case_sensitive": False,
    "sim.qbo_query_rejects_curly_quotes": True,  # [observed] lexical error on ’ “ – in literals
    "sim.qbo_query_active_only": True,
    "sim.qbo_query_total_count": False,
    "sim.qbo_address_latlong": True,
    "sim.qbo_account_deleted_suffix": True,
    "sim.qbo_email_daily_limit": 0,            # sandbox real limit is 40; 0 = unlimited
    "sim.qbo_invoice_link": True,              # SPEC 14.1 [uncertain]: include=invoiceLink answers
    # webhooks (README §17)
    "sim.qbo_webhook_format": "cloudevents",   # "cloudevents" or "legacy"
    "sim.qbo_webhook_entities": "Invoice,Payment",
    "sim.qbo_webhook_delay_seconds": 0.05,
    # persistence
    "sim.qbo_save_debounce_seconds": 0.5,
}


def coerce(name: str, value: Any) -> Any:
    """Turn a CLI/JSON value into the type of the switch's default; unknown names are refused."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown switch {name!r}")
    default = DEFAULTS[name]
    if isinstance(default, bool):
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{name} takes true or false")
        return bool(value)
    if isinstance(default, int):
        return int(float(value))
    if isinstance(default, float):
        return float(value)
    return str(value)


def merged(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by the given switches (validated)."""
    values = dict(DEFAULTS)
    for name, value in (overrides or {}).items():
        values[name] = coerce(name, value)
    return values


def parse_assignment(text: str) -> tuple[str, Any]:
    """`name=value` from the command line."""
    if "=" not in text:
        raise ValueError(f"expected name=value, got {text!r}")
    name, value = text.split("=", 1)
    name = name.strip()
    if not name.startswith("sim."):
        name = "sim." + name
    return name, coerce(name, value.strip())
