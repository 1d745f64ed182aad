"""Exact, case-sensitive matching, and the near-miss diagnosis shown beside each failure.

Pure functions: no database, no clock. A near-miss never resolves on its own; it only
explains why an exact match failed (SPEC 5.1).
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass

_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'",
           "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'}
_DASHES = {"\u2013": "-", "\u2014": "-", "\u2011": "-"}
_SPACES = {"\u00a0": " ", "\t": " ", "\n": " ", "\r": " "}
_TRANSLATE = str.maketrans({**_QUOTES, **_DASHES, **_SPACES})
CURLY = set(_QUOTES) | set(_DASHES)


def normalise(value: str) -> str:
    """N(x): NFKC, straight quotes and dashes, single spaces, stripped, casefolded."""
    text = unicodedata.normalize("NFKC", value).translate(_TRANSLATE)
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Difference:
    """One differing span between the ConnectWise and the QuickBooks spelling."""

    position: int
    cw: str
    qbo: str
    kind: str  # case, whitespace, quote, dash, other

    def describe(self) -> str:
        def show(text: str) -> str:
            if not text:
                return "(nothing)"
            return " ".join(f"'{c}' U+{ord(c):04X}" for c in text)

        return f"pos {self.position + 1}: {show(self.cw)} ≠ {show(self.qbo)} ({self.kind})"


def _kind(a: str, b: str) -> str:
    joined = a + b
    if joined and all(c.isspace() for c in joined):
        return "whitespace"
    if a.casefold() == b.casefold() and a != b:
        return "case"
    if any(c in _QUOTES or c in "'\"" for c in joined) and \
            a.translate(_TRANSLATE) == b.translate(_TRANSLATE):
        return "quote"
    if any(c in _DASHES or c == "-" for c in joined) and \
            a.translate(_TRANSLATE) == b.translate(_TRANSLATE):
        return "dash"
    return "other"


def differences(cw: str, qbo: str) -> list[Difference]:
    """Each differing span of the raw strings (difflib), classified."""
    matcher = difflib.SequenceMatcher(a=cw, b=qbo, autojunk=False)
    spans = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        spans.append(Difference(a0, cw[a0:a1], qbo[b0:b1], _kind(cw[a0:a1], qbo[b0:b1])))
    return spans


def name_problems(name: str, limit: int, what: str) -> list[str]:
    """Why a name portal would create is unsafe in QuickBooks (SPEC 5.1)."""
    problems = []
    for position, char in enumerate(name):
        if char in CURLY:
            kind = "curly quote" if char in _QUOTES else "dash"
            problems.append(f"{what} '{name}' has a {kind} (U+{ord(char):04X}) at position "
                            f"{position + 1}; QuickBooks lookups fail on it. Use a straight "
                            f"{'quote' if char in _QUOTES else 'hyphen'} in ConnectWise.")
            break
    if name != name.strip():
        problems.append(f"{what} '{name}' starts or ends with a space; remove it in ConnectWise.")
    if len(name) > limit:
        problems.append(f"{what} '{name[:40]}…' is {len(name)} characters; QuickBooks allows "
                        f"{limit}.")
    return problems
