"""Amounts as finance people read them: grouped, signed and with their currency, per locale.

Babel (CLDR data) does the formatting, so 1234.5 USD reads `$1,234.50` in en_US,
`1.234,50 $` in de_DE and `1 234,50 $ US` in fr_CA, and a credit memo keeps its minus
sign (`-$400.00`), never the accounting parentheses a glance can miss. The locale is
`PORTAL_LOCALE` when set (one convention for every viewer), else the browser's
Accept-Language (each person sees what their own spreadsheet shows), else en_US.
Templates use one filter, `money`, for every amount they show.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_compact_currency, parse_pattern
from flask import Flask, current_app, g, has_request_context, request

DEFAULT_LOCALE = "en_US"
CENTS = Decimal("0.01")


def parse_locale(text: str) -> Locale:
    """`de_CH`, `de-CH` or `de` -> a Babel Locale; ValueError names what is wrong."""
    cleaned = (text or "").strip().replace("-", "_")
    try:
        return Locale.parse(cleaned)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"{text!r} is not a locale Babel knows; use a code such as "
                         "en_US, en_GB, de_DE or fr_CA.") from None


def negotiate(setting: str | None, accepted: list[str]) -> Locale:
    """The configured locale, else the first accepted language Babel knows, else en_US.

    `accepted` is the Accept-Language list, best first. A setting wins so that an office
    can agree on one convention whatever each browser says.
    """
    if setting:
        return parse_locale(setting)
    for language in accepted:
        if language and language != "*":
            try:
                return parse_locale(language)
            except ValueError:
                continue
    return Locale.parse(DEFAULT_LOCALE)


def current_locale() -> Locale:
    """The locale for this request (computed once per request), or the default."""
    setting = current_app.config.get("LOCALE") if current_app else None
    if not has_request_context():
        return negotiate(setting, [])
    if "portal_locale" not in g:
        g.portal_locale = negotiate(setting, list(request.accept_languages.values()))
    return g.portal_locale  # type: ignore[no-any-return]


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _apply(number: Decimal, currency: str | None, locale: Locale | str | None,
           digits: int) -> str:
    """The locale's own pattern (currency or decimal), with `digits` decimals."""
    loc = Locale.parse(locale or current_locale())
    source = loc.currency_formats["standard"] if currency else loc.decimal_formats[None]
    pattern = parse_pattern(source.pattern)
    pattern.frac_prec = (digits, digits)
    return pattern.apply(number, loc, currency=currency, currency_digits=False)


def money(value: Any, currency: str | None = None, locale: Locale | str | None = None
          ) -> str:
    """An amount with two decimals, grouped, signed, and with its currency when known.

    None gives "" so a template can show an empty cell; a value that is not a number is
    shown as it is rather than failing the page.
    """
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    code = (currency or "").strip().upper() or None
    return _apply(number.quantize(CENTS, ROUND_HALF_UP), code, locale, 2)  # SPEC 0


def compact_money(value: Any, currency: str | None = None,
                  locale: Locale | str | None = None) -> str:
    """A short label for a chart axis (`$12K`); the exact amount is in the tooltip."""
    number = _decimal(value) or Decimal(0)
    code = (currency or "").strip().upper() or None
    loc = Locale.parse(locale or current_locale())
    if abs(number) < 1000 or code is None:
        return _apply(number.quantize(Decimal(1), ROUND_HALF_UP), code, loc, 0)
    return format_compact_currency(number, code, locale=loc)


def init_app(app: Flask) -> None:
    """Register the filters every template uses for amounts."""
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["compact_money"] = compact_money
