"""Near-miss diagnosis: what differs, where, and of which kind."""

from __future__ import annotations

import pytest

from portal.services.matching import differences, name_problems, normalise


@pytest.mark.parametrize(("cw", "qbo"), [
    ("Acme Corp", "ACME Corp"), ("O'Neil Dental", "O’Neil Dental"),
    ("Blue Harbor Law", "Blue  Harbor Law"), ("Summit Partners", "Summit Partners "),
    ("Smith-Jones", "Smith–Jones"), ("Café", "Cafe\u0301"), ("A\u00a0B", "A B"),
])
def test_near_misses_normalise_equal(cw, qbo):
    assert cw != qbo and normalise(cw) == normalise(qbo)


def test_different_names_stay_different():
    assert normalise("Acme Corp") != normalise("Acme Corporation")


def test_differences_are_located_and_classified():
    assert [d.describe() for d in differences("Acme Corp", "ACme Corp")] == [
        "pos 2: 'c' U+0063 ≠ 'C' U+0043 (case)"]
    [quote] = differences("O'Neil Dental", "O’Neil Dental")
    assert (quote.position, quote.kind) == (1, "quote")
    [space] = differences("Summit Partners", "Summit Partners ")
    assert space.kind == "whitespace" and space.describe().endswith(
        "(nothing) ≠ ' ' U+0020 (whitespace)")
    [dash] = differences("Smith-Jones", "Smith–Jones")
    assert dash.kind == "dash"


def test_names_to_create_are_checked():
    assert name_problems("O’Neil Dental", 500, "Customer name") == [
        "Customer name 'O’Neil Dental' has a curly quote (U+2019) at position 2; QuickBooks "
        "lookups fail on it. Use a straight quote in ConnectWise."]
    assert "starts or ends with a space" in name_problems(" Acme", 500, "Customer name")[0]
    assert "QuickBooks allows 31" in name_problems("x" * 40, 31, "Term")[0]
    assert name_problems("Acme Corp (ACME)", 500, "Customer name") == []
