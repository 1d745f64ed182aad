"""The `sim.cw_*` switches: the [uncertain] behaviours of SPEC §17.3, with their defaults."""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "cw_cloud_mode": True,                  # bad credentials answer 404 instead of 401
    "cw_require_client_id": True,           # refuse a missing or unknown clientId
    "cw_client_id_status": 401,             # [uncertain] status of that refusal
    "cw_permission_before_validation": True,  # 403 before 400/404 on write probes
    "cw_single_payment_per_invoice": True,  # one cash payment per invoice
    "cw_credit_via_credit_ref": True,       # credits are payments with a `credit` reference
    # includedInvoiceIds: both (CW-REF §11: accept either kind), or invoice_id|unposted_id
    "cw_export_invoice_id_kind": "both",
    "cw_approved_statuses": ["ApprovedByTierOne", "ApprovedByTierTwo", "ReadyToBill", "Billed",
                             "BilledAgreement"],
    "cw_retry_after_seconds": 1,            # Retry-After on injected 429s
    "cw_max_page_size": 1000,
    "cw_timeout_hang_seconds": 60,          # how long a `timeout` fault hangs
}


def name_of(raw: str) -> str:
    """`sim.cw_cloud_mode` and `cw_cloud_mode` are the same switch."""
    return raw[4:] if raw.startswith("sim.") else raw


def parse_value(text: str) -> Any:
    """Values from `--switch name=value`: JSON when it parses (true, 5, [..]), else the string."""
    import json
    try:
        return json.loads(text)
    except ValueError:
        return text


def merged(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults with `overrides` applied; unknown names are an error, to catch typos."""
    out = dict(DEFAULTS)
    for raw, value in (overrides or {}).items():
        name = name_of(str(raw))
        if name not in DEFAULTS:
            raise ValueError(f"unknown switch {raw!r}; known: {', '.join(sorted(DEFAULTS))}")
        out[name] = value
    return out
