"""A minimal, valid PDF of an invoice, written by hand (one page, Helvetica, correct xref)."""

from __future__ import annotations

from typing import Any


def _escape(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


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
    """Assemble the five objects and the cross-reference table with exact byte offsets."""
    content = ["BT", "/F1 11 Tf", "14 TL", "50 790 Td"]
    for index, line in enumerate(text_lines):
        content.append(f"({_escape(line)}) {'Tj' if index == 0 else chr(39)}")
    content.append("ET")
    stream = "\n".join(content).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
