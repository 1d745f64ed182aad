"""Grid sorting through the URL: `sort=total` ascending, `sort=-total` descending.

One small value object serves every sortable grid (selection, review list, mapping
editors), so headers, `aria-sort` and bookmarks behave alike. Unknown keys fall back to
the grid's default order rather than failing the page.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Sort:
    """The order a grid is shown in; `key` "" is the grid's natural order."""

    key: str = ""
    descending: bool = False
    default: str = ""

    @classmethod
    def parse(cls, text: str | None, allowed: Collection[str], default: str = "") -> Sort:
        """`text` from the URL, checked against the grid's sortable keys."""
        wanted = (text or "").strip()
        if wanted.lstrip("-") not in allowed:
            wanted = default
        return cls(wanted.lstrip("-"), wanted.startswith("-"), default)

    @property
    def param(self) -> str:
        """The URL value, or "" for the default order (so default URLs stay short)."""
        value = ("-" if self.descending else "") + self.key
        return "" if value == self.default else value

    def toggle(self, key: str) -> str:
        """The URL value a click on `key`'s header asks for: the other direction when
        the grid is already sorted by it, else ascending."""
        if self.key == key:
            return key if self.descending else f"-{key}"
        return key

    def aria(self, key: str) -> str | None:
        """`aria-sort` for `key`'s header: only the sorted column carries one."""
        if self.key != key:
            return None
        return "descending" if self.descending else "ascending"
