"""The editable item-type table (SPEC 5.2 "Item type") and currency mapping rows (SPEC 4.7)."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, Company, CurrencyMapping, QboRef
from portal.models.settings import ItemTypeMapping
from portal.models.types import utcnow
from portal.services import company_settings as cs
from portal.services import item_types
from portal.services.batching.builders.invoice import _product_fields
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration

DEFAULTS = {"Inventory Part": "NonInventory",  # inventory_parts_as: track_inventory unknown
            "Non-Inventory Part": "NonInventory", "Other Charge": "Service",
            "Service": "Service"}


@pytest.fixture()
def cached(app, client, connected):  # type: ignore[no-untyped-def]
    """The sandbox company connected and both sides' reference lists fetched."""
    response = client.hx("POST", f"/mappings/refresh?company={connected.id}",
                         token_from="/mappings/")
    assert response.status_code == 202, response.get_data(as_text=True)
    run_jobs(app)
    return connected


def _settings(app, company_id):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return cs.get_settings(session, session.get(Company, company_id))


def _audits(app, prefix):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return [(e.action, e.target_id, e.before, e.after) for e in session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action.like(f"{prefix}%"))
            .order_by(AuditEvent.id))]


def _row_of(page: str, text: str) -> str:
    """The <tr> of the table whose first cell shows `text`."""
    for row in re.findall(r"<tr id=\"[a-z-]+-\d+\">.*?</tr>", page, re.S):
        if f"<code>{text}</code>" in row:
            return row
    raise AssertionError(f"no row for {text}")


def _selected(row: str) -> str:
    match = re.search(r'<option value="([^"]*)" selected>([^<]*)<', row)
    assert match, row
    return f"{match.group(1)}|{match.group(2)}"


def _fee_line(xref: str) -> dict:  # type: ignore[type-arg]
    return {"itemTypeXref": xref, "item": {"id": 9, "identifier": "FEE-1"},
            "accountNumber": "Sales:Hardware", "description": "Setup fee"}


# ---- item types --------------------------------------------------------------------------

def test_item_type_page_lists_the_product_types_with_their_defaults(app, client, cached):
    url = f"/mappings/item-types?company={cached.id}"
    page = client.get(url)
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    body = page.get_data(as_text=True)
    assert "<html" in body and 'id="item-type-table"' in body
    for xref, default in DEFAULTS.items():
        row = _row_of(body, xref)
        label = item_types.LABELS[default]
        assert _selected(row) == f"{default}|{label} (default)", (xref, row)
        assert ">default</span>" in row and "Reset to default" not in row
    assert "Hardware:Laptops:DELL-L5440" in _row_of(body, "Inventory Part")
    fragment = client.hx("GET", url)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text
    assert 'id="item-type-table"' in text and "HX-Request" in fragment.headers["Vary"]
    with session_scope(app) as session:
        views = item_types.rows(session, session.get(Company, cached.id))
    assert {v.type_xref: v.effective for v in views} == DEFAULTS
    assert all(v.known and v.saved is None and v.product_count for v in views)
    # linked from the mappings index and the Inventory settings tab
    assert url in client.get(f"/mappings/?company={cached.id}").get_data(as_text=True)
    inventory = client.get(f"/setup/quickbooks/{cached.id}/settings/inventory")
    assert url in inventory.get_data(as_text=True)


