"""QuickBooks setup tabs: pages and fragments, valid and invalid saves, versions, audit,
cross-field rules, reference-cache dropdowns, AST hiding and who may edit."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import (AuditEvent, Company, CompanyStatus, CwConnection, CwRef, QboRef,
                           SettingsVersion, StoredSettings, TaxCodeMapping)
from portal.models.settings import ImmutableRowError
from portal.services import company_settings as cs

pytestmark = pytest.mark.integration

TABS = [t.slug for t in cs.TABS]


def _add_company(app, **facts: Any) -> int:  # type: ignore[no-untyped-def]
    """A connected company: its settings row and version 1 are stored as a connect does."""
    values = {"realm_id": "9130350", "qbo_name": "Acme Services LLC", "country": "US",
              "is_us": True, "is_default": True, **facts}
    with session_scope(app) as session:
        company = Company(**values)
        session.add(company)
        session.flush()
        cs.ensure_settings(session, company)
        return company.id


@pytest.fixture()
def company(app) -> int:  # type: ignore[no-untyped-def]
    return _add_company(app)


@pytest.fixture()
def refs(app, company):  # type: ignore[no-untyped-def]
    """A few cached QuickBooks accounts and tax codes of the company."""
    rows = [("Account", "81", "Inventory Asset", "Other Current Asset", "1300"),
            ("Account", "82", "Cost of Goods Sold", "Cost of Goods Sold", "5000"),
            ("Account", "83", "Sales Tax Paid", "Expense", "6100"),
            ("TaxCode", "2", "TAX", None, None), ("TaxCode", "3", "NON", None, None)]
    with session_scope(app) as session:
        for entity, qbo_id, name, type_, number in rows:
            session.add(QboRef(company_id=company, entity=entity, qbo_id=qbo_id, name=name,
                               fully_qualified_name=name, type=type_, acct_num=number))
    return rows


def _url(company_id: int, tab: str) -> str:
    return f"/setup/quickbooks/{company_id}/settings/{tab}"


def _current_form(app, company_id: int, tab: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The tab's form as a browser would post it unchanged."""
    with app.app_context(), session_scope(app) as session:
        company = session.get(Company, company_id)
        values = cs.form_values(cs.get_settings(session, company), tab, company)
    data: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            data[name] = ["", "y"] if value else [""]
        elif isinstance(value, list):
            data[name] = ["", *value]
        else:
            data[name] = value
    return data


def _save(client, app, company_id: int, tab: str, **changes: Any):  # type: ignore[no-untyped-def]
    data = {**_current_form(app, company_id, tab), **changes}
    url = _url(company_id, tab)
    return client.hx("POST", url, data=data, token_from=url, current_url=url)


