"""A "from … to" date filter typed by a person or kept in a URL, read with its mistakes.

Screens used to drop a date they could not read, so a filter silently did nothing (or
matched nothing). Here each mistake becomes a message for the field it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class DateRange:
    """The dates that could be read, and a message per field ("from", "to") that could not."""

    date_from: date | None = None
    date_to: date | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def _day(raw: str | None, name: str, errors: dict[str, str]) -> date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = f"‘{text[:40]}’ is not a date: enter it as YYYY-MM-DD, e.g. 2025-03-31."
        return None


def parse(raw_from: str | None, raw_to: str | None) -> DateRange:
    """Read both ends; an end before the start is a mistake of the "to" field."""
    errors: dict[str, str] = {}
    start = _day(raw_from, "from", errors)
    end = _day(raw_to, "to", errors)
    if start and end and end < start:
        errors["to"] = (f"The end date {end.isoformat()} is before the start date "
                        f"{start.isoformat()}: swap them or change one.")
    return DateRange(start, end, errors)