def test_saving_a_row_wins_over_the_default_in_the_builder(app, client, cached):
    before = _settings(app, cached.id)
    assert _product_fields(_fee_line("Other Charge"), before)["Type"] == "Service"
    response = client.hx("POST", f"/mappings/item-types?company={cached.id}",
                         token_from="/mappings/",
                         data={"type_xref": "Other Charge", "qbo_type": "NonInventory"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers.get("HX-Trigger") == "mapping-saved"
    row = _row_of(response.get_data(as_text=True), "Other Charge")
    assert _selected(row) == "NonInventory|Non-inventory" and ">saved</span>" in row
    assert "Reset to default" in row
    with session_scope(app) as session:
        saved = session.scalars(sa.select(ItemTypeMapping)).all()
        assert [(r.company_id, r.type_xref, r.qbo_type) for r in saved] == [
            (cached.id, "Other Charge", "NonInventory")]
    assert _audits(app, "mapping.item_type.") == [
        ("mapping.item_type.set", "Other Charge", None, {"qbo_type": "NonInventory"})]

    settings = _settings(app, cached.id)
    assert settings.item_types == (cs.ItemTypeRow("Other Charge", "NonInventory"),)
    fields = _product_fields(_fee_line("Other Charge"), settings)
    assert fields["Type"] == "NonInventory" and "warning" not in fields
    assert _product_fields(_fee_line("Service"), settings)["Type"] == "Service"
    snapshot = cs.from_json(cs.as_json(settings))
    assert snapshot == settings
    assert _product_fields(_fee_line("Other Charge"), snapshot)["Type"] == "NonInventory"
    # A snapshot taken before the table existed reads as no rows (the defaults).
    old = {k: v for k, v in cs.as_json(settings).items() if k != "item_types"}
    assert cs.from_json(old).item_types == ()

    # Saving again replaces the one row of that Xref.
    client.hx("POST", f"/mappings/item-types?company={cached.id}", token_from="/mappings/",
              data={"type_xref": "Other Charge", "qbo_type": "Inventory"})
    assert _settings(app, cached.id).item_types == (
        cs.ItemTypeRow("Other Charge", "Inventory"),)
    fields = _product_fields(_fee_line("Other Charge"), _settings(app, cached.id))
    assert fields["Type"] == "Inventory" and "inventory_start_date" in fields


@pytest.mark.parametrize(("data", "message"), [
    ({"type_xref": "Other Charge", "qbo_type": "Bundle"},
     "Choose Inventory, NonInventory or Service"),
    ({"type_xref": "Other Charge", "qbo_type": ""}, "Choose Inventory, NonInventory or Service"),
    ({"type_xref": "Hardware Kit", "qbo_type": "Service"},
     "ConnectWise has no product type with Type Xref 'Hardware Kit'"),
    ({"type_xref": "", "qbo_type": "Service"}, "A product type without a Type Xref"),
])
def test_bad_item_type_values_are_refused_without_saving(app, client, cached, data, message):
    response = client.hx("POST", f"/mappings/item-types?company={cached.id}",
                         token_from="/mappings/", data=data)
    assert response.status_code == 422
    body = html.unescape(response.get_data(as_text=True))
    assert message in body and 'id="item-type-table"' in body and "<html" not in body
    assert "HX-Trigger" not in response.headers
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ItemTypeMapping)) == 0
    assert _audits(app, "mapping.item_type.") == []


def test_reset_restores_the_default(app, client, cached):
    url = f"/mappings/item-types?company={cached.id}"
    client.hx("POST", url, token_from="/mappings/",
              data={"type_xref": "Service", "qbo_type": "NonInventory"})
    assert _product_fields(_fee_line("Service"), _settings(app, cached.id))["Type"] == \
        "NonInventory"
    response = client.hx("POST", url, token_from="/mappings/",
                         data={"type_xref": "Service", "reset": "1"})
    assert response.status_code == 200
    row = _row_of(response.get_data(as_text=True), "Service")
    assert _selected(row) == "Service|Service (default)" and "Reset to default" not in row
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ItemTypeMapping)) == 0
    assert [a[0] for a in _audits(app, "mapping.item_type.")] == [
        "mapping.item_type.set", "mapping.item_type.reset"]
    settings = _settings(app, cached.id)
    assert settings.item_types == ()
    assert _product_fields(_fee_line("Service"), settings)["Type"] == "Service"


def test_blank_and_unknown_xrefs_warn_unless_a_row_names_them(app, cached):
    settings = _settings(app, cached.id)
    for xref in ("", "Hardware Kit"):
        fields = _product_fields(_fee_line(xref), settings)
        assert fields["Type"] == "NonInventory"
        assert "blank or unknown; it is created as NonInventory" in fields["warning"]
    assert item_types.resolve("Inventory Part", settings) == ("NonInventory", True)
    inventory = cs.from_json({**cs.as_json(settings), "inventory_parts_as": "Inventory",
                              "item_types": [{"type_xref": "Hardware Kit",
                                              "qbo_type": "Service"}]})
    assert item_types.resolve("Inventory Part", inventory) == ("Inventory", True)
    fields = _product_fields(_fee_line("Hardware Kit"), inventory)
    assert fields["Type"] == "Service" and "warning" not in fields


def test_accountants_may_edit_and_viewers_may_not(app, client, cached, make_user):
    client.post("/auth/logout", headers={"X-CSRFToken": client.csrf_token("/")})
    viewer = make_user("viewer")
    client.login(viewer.email)
    assert client.get(f"/mappings/item-types?company={cached.id}").status_code == 403
    assert client.get(f"/mappings/currencies?company={cached.id}").status_code == 403


