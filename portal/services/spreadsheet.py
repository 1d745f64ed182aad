"""CSV that spreadsheets read right: numbers stay numbers, text never runs as a formula.

Every CSV download goes through `stream`: one line at a time from a generator, so a
100,000-row export costs what one row costs. Numbers (amounts, counts, ids) are written
plain (`-400.00`, dot decimal, no grouping) so a spreadsheet reads them as numbers,
credit memos included; the formula-injection guard (SPEC 13.2) applies to text cells only,
where a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'` prefix (OWASP's
CSV injection advice). A byte order mark on request lets Excel see UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """One value as a CSV cell: numbers as numbers, dates in ISO form, text guarded."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never 1E+2
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def stream(header: list[str], rows: Iterable[Iterable[Any]], *, bom: bool = False
           ) -> Iterator[str]:
    """CSV text, one line per step; the header first (after the BOM when asked)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield (BOM if bom else "") + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell(v) for v in row])
        yield buffer.getvalue()
