"""Empty values on writes: QuickBooks reads "" or null in a date, number, flag, enumeration
or reference as "not sent", and fills such a field as it does when the field is left out
(TxnDate today in the company's time, DueDate from the term, flags their defaults). Text
fields keep an empty string. A date that is neither empty nor a date is still refused (2060).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from . import faults
from .field_kinds import FIELD_KINDS
from .util import parse_date

BLANK_KINDS = ("date", "datetime", "number", "boolean", "enum")


@lru_cache(maxsize=None)
def _paths(entity: str, kinds: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(path.split(".")) for path, kind in FIELD_KINDS.get(entity, {}).items()
                 if kind in kinds)


def _nodes(node: Any, parts: tuple[str, ...]) -> list[tuple[dict[str, Any], str]]:
    """The (object, key) pairs a dotted path reaches, through objects and lists."""
    if isinstance(node, list):
        return [pair for item in node for pair in _nodes(item, parts)]
    if not isinstance(node, dict):
        return []
    if len(parts) == 1:
        return [(node, parts[0])] if parts[0] in node else []
    return _nodes(node.get(parts[0]), parts[1:])


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _blank_ref(value: Any) -> bool:
    return _blank(value) or (isinstance(value, dict) and _blank(value.get("value")))


def _drop_blank_refs(node: Any) -> None:
    """`XxxRef: ""`, null or `{"value": ""}` anywhere in the body is a reference not sent."""
    if isinstance(node, list):
        for item in node:
            _drop_blank_refs(item)
    elif isinstance(node, dict):
        for key in [k for k, v in node.items() if k.endswith("Ref") and _blank_ref(v)]:
            del node[key]
        for value in node.values():
            if isinstance(value, (dict, list)):
                _drop_blank_refs(value)


def drop_blanks(entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """Remove, in place, the empty fields QuickBooks treats as absent; returns `body`."""
    for parts in _paths(entity, BLANK_KINDS):
        for node, key in _nodes(body, parts):
            if _blank(node[key]):
                del node[key]
    _drop_blank_refs(body)
    return body


def check_dates(entity: str, obj: dict[str, Any]) -> None:
    """2060 for a date field holding something that is not a date (empty ones are gone)."""
    for parts in _paths(entity, ("date",)):
        for node, key in _nodes(obj, parts):
            if parse_date(node[key]) is None:
                raise faults.ApiFault("2060", "Invalid Date Format",
                                      f"Invalid Date Format : {node[key]}", key)
