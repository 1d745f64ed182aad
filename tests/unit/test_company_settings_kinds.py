"""The settings declaration: every SPEC §4 setting is declared, and each kind parses and
refuses values as the tabs promise."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.services import company_settings as cs

# SPEC §4.1–4.9 (and §11.2's unbatch_default_qbo_action, on the Company tab); the Purchases
# tab's display_uom is declared as purchase_display_uom.
SPEC_NAMES = """
label is_default default_location_ids time_zone gl_account_match enabled_types
doc_number_prefix go_live_date unbatch_default_qbo_action reference_cache_max_age_minutes
invoice_export_detail service_item_source fallback_item_name display_uom allow_epayments
allow_card_payments allow_ach_payments item_account_mismatch skip_zero_invoices
copy_customer_po total_tolerance credit_memo_multi_invoice cw_payment_authority
unmapped_credit_as_payment match_invoices_by_docnumber payment_sync_overlap_minutes use_cdc
purchase_display_uom reimbursable_expenses_as_bills sync_unapproved_expenses
vendor_invoice_date_source non_reimbursable_grouping personal_expenses vin_uniqueness_scope
partial_receipt_mode purchase_tax_as_line_item purchase_tax_account
create_items inventory_parts_as inventory_asset_account cogs_account inventory_start_date
freight_posting freight_item_name adjustments_and_transfers create_product_categories
item_types
append_account_name create_customers create_vendors create_member_vendors
copy_contact_details
tax_code_mappings exempt_tax_code tax_exempt_items unmapped_tax_codes
tax_difference_tolerance
currency_mappings per_currency_customer_suffix
use_classes create_classes use_locations location_source create_locations
autosync_enabled autosync_interval_minutes autosync_invoices autosync_expenses
autosync_inventory autosync_payments autosync_on_mapping_error autosync_error_user_ids
autosync_error_extra_emails autosync_max_consecutive_failures
email_delivery send_mode recipient_source from_address from_name reply_to cc bcc
subject_template body_template include_payment_link pdf_source skip_zero_balance
send_credit_memos
""".split()


def test_every_spec_setting_is_declared_once_on_a_real_tab():
    assert [s.name for s in cs.DEFINITIONS] == SPEC_NAMES
    tabs = {t.slug for t in cs.TABS}
    assert {s.tab for s in cs.DEFINITIONS} == tabs
    assert all(s.label and (s.hint or s.group == "Types") for s in cs.DEFINITIONS)


@pytest.mark.parametrize(("raw", "value"), [(["", "y"], True), ([""], False), ("on", True),
                                             ("", False), (True, True), (None, False)])
def test_bool(raw, value):
    assert cs.Bool().parse(raw, []) is value


def test_int_range_and_the_spec_message():
    kind = cs.BY_NAME["autosync_interval_minutes"].kind
    assert kind.parse("15", []) == 15 and kind.parse(1440, []) == 1440
    with pytest.raises(cs.Invalid, match="^The interval must be at least 15 minutes; 120 is "
                                         "recommended so a large batch can finish.$"):
        kind.parse("14", [])
    for bad in ("1441", "12.5", "abc", "", True):
        with pytest.raises(cs.Invalid):
            kind.parse(bad, [])


def test_decimal_keeps_two_places_exactly():
    kind = cs.Dec()
    assert kind.parse("0.1", []) == Decimal("0.10")
    assert kind.dump(kind.parse("1.25", [])) == "1.25"
    for bad in ("0.001", "-1", "NaN", "Infinity", "1e9", "x"):
        with pytest.raises(cs.Invalid):
            kind.parse(bad, [])


def test_text_length_and_suffix_spaces():
    assert cs.Text(6).parse("  AB- ", []) == "AB-"
    with pytest.raises(cs.Invalid, match="at most 6"):
        cs.Text(6).parse("ABCDEFG", [])
    suffix = cs.BY_NAME["per_currency_customer_suffix"].kind
    assert suffix.parse(" ({code})", []) == " ({code})"
    with pytest.raises(cs.Invalid):
        suffix.parse("line\nbreak", [])


def test_multi_keeps_the_list_order_and_refuses_strangers():
    kind = cs.BY_NAME["enabled_types"].kind
    assert kind.parse(["", "payment", "invoice"], []) == ["invoice", "payment"]
    assert kind.parse([""], []) == []
    with pytest.raises(cs.Invalid, match="payroll"):
        kind.parse(["payroll"], [])
    ids = cs.Multi(ints=True)
    assert ids.parse(["7", "3"], [("3", "Boston"), ("7", "Tampa")]) == [3, 7]


def test_qbo_object_must_be_one_of_the_choices():
    kind = cs.BY_NAME["cogs_account"].kind
    assert kind.parse("", [("82", "COGS")]) is None
    assert kind.parse("82", [("82", "COGS")]) == "82"
    with pytest.raises(cs.Invalid, match="Choose a QuickBooks account"):
        kind.parse("81", [("82", "COGS")])


def test_dates_time_zones_and_lists():
    assert cs.Day().parse("2024-02-29", []) == date(2024, 2, 29)
    with pytest.raises(cs.Invalid):
        cs.Day().parse("", [])
    assert cs.TimeZone().parse(" Europe/London ", []) == "Europe/London"
    with pytest.raises(cs.Invalid):
        cs.TimeZone().parse("Pacific Standard Time", [])
    assert cs.Lines().parse("A\n\n B \nA", []) == ["A", "B"]
    assert cs.Emails().parse("a@x.test, b@y.test", []) == ["a@x.test", "b@y.test"]
    with pytest.raises(cs.Invalid):
        cs.Emails().parse("a@x.test, nobody", [])


# ---- hints name settings by their labels ------------------------------------------------

def _labels_on(tab: str) -> set[str]:
    from portal.services import company_settings as cs

    found = set()
    for setting in cs.DEFINITIONS:
        if setting.tab == tab:
            found.add(setting.label)
            found.update(label for _value, label in getattr(setting.kind, "options", ()))
    return found


@pytest.mark.parametrize(("name", "text"), [
    ("append_account_name", "“Append account name” (Contacts tab)"),
    ("doc_number_prefix", "“DocNumber prefix” (Company tab)"),
    ("cogs_account", "“Cost of goods sold account” (Inventory tab)"),
])
def test_named_gives_the_label_the_tab_shows(name, text):
    from portal.services import company_settings as cs

    assert cs.named(name) == text


def test_every_hint_that_names_a_setting_uses_its_label():
    """Hints anywhere in the services name a setting as `“Label” (Tab tab)`, `'Label' …
    on the Tab tab`, or `the Label on the Tab tab`: each must be a label (or an option) of
    that tab, so a person finds exactly those words on the screen."""
    import re
    from pathlib import Path

    import portal

    root = Path(portal.__file__).parent
    patterns = [re.compile(r"“([^”]+)” \((\w+) tab\)"),
                re.compile(r"'([^']+)' to ([A-Z][\w ]+?) on the (\w+) tab"),
                re.compile(r"(?:Shorten|Choose|Set|Turn on|turn on) the ([A-Z][\w ]+?) on the "
                           r"(\w+) tab")]
    seen = 0
    for path in [*root.joinpath("services").rglob("*.py"), *root.joinpath("templates")
                 .rglob("*.html")]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        text = re.sub(r'"\s*"', "", text)  # join adjacent string literals
        for pattern in patterns:
            for match in pattern.finditer(text):
                *names, tab = match.groups()
                labels = _labels_on(tab.lower())
                for name in names:
                    if "{" in name:
                        continue
                    assert name in labels, (path.name, name, tab)
                    seen += 1
    assert seen >= 4
