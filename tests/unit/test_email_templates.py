"""The invoice email templates (SPEC 14.2): only the listed names, strict, sandboxed, and
the HTML part escaped."""

from __future__ import annotations

import pytest

from portal.services import email_templates as t


def _data(**customer: str) -> dict:  # type: ignore[type-arg]
    data = t.sample()
    data["customer"].update(customer)
    return data


def test_the_defaults_render_the_amount_due_date_and_pay_link() -> None:
    rendered = t.render(t.DEFAULT_SUBJECT, t.DEFAULT_BODY, t.sample())
    assert rendered.subject == "Invoice 10042 from Northwind Managed IT"
    assert "1,234.50 USD, due on April 1, 2026" in rendered.text
    assert "You can pay it online: https://connect.intuit.com/" in rendered.text
    assert '<a href="https://connect.intuit.com/portal/app/CommerceNetwork/view/' \
           'scs-v1-sample">' in rendered.html


def test_without_a_pay_link_the_sentence_is_left_out() -> None:
    data = t.sample()
    data["invoice"]["payment_link"] = None
    assert "pay it online" not in t.render(t.DEFAULT_SUBJECT, t.DEFAULT_BODY, data).text


def test_values_are_escaped_in_the_html_part_only() -> None:
    rendered = t.render("For {{ customer.name }}", "Dear {{ customer.name }}",
                        _data(name="<b>Acme</b> & Co"))
    assert rendered.subject == "For <b>Acme</b> & Co"
    assert "Dear <b>Acme</b> & Co" in rendered.text
    assert "Dear &lt;b&gt;Acme&lt;/b&gt; &amp; Co" in rendered.html and "<b>" not in \
        rendered.html


@pytest.mark.parametrize(("subject", "body", "field", "words"), [
    ("{{ invoice.number", "x", "subject_template", "Line 1:"),
    ("x", "{{ invoice.owner }}", "body_template", "Unknown name:"),
    ("x", "{{ secrets }}", "body_template", "'secrets' is undefined"),
    ("x", "{{ range(3) }}", "body_template", "'range' is undefined"),
    ("x", "{{ invoice.total|upper }}", "body_template", "No filter named 'upper'"),
    ("x", "{{ ''.__class__ }}", "body_template", "Not allowed in a template: access"),
    ("x", "{% for x in invoice %}{{ invoice.clear() }}{% endfor %}", "body_template",
     "Not allowed"),
])
def test_errors_name_the_field_and_what_is_wrong(subject: str, body: str, field: str,
                                                 words: str) -> None:
    [problem] = t.problems(subject, body)
    assert problem.field == field and words in problem.message, problem.message


def test_money_and_date_filters() -> None:
    rendered = t.render("x", "{{ invoice.total|money }} {{ invoice.date|date }} "
                             "{{ invoice.date|date('iso') }}", t.sample())
    assert rendered.text.strip() == "1,234.50 March 2, 2026 2026-03-02"