# ---- currencies --------------------------------------------------------------------------

def _add_qbo_currency(app, company_id, code, name):  # type: ignore[no-untyped-def]
    """A CompanyCurrency in the cache (the QuickBooks sandbox has multicurrency off)."""
    with session_scope(app) as session:
        session.add(QboRef(company_id=company_id, entity="CompanyCurrency", qbo_id=code,
                           name=name, active=True, extra={"code": code},
                           fetched_at=utcnow()))


def _currency_rows(app):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return [(r.cw_currency, r.qbo_currency) for r in session.scalars(
            sa.select(CurrencyMapping).order_by(CurrencyMapping.cw_currency))]


def test_currency_page_lists_cw_currencies_with_identity_defaults(app, client, cached):
    url = f"/mappings/currencies?company={cached.id}"
    page = client.get(url)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<html" in body and 'id="currency-table"' in body
    assert "these rows only matter once multicurrency is on" in body
    usd, eur = _row_of(body, "USD"), _row_of(body, "EUR")
    assert "Same code (USD)" in usd and "Same code (EUR)" in eur
    assert "has no currency EUR" in eur and "has no currency" not in usd
    assert "USD (home currency)" in usd
    fragment = client.hx("GET", url)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text
    assert 'id="currency-table"' in text and "HX-Request" in fragment.headers["Vary"]
    assert url in client.get(f"/mappings/?company={cached.id}").get_data(as_text=True)
    tab = client.get(f"/setup/quickbooks/{cached.id}/settings/currency")
    assert url in tab.get_data(as_text=True)


def test_currency_rows_are_added_replaced_removed_and_audited(app, client, cached):
    url = f"/mappings/currencies?company={cached.id}"
    added = client.hx("POST", url, token_from="/mappings/",
                      data={"cw_code": "EUR", "qbo_currency": "USD"})
    assert added.status_code == 200, added.get_data(as_text=True)
    assert added.headers.get("HX-Trigger") == "mapping-saved"
    assert _currency_rows(app) == [("EUR", "USD")]
    assert _settings(app, cached.id).currency_for("EUR") == "USD"

    _add_qbo_currency(app, cached.id, "EUR", "Euro")
    replaced = client.hx("POST", url, token_from="/mappings/",
                         data={"cw_code": "EUR", "qbo_currency": "eur"})
    assert replaced.status_code == 200, replaced.get_data(as_text=True)
    assert _currency_rows(app) == [("EUR", "EUR")]  # each CW code at most once
    assert "EUR (Euro)" in replaced.get_data(as_text=True)

    removed = client.hx("POST", url, token_from="/mappings/",
                        data={"cw_code": "EUR", "remove": "1"})
    assert removed.status_code == 200
    assert _currency_rows(app) == []
    assert _settings(app, cached.id).currency_for("EUR") == "EUR"
    assert _audits(app, "mapping.currency.") == [
        ("mapping.currency.set", "EUR", None, {"qbo_currency": "USD"}),
        ("mapping.currency.set", "EUR", {"qbo_currency": "USD"}, {"qbo_currency": "EUR"}),
        ("mapping.currency.remove", "EUR", {"qbo_currency": "EUR"}, None)]


@pytest.mark.parametrize(("data", "message"), [
    ({"cw_code": "EUR", "qbo_currency": "JPY"},
     "QuickBooks company Northwind Managed IT has no currency 'JPY'. Add it in QuickBooks"),
    ({"cw_code": "EUR", "qbo_currency": ""}, "Choose a QuickBooks currency."),
    ({"cw_code": "XYZ", "qbo_currency": "USD"}, "ConnectWise has no currency 'XYZ'"),
])
def test_currency_rows_refuse_unknown_codes(app, client, cached, data, message):
    response = client.hx("POST", f"/mappings/currencies?company={cached.id}",
                         token_from="/mappings/", data=data)
    assert response.status_code == 422
    body = html.unescape(response.get_data(as_text=True))
    assert message in body and 'id="currency-table"' in body
    assert _currency_rows(app) == [] and _audits(app, "mapping.currency.") == []
    with session_scope(app) as session:  # never creates QuickBooks currencies
        assert session.scalar(sa.select(sa.func.count()).select_from(QboRef).where(
            QboRef.entity == "CompanyCurrency")) == 0