def _stored(app, company_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return dict(session.get(StoredSettings, company_id).values)


def _versions(app, company_id: int) -> list[SettingsVersion]:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return list(session.scalars(sa.select(SettingsVersion).where(
            SettingsVersion.company_id == company_id).order_by(SettingsVersion.number)))


def _audits(app, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def _settings(app, company_id: int) -> cs.CompanySettings:  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        return cs.get_settings(session, session.get(Company, company_id))


# ---- pages and fragments ----------------------------------------------------------------

@pytest.mark.parametrize("tab", TABS)
def test_every_tab_renders_as_page_and_as_fragment(client, login_as, company, tab):
    login_as("admin")
    page = client.get(_url(company, tab))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<html" in body and 'id="settings-tabs"' in body
    assert f'id="tab-{tab}"' in body and 'aria-selected="true"' in body
    assert "HX-Request" in page.headers["Vary"]
    fragment = client.hx("GET", _url(company, tab))
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert "<html" not in text
    assert text.lstrip().startswith('<div id="settings-tabs"')
    assert 'hx-push-url="true"' in text and f'aria-labelledby="tab-{tab}"' in text
    assert "HX-Request" in fragment.headers["Vary"]


@pytest.mark.parametrize("tab", TABS)
def test_every_editable_setting_has_a_labelled_field(client, login_as, company, tab):
    login_as("admin")
    body = client.get(_url(company, tab)).get_data(as_text=True)
    with client.application.app_context(), session_scope(client.application) as session:
        settings = cs.settings_of(tab, session.get(Company, company), editable_only=True)
    for setting in settings:
        assert f'<label for="setting-{setting.name}">' in body, setting.name
        assert f'name="{setting.name}"' in body


def test_the_quickbooks_page_links_each_company_to_its_settings(client, login_as, company):
    login_as("admin")
    body = client.get("/setup/quickbooks").get_data(as_text=True)
    assert f'href="{_url(company, "company")}"' in body


def test_settings_index_opens_the_company_tab(client, login_as, company):
    login_as("admin")
    response = client.get(f"/setup/quickbooks/{company}/settings")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(_url(company, "company"))


def test_unknown_company_or_tab_is_404(client, login_as, company):
    login_as("admin")
    assert client.get(_url(company + 99, "company")).status_code == 404
    assert client.get(_url(company, "bananas")).status_code == 404


# ---- defaults ---------------------------------------------------------------------------

def test_connecting_stores_the_defaults_as_version_1(app, client, login_as, company):
    login_as("admin")
    assert client.get(_url(company, "company")).status_code == 200  # reads only
    (version,) = _versions(app, company)
    assert version.number == 1 and version.author == "system" and version.tab is None
    assert version.values["label"] == "Acme Services LLC"
    assert version.values["total_tolerance"] == "0.01"
    assert version.values["enabled_types"] == ["invoice", "expense", "inventory", "payment"]
    assert version.values["tax_code_mappings"] == []
    assert version.facts["is_us"] is True
    settings = _settings(app, company)
    assert settings.purchase_tax_as_line_item is True
    assert settings.inventory_parts_as == "NonInventory"  # track_inventory unknown: false
    assert settings.time_zone == "UTC"
    assert settings.autosync_interval_minutes == 120
    assert settings.inventory_start_date.isoformat() == "2000-01-01"
    assert settings.tax_difference_tolerance == Decimal("0.02")
    assert settings.is_default is True


def test_company_facts_decide_their_defaults(app):
    with session_scope(app) as session:
        session.add(CwConnection(id=1, site="na.example.test", company_id="acme",
                                 public_key="pk", client_id="c", server_time_zone="America/Chicago"))
    company = _add_company(app, realm_id="42", qbo_name="Maple Ltd", country="CA", is_us=False,
                           is_default=False)
    settings = _settings(app, company)
    assert settings.purchase_tax_as_line_item is False
    assert settings.time_zone == "America/Chicago"
    assert settings.label == "Maple Ltd"


# ---- valid saves ------------------------------------------------------------------------

def test_sales_tab_saves_stores_a_version_and_audits_the_changed_keys(app, client, login_as,
                                                                       company):
    admin = login_as("admin")
    client.get(_url(company, "sales"))
    response = _save(client, app, company, "sales", invoice_export_detail="Detailed",
                     total_tolerance="0.05", payment_sync_overlap_minutes="10",
                     use_cdc=[""])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert 'hx-swap-oob="true"' in body and "Sales settings saved (version 2)." in body
    stored = _stored(app, company)
    assert stored["invoice_export_detail"] == "Detailed"
    assert stored["total_tolerance"] == "0.05"
    assert stored["payment_sync_overlap_minutes"] == 10 and stored["use_cdc"] is False
    versions = _versions(app, company)
    assert [v.number for v in versions] == [1, 2]
    latest = versions[-1]
    assert latest.tab == "sales" and latest.author == admin.email
    assert latest.author_id == admin.id
    assert latest.values["invoice_export_detail"] == "Detailed"
    assert set(latest.values) == {s.name for s in cs.DEFINITIONS}  # every tab's values
    (event,) = _audits(app, "settings.sales.update")
    assert event.company_id == company and event.actor == admin.email
    assert event.before == {"invoice_export_detail": "Default", "total_tolerance": "0.01",
                            "payment_sync_overlap_minutes": 5, "use_cdc": True}
    assert event.after == {"invoice_export_detail": "Detailed", "total_tolerance": "0.05",
                           "payment_sync_overlap_minutes": 10, "use_cdc": False}
    settings = _settings(app, company)
    assert settings.total_tolerance == Decimal("0.05") and settings.use_cdc is False


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_saves_its_current_values(app, client, login_as, company, tab):
    login_as("admin")
    client.get(_url(company, tab))
    response = _save(client, app, company, tab)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [v.number for v in _versions(app, company)] == [1, 2]
    (event,) = _audits(app, f"settings.{tab}.update")
    assert event.before is None and event.after is None  # nothing changed


def test_a_plain_form_post_redirects_with_a_flash(app, client, login_as, company):
    login_as("admin")
    url = _url(company, "contacts")
    data = {**_current_form(app, company, "contacts"), "create_vendors": [""],
            "csrf_token": client.csrf_token(url)}
    response = client.post(url, data=data)
    assert response.status_code == 303 and response.headers["Location"].endswith(url)
    assert "Contacts settings saved" in client.get(url).get_data(as_text=True)
    assert _stored(app, company)["create_vendors"] is False


def test_company_tab_multi_selects_and_text(app, client, login_as, company):
    login_as("admin")
    with session_scope(app) as session:
        session.add_all([CwRef(entity="location", cw_id=2, name="Tampa"),
                         CwRef(entity="location", cw_id=5, name="Boston")])
    page = client.get(_url(company, "company")).get_data(as_text=True)
    assert '<option value="2">Tampa</option>' in page
    response = _save(client, app, company, "company", label="Acme US",
                     default_location_ids=["", "5", "2"], enabled_types=["", "invoice"],
                     time_zone="America/New_York", doc_number_prefix="AC-",
                     reference_cache_max_age_minutes="1440")
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = _stored(app, company)
    assert stored["default_location_ids"] == [5, 2]  # the cache's order (by name)
    assert stored["enabled_types"] == ["invoice"]
    assert stored["label"] == "Acme US" and stored["time_zone"] == "America/New_York"
    assert stored["doc_number_prefix"] == "AC-"
    assert 'id="setting-default_location_ids"' in response.get_data(as_text=True)


def test_qbo_objects_come_from_the_reference_cache(app, client, login_as, company, refs):
    login_as("admin")
    page = client.get(_url(company, "inventory")).get_data(as_text=True)
    assert '<option value="81">1300 Inventory Asset</option>' in page
    assert '<option value="83">' not in page.split('id="setting-inventory_asset_account"')[1] \
        .split("</select>")[0]  # asset dropdown lists asset accounts only
    response = _save(client, app, company, "inventory", inventory_asset_account="81",
                     cogs_account="82")
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = _stored(app, company)
    assert stored["inventory_asset_account"] == "81" and stored["cogs_account"] == "82"
    response = _save(client, app, company, "inventory", cogs_account="")
    assert response.status_code == 200
    assert _stored(app, company)["cogs_account"] is None
    response = _save(client, app, company, "taxes", exempt_tax_code="3")
    assert response.status_code == 200
    assert _settings(app, company).exempt_tax_code == "3"


def test_tax_code_mappings_are_shown_read_only(app, client, login_as, company, refs):
    login_as("admin")
    with session_scope(app) as session:
        session.add(TaxCodeMapping(company_id=company, cw_tax_code="FL", qbo_tax_code_id="2"))
    body = client.get(_url(company, "taxes")).get_data(as_text=True)
    assert "<td>FL</td><td>TAX</td>" in body
    assert _settings(app, company).tax_code_mappings == (cs.TaxCodeRow("FL", "2"),)
    assert 'name="tax_exempt_items"' not in body  # non-US only


@pytest.fixture()
def autosync_ready(app, company):  # type: ignore[no-untyped-def]
    """What SPEC 15.2 asks before AutoSync may be turned on: a green manual invoice batch
    and a mapping check of the backlog with no tax problem."""
    from portal.models import Batch, BatchStatus, BatchType, MappingScan

    with session_scope(app) as session:
        session.add(Batch(type=BatchType.INVOICE, company_id=company, status=BatchStatus.FINISHED,
                          colour="green", trigger="user:1", options={}, counts={}, totals={},
                          preflight=[]))
        session.add(MappingScan(company_id=company, records=0, records_with_errors=0))


def test_every_autosync_type_can_be_switched_on(app, client, login_as, company):
    """Invoices, expenses, inventory and payment sync are all built: no switch is held off,
    and each saves."""
    login_as("admin")
    page = client.get(_url(company, "autosync")).get_data(as_text=True)
    for kind in ("invoices", "expenses", "inventory", "payments"):
        switch = re.search(rf'<input[^>]*id="setting-autosync_{kind}"[^>]*>', page).group(0)
        assert "disabled" not in switch, kind
    assert "not built yet" not in page
    response = _save(client, app, company, "autosync", autosync_expenses=["", "y"],
                     autosync_inventory=["", "y"], autosync_payments=["", "y"])
    assert response.status_code == 200, response.get_data(as_text=True)
    settings = _settings(app, company)
    assert settings.autosync_expenses and settings.autosync_inventory
    assert settings.autosync_payments


def test_turning_autosync_on_fills_the_recipients(app, client, login_as, company, make_user,
                                               autosync_ready):
    admin = login_as("admin")
    accountant = make_user("accountant")
    make_user("viewer")
    response = _save(client, app, company, "autosync", autosync_enabled=["", "y"],
                     autosync_invoices=["", "y"], autosync_interval_minutes="15",
                     autosync_error_extra_emails="ops@example.test\nceo@example.test")
    assert response.status_code == 200, response.get_data(as_text=True)
    settings = _settings(app, company)
    assert settings.autosync_enabled and settings.autosync_interval_minutes == 15
    assert sorted(settings.autosync_error_user_ids) == sorted([admin.id, accountant.id])
    assert settings.autosync_error_extra_emails == ["ops@example.test", "ceo@example.test"]


def test_making_a_company_the_default(app, client, login_as, company):
    login_as("admin")
    other = _add_company(app, realm_id="77", qbo_name="Beta Inc", is_default=False)
    response = _save(client, app, other, "company", is_default=["", "y"])
    assert response.status_code == 200, response.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.get(Company, other).is_default
        assert not session.get(Company, company).is_default
    response = _save(client, app, other, "company", is_default=[""])
    assert response.status_code == 422
    assert "make another company the default instead" in response.get_data(as_text=True)


# ---- invalid saves ----------------------------------------------------------------------

def _assert_nothing_saved(app, company_id: int, before: dict[str, Any], versions: int,
                          tab: str) -> None:
    assert _stored(app, company_id) == before
    assert len(_versions(app, company_id)) == versions
    assert _audits(app, f"settings.{tab}.update") == []


def test_bad_values_get_inline_messages_and_nothing_is_saved(app, client, login_as, company):
    login_as("admin")
    client.get(_url(company, "sales"))
    before = _stored(app, company)
    response = _save(client, app, company, "sales", display_uom=["", "y"],  # valid change
                     payment_sync_overlap_minutes="61", total_tolerance="abc",
                     fallback_item_name="", invoice_export_detail="Everything")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'id="settings-errors"' in body
    assert "Nothing was saved" in body
    for name, message in [("payment_sync_overlap_minutes", "Enter at most 60."),
                          ("total_tolerance", "Enter an amount such as 0.01."),
                          ("fallback_item_name", "Enter a value."),
                          ("invoice_export_detail", "Choose one of Default, Condensed")]:
        assert f'id="setting-{name}-error">{message}' in body, name
        assert f'id="setting-{name}-field"' in body
    assert 'value="61"' in body  # the posted value stays in the field
    _assert_nothing_saved(app, company, before, 1, "sales")


@pytest.mark.parametrize(("tab", "changes", "field", "message"), [
    ("company", {"doc_number_prefix": "INVOICE"}, "doc_number_prefix",
     "Use at most 6 characters (this has 7)."),
    ("company", {"gl_account_match": "Number"}, "gl_account_match",
     "Number needs account numbers turned on in QuickBooks"),
    ("company", {"reference_cache_max_age_minutes": "4"}, "reference_cache_max_age_minutes",
     "Enter at least 5."),
    ("company", {"reference_cache_max_age_minutes": "1441"},
     "reference_cache_max_age_minutes", "Enter at most 1440."),
    ("company", {"time_zone": "Eastern Standard Time"}, "time_zone",
     "Enter an IANA time zone"),
    ("company", {"label": "x" * 61}, "label", "Use at most 60 characters"),
    ("company", {"label": "x" * 5000}, "label", "Use at most 60 characters (this has 5000)."),
    ("sales", {"fallback_item_name": "y" * 5000}, "fallback_item_name",
     "Use at most 100 characters (this has 5000)."),
    ("sales", {"fallback_item_name": "Down Payment – Retainer"}, "fallback_item_name",
     "Replace the curly quote or dash (U+2013) at position 14"),
    ("inventory", {"freight_item_name": "Shipping::Freight"}, "freight_item_name",
     "Write a category as Category:Item"),
    ("inventory", {"freight_item_name": "x" * 101}, "freight_item_name",
     "Use at most 100 characters (this has 101)."),
    ("currency", {"per_currency_customer_suffix": " ({code}):EU"},
     "per_currency_customer_suffix", "Remove the &#39;:&#39; at position 10"),
    ("company", {"enabled_types": ["", "invoice", "payroll"]}, "enabled_types",
     "Choose from the list (payroll is not in it)."),
    ("company", {"default_location_ids": ["", "999"]}, "default_location_ids",
     "Choose from the list"),
    ("categories", {"use_classes": ["", "y"]}, "use_classes",
     "QuickBooks has class tracking off."),
    ("categories", {"use_locations": ["", "y"]}, "use_locations",
     "QuickBooks has location tracking off."),
    ("autosync", {"autosync_interval_minutes": "14"}, "autosync_interval_minutes",
     "The interval must be at least 15 minutes; 120 is recommended so a large batch can "
     "finish."),
    ("autosync", {"autosync_max_consecutive_failures": "11"},
     "autosync_max_consecutive_failures", "Enter at most 10."),
    ("autosync", {"autosync_max_consecutive_failures": "0"},
     "autosync_max_consecutive_failures", "Enter at least 1."),
    ("autosync", {"autosync_error_extra_emails": "ops@example.test\nnot-an-address"},
     "autosync_error_extra_emails", "&#39;not-an-address&#39; is not an email address."),
    ("sales", {"payment_sync_overlap_minutes": "-1"}, "payment_sync_overlap_minutes",
     "Enter at least 0."),
    ("inventory", {"inventory_asset_account": "82"}, "inventory_asset_account",
     "Choose a QuickBooks account from the list"),
    ("inventory", {"cogs_account": "999"}, "cogs_account",
     "Choose a QuickBooks account from the list"),
    ("inventory", {"inventory_start_date": "2000-13-01"}, "inventory_start_date",
     "Enter a date as YYYY-MM-DD."),
    ("purchases", {"purchase_tax_account": "81"}, "purchase_tax_account",
     "Choose a QuickBooks account from the list"),
    ("taxes", {"exempt_tax_code": "81"}, "exempt_tax_code",
     "Choose a QuickBooks tax code from the list"),
    ("taxes", {"tax_difference_tolerance": "0.005"}, "tax_difference_tolerance",
     "Use at most two decimal places."),
    ("currency", {"per_currency_customer_suffix": " ({code}) "},
     "per_currency_customer_suffix", "Remove the trailing spaces"),
])
def test_rules_refuse_bad_values(app, client, login_as, company, refs, tab, changes, field,
                                 message):
    login_as("admin")
    client.get(_url(company, tab))
    before = _stored(app, company)
    response = _save(client, app, company, tab, **changes)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert f'id="setting-{field}-error">{message}' in body
    assert 'aria-invalid="true"' in body
    _assert_nothing_saved(app, company, before, 1, tab)


def test_cross_field_rules_pass_when_quickbooks_allows(app, client, login_as):
    login_as("admin")
    company = _add_company(app, account_numbers=True, class_tracking="line",
                           track_locations=True, location_label="Department")
    body = client.get(_url(company, "categories")).get_data(as_text=True)
    assert "Use Departments" in body
    assert _save(client, app, company, "company",
                 gl_account_match="Number").status_code == 200
    response = _save(client, app, company, "categories", use_classes=["", "y"],
                     use_locations=["", "y"], location_source="Territory")
    assert response.status_code == 200, response.get_data(as_text=True)
    settings = _settings(app, company)
    assert settings.gl_account_match == "Number" and settings.use_classes
    assert settings.use_locations and settings.location_source == "Territory"


def test_autosync_refuses_overlapping_location_filters(app, client, login_as, company,
                                                       autosync_ready):
    login_as("admin")
    with session_scope(app) as session:
        session.add(CwRef(entity="location", cw_id=2, name="Tampa"))
    other = _add_company(app, realm_id="77", qbo_name="Beta Inc", is_default=False)
    with session_scope(app) as session:  # Beta has AutoSync on already
        target = session.get(Company, other)
        cs.ensure_settings(session, target)
        row = session.get(StoredSettings, other)
        row.values = {**row.values, "autosync_enabled": True}
    response = _save(client, app, company, "autosync", autosync_enabled=["", "y"],
                     autosync_invoices=["", "y"])
    assert response.status_code == 422
    assert ("Companies Acme Services LLC and Beta Inc would both pick up the same ConnectWise "
            "records; give each its own location filter.") in response.get_data(as_text=True)
    assert not _settings(app, company).autosync_enabled


def test_autosync_needs_a_connected_company(app, client, login_as):
    login_as("admin")
    company = _add_company(app, status=CompanyStatus.RECONNECT_NEEDED)
    response = _save(client, app, company, "autosync", autosync_enabled=["", "y"],
                     autosync_invoices=["", "y"])
    assert response.status_code == 422
    assert "AutoSync needs a connected company" in response.get_data(as_text=True)


# ---- taxes visibility -------------------------------------------------------------------

def test_taxes_tab_is_hidden_for_an_ast_company(app, client, login_as):
    login_as("admin")
    company = _add_company(app, ast_enabled=True)
    body = client.get(_url(company, "company")).get_data(as_text=True)
    assert 'id="tab-taxes"' not in body and 'id="tab-currency"' in body
    assert client.get(_url(company, "taxes")).status_code == 404
    assert _save_raw(client, company, "taxes", {"unmapped_tax_codes": "Error"}).status_code \
        == 404


def _save_raw(client, company_id: int, tab: str, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    url = _url(company_id, tab)
    return client.hx("POST", url, data=data, token_from=_url(company_id, "company"),
                     current_url=url)


def test_taxes_tab_notes_when_sales_tax_is_off(app, client, login_as):
    login_as("admin")
    on = client.get(_url(_add_company(app), "taxes")).get_data(as_text=True)
    assert 'id="sales-tax-notice"' not in on
    company = _add_company(app, realm_id="55", using_sales_tax=False)
    body = client.get(_url(company, "taxes")).get_data(as_text=True)
    assert 'id="sales-tax-notice"' in body


def test_a_partial_post_keeps_the_fields_it_does_not_name(app, client, login_as, company):
    login_as("admin")
    client.get(_url(company, "sales"))
    response = _save_raw(client, company, "sales", {"payment_sync_overlap_minutes": "20"})
    assert response.status_code == 200
    (event,) = _audits(app, "settings.sales.update")
    assert event.after == {"payment_sync_overlap_minutes": 20}
    assert _stored(app, company)["copy_customer_po"] is True


# ---- roles ------------------------------------------------------------------------------

def test_accountant_sees_read_only_tabs_and_cannot_save(app, client, login_as, company):
    login_as("accountant")
    for tab in [t for t in TABS if t != "email"]:  # the Email tab is the accountant's
        response = client.get(_url(company, tab))
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert '<fieldset class="settings-fields" disabled>' in body
        assert 'id="settings-read-only"' in body and "Save " not in body
    fragment = client.hx("GET", _url(company, "sales")).get_data(as_text=True)
    assert "disabled" in fragment and 'type="submit"' not in fragment
    versions = len(_versions(app, company))
    response = _save_raw(client, company, "sales", {"payment_sync_overlap_minutes": "20"})
    assert response.status_code == 403
    assert len(_versions(app, company)) == versions
    assert _stored(app, company)["payment_sync_overlap_minutes"] == 5
    assert len(_audits(app, "authz.denied")) == 1


def test_viewer_has_no_access(client, login_as, company):
    login_as("viewer")
    assert client.get(_url(company, "company")).status_code == 403
    assert _save_raw(client, company, "company", {"label": "x"}).status_code == 403


# ---- the service API --------------------------------------------------------------------

def test_save_tab_returns_errors_or_the_new_version(app, make_user, company):
    admin = make_user("admin")
    with app.test_request_context(), session_scope(app) as session:
        target = session.get(Company, company)
        errors = cs.save_tab(session, target, "autosync",
                             {"autosync_interval_minutes": 5}, admin)
        assert errors == [cs.SettingError(
            "autosync_interval_minutes", "The interval must be at least 15 minutes; 120 is "
            "recommended so a large batch can finish.")]
        version = cs.save_tab(session, target, "autosync",
                              {"autosync_interval_minutes": 30}, admin)
        assert isinstance(version, SettingsVersion) and version.tab == "autosync"
        assert cs.get_settings(session, target).autosync_interval_minutes == 30
        assert cs.current_version(session, target).id == version.id
        snapshot = cs.as_json(cs.get_settings(session, target))
        assert snapshot["autosync_interval_minutes"] == 30
        assert snapshot["total_tolerance"] == "0.01"
        with pytest.raises(cs.UnknownTab):
            cs.save_tab(session, target, "bananas", {}, admin)


def test_settings_versions_are_immutable(app, company):
    with app.test_request_context(), session_scope(app) as session:
        version = cs.current_version(session, session.get(Company, company))
    with pytest.raises(ImmutableRowError), session_scope(app) as session:
        row = session.get(SettingsVersion, version.id)
        row.values = {}
        session.flush()
    with pytest.raises(ImmutableRowError), session_scope(app) as session:
        session.delete(session.get(SettingsVersion, version.id))
        session.flush()


def test_changed_quickbooks_preferences_are_reported(app, company):
    with app.test_request_context(), session_scope(app) as session:
        target = session.get(Company, company)
        cs.get_settings(session, target)
        assert cs.changed_facts(session, target) == {}
        target.class_tracking = "line"
        assert cs.changed_facts(session, target) == {"class_tracking": ("none", "line")}


def test_checklist_step_four_follows_the_saved_tabs(app, client, login_as, company):
    login_as("admin")
    step = client.get("/").get_data(as_text=True)
    assert 'class="step step-todo" id="step-4"' in step
    assert "Save the tabs of Acme Services LLC: Company, Sales" in step
    for tab in TABS:
        assert _save(client, app, company, tab).status_code == 200, tab
    assert 'class="step step-done" id="step-4"' in client.get("/").get_data(as_text=True)
    with session_scope(app) as session:
        session.get(Company, company).ast_enabled = True  # QuickBooks switched AST on
    warned = client.get("/").get_data(as_text=True)
    assert 'class="step step-warning" id="step-4"' in warned
    assert "QuickBooks settings of Acme Services LLC changed since the last save" in warned
