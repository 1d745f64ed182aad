"""The printed invoice: a one-page PDF of its text (the shared hand-written writer)."""

from __future__ import annotations

from portal.sandbox.common import text_pdf


def invoice_pdf(lines: list[str]) -> bytes:
    """A valid single-page PDF with the given text lines."""
    return text_pdf(lines)
