"""Amounts per locale (Babel): grouping, decimals, currency, and the sign of credit memos."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.formatting import DEFAULT_LOCALE, compact_money, money, negotiate, parse_locale

NNBSP = "\u202f"  # CLDR's narrow no-break space, French grouping
NBSP = "\xa0"


@pytest.mark.parametrize(("locale", "expected"), [
    ("en_US", "$1,234,567.50"),
    ("en_GB", "US$1,234,567.50"),
    ("de_DE", f"1.234.567,50{NBSP}$"),
    ("fr_CA", f"1{NBSP}234{NBSP}567,50{NBSP}${NBSP}US"),
    ("en_IN", "$12,34,567.50"),
])
def test_amounts_are_grouped_with_two_decimals_per_locale(locale, expected):
    assert money(Decimal("1234567.5"), "USD", locale).replace(NNBSP, NBSP) == expected


def test_negative_amounts_keep_their_sign():
    assert money(Decimal("-400"), "USD", "en_US") == "-$400.00"
    assert money("-400.00", "EUR", "de_DE") == f"-400,00{NBSP}€"
    assert money(Decimal("-1234.5"), None, "en_US") == "-1,234.50"
    assert "(" not in money(Decimal("-1"), "USD", "en_US")  # not accounting parentheses


def test_without_a_currency_the_number_is_still_grouped():
    assert money("1234.5", None, "en_US") == "1,234.50"
    assert money(Decimal("1234.5"), "", "de_DE") == "1.234,50"
    assert money(0, None, "en_US") == "0.00"


def test_half_cents_round_half_up_and_codes_are_normalised():
    assert money("0.125", "usd", "en_US") == "$0.13"
    assert money("10", "cad", "en_US") == "CA$10.00"


def test_missing_and_malformed_values_never_fail_a_page():
    assert money(None, "USD", "en_US") == ""
    assert money("", "USD", "en_US") == ""
    assert money("n/a", "USD", "en_US") == "n/a"


def test_compact_labels_for_chart_axes():
    assert compact_money(12345, "USD", "en_US") == "$12K"
    assert compact_money(-500, "USD", "en_US") == "-$500"
    assert compact_money(1500, None, "en_US") == "1,500"


def test_locale_setting_wins_then_accept_language_then_en_us():
    assert str(negotiate("de_CH", ["fr-FR", "en"])) == "de_CH"
    assert str(negotiate(None, ["fr-CA", "en;q=0.5"])) == "fr_CA"
    assert str(negotiate(None, ["*", "xx-YY", "de"])) == "de"
    assert str(negotiate(None, [])) == DEFAULT_LOCALE


def test_a_bad_locale_is_named_with_examples():
    with pytest.raises(ValueError, match="'klingon' is not a locale Babel knows; use a code"):
        parse_locale("klingon")
