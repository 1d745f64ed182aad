"""A minimal, valid PDF of an invoice, written by hand (one page, Helvetica, correct xref)."""

from __future__ import annotations

from typing import Any

from portal.sandbox.common import text_pdf


def document_lines(entity: str, obj: dict[str, Any], company: dict[str, Any]) -> list[str]:
    """The text shown on the page: company, document number, customer, lines, totals."""
    lines = [company.get("CompanyName", "QuickBooks sandbox"),
             f"{entity} {obj.get('DocNumber') or obj.get('Id')}",
             f"Date: {obj.get('TxnDate', '')}   Due: {obj.get('DueDate', '')}",
             f"Bill to: {(obj.get('CustomerRef') or {}).get('name', '')}", ""]
    for line in obj.get("Line") or []:
        if line.get("DetailType") == "SubTotalLineDetail":
            lines.append(f"Subtotal: {float(line.get('Amount', 0)):.2f}")
            continue
        description = line.get("Description") or \
            ((line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}).get("name", "")
        lines.append(f"{description[:60]}  {float(line.get('Amount', 0) or 0):.2f}")
    tax_total = (obj.get("TxnTaxDetail") or {}).get("TotalTax", 0) or 0
    lines += ["", f"Tax: {float(tax_total):.2f}", f"Total: {float(obj.get('TotalAmt', 0) or 0):.2f}",
              f"Balance due: {float(obj.get('Balance', 0) or 0):.2f}"]
    return lines


def render_pdf(text_lines: list[str]) -> bytes:
    """The page itself, from the writer both simulators share."""
    return text_pdf(text_lines)
