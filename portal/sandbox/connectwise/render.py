"""Serialise stored records as ConnectWise does: nulls dropped, `_info` hrefs on the caller's base URL."""

from __future__ import annotations

from typing import Any

BASE = "{base}"


def render(value: Any, base: str) -> Any:
    """Copy a stored record for the wire.

    Drops None values and internal keys (a leading underscore, except `_info`), and turns the
    `{base}` placeholder of stored hrefs into the request's own `…/apis/3.0/` URL (CW-REF §24.6).
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None or (key.startswith("_") and key != "_info"):
                continue
            if key == "_info" and isinstance(item, dict):
                out[key] = {k: (v.replace(BASE, base, 1) if isinstance(v, str) else v)
                            for k, v in item.items() if v is not None}
                continue
            out[key] = render(item, base)
        return out
    if isinstance(value, list):
        return [render(item, base) for item in value]
    return value


def pick_fields(record: dict[str, Any], fields: list[list[str]]) -> dict[str, Any]:
    """The partial object `fields=id,company/name` asks for (keys matched case-insensitively)."""
    out: dict[str, Any] = {}
    for path in fields:
        _copy_path(record, out, path)
    return out


def _copy_path(src: Any, dst: dict[str, Any], path: list[str]) -> None:
    if not isinstance(src, dict) or not path:
        return
    key = next((k for k in src if k.lower() == path[0].lower()), None)
    if key is None:
        return
    if len(path) == 1 or not isinstance(src[key], (dict, list)):
        dst[key] = src[key]
        return
    if isinstance(src[key], list):
        items = dst.setdefault(key, [{} for _ in src[key]])
        for s_item, d_item in zip(src[key], items):
            _copy_path(s_item, d_item, path[1:])
        return
    _copy_path(src[key], dst.setdefault(key, {}), path[1:])
