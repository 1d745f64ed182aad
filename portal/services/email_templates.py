"""Invoice email templates (SPEC 14.2): a sandboxed Jinja2 environment that knows only the
names of the specification, refuses any other (StrictUndefined), and escapes every value in
the HTML part. The same code renders the preview, the save check, the test email and the
real mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

NAMES = ("invoice.number", "invoice.date", "invoice.due_date", "invoice.total",
         "invoice.balance", "invoice.currency", "invoice.payment_link", "invoice.po_number",
         "customer.name", "customer.contact_name", "company.name", "company.email",
         "company.phone")
DEFAULT_SUBJECT = "Invoice {{ invoice.number }} from {{ company.name }}"
DEFAULT_BODY = """Dear {{ customer.contact_name or customer.name }},

Please find attached invoice {{ invoice.number }} for {{ invoice.total|money }} {{ invoice.currency }}, due on {{ invoice.due_date|date }}.
{% if invoice.payment_link %}
You can pay it online: {{ invoice.payment_link }}
{% endif %}
Thank you,
{{ company.name }}"""


def _money(value: Any) -> str:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{amount:,.2f}"


def _date(value: Any, style: str = "medium") -> str:
    if isinstance(value, str) and value:
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if not isinstance(value, date):
        return "" if value is None else str(value)
    if style == "iso":
        return value.isoformat()
    return f"{value:%B} {value.day}, {value.year}"


def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=html,
                                        keep_trailing_newline=False)
    env.globals.clear()  # only the names of SPEC 14.2
    env.filters.clear()
    env.filters.update({"money": _money, "date": _date})
    env.tests.clear()
    env.tests.update({"defined": lambda v: True, "none": lambda v: v is None})
    return env


@cache
def environments() -> tuple[ImmutableSandboxedEnvironment, ImmutableSandboxedEnvironment]:
    return _environment(False), _environment(True)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateProblem(ValueError):
    """A template that cannot render: `field` is the setting, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def sample() -> dict[str, Any]:
    """The data the preview, the save check and the test email use."""
    return {"invoice": {"number": "10042", "date": date(2026, 3, 2),
                        "due_date": date(2026, 4, 1), "total": Decimal("1234.50"),
                        "balance": Decimal("1234.50"), "currency": "USD",
                        "payment_link": "https://connect.intuit.com/portal/app/"
                                        "CommerceNetwork/view/scs-v1-sample",
                        "po_number": "PO-7781"},
            "customer": {"name": "Acme Corp", "contact_name": "Jane Doe"},
            "company": {"name": "Northwind Managed IT", "email": "billing@northwind.example",
                        "phone": "555-0100"}}


def _explain(field: str, exc: Exception) -> TemplateProblem:
    if isinstance(exc, TemplateSyntaxError):
        return TemplateProblem(field, f"Line {exc.lineno}: {exc.message}. Check the "
                                      "{{ }} and {% %} pairs.")
    if isinstance(exc, UndefinedError):
        return TemplateProblem(field, f"Unknown name: {exc.message}. Use only "
                                      f"{', '.join(NAMES)}.")
    if isinstance(exc, SecurityError):
        return TemplateProblem(field, f"Not allowed in a template: {str(exc).rstrip('.')}.")
    return TemplateProblem(field, f"The template cannot be rendered: {exc}.")


def _render(field: str, source: str, data: dict[str, Any], html: bool) -> str:
    env = environments()[1 if html else 0]
    try:
        return env.from_string(source).render(data)
    except (TemplateError, TypeError, ValueError, AttributeError) as exc:
        raise _explain(field, exc) from None


URL = re.compile(r"https?://[^\s<>&\"']+")


def _as_html(body: str) -> str:
    """The escaped body as paragraphs, with its links made clickable."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    parts = []
    for paragraph in paragraphs:
        html = "<br>\n".join(paragraph.splitlines())
        html = URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html)
        parts.append(f"<p>{html}</p>")
    return "\n".join(parts)


def render(subject: str, body: str, data: dict[str, Any]) -> Rendered:
    """Subject and text with plain values, and the HTML part with every value escaped."""
    rendered_subject = " ".join(_render("subject_template", subject, data, False).split())
    text = _render("body_template", body, data, False).strip() + "\n"
    html_body = _render("body_template", body, data, True)
    html = Markup(_as_html(str(html_body)))
    return Rendered(rendered_subject, text, str(html))


def problems(subject: str, body: str) -> list[TemplateProblem]:
    """Every error of both templates, rendered with the sample data (the save check)."""
    found = []
    for field, source in (("subject_template", subject), ("body_template", body)):
        for html in (False, True):
            try:
                _render(field, source, sample(), html)
            except TemplateProblem as problem:
                found.append(problem)
                break
    return found
