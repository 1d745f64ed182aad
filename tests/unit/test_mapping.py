"""Resolvers and the invoice validator on an in-memory cache (no database, no network)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from portal.models import Company, QboRef
from portal.services.batching.types.base import CompanyFacts
from portal.services.batching.types.invoices import validate
from portal.services.mapping import MappingSet, Prefs
from portal.services.reference import qbo_row


def validate_invoice(transaction, mapping_set, company):  # type: ignore[no-untyped-def]
    return validate(transaction, mapping_set, CompanyFacts.of(company))

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


def ref(entity: str, qbo_id: str, name: str, *, parent: str | None = None,
        fqn: str | None = None, active: bool = True, acct_num: str | None = None) -> QboRef:
    obj = {"Id": qbo_id, "Active": active, ("DisplayName" if entity in (
        "Customer", "Vendor", "Employee") else "Name"): name.split(":")[-1],
        "FullyQualifiedName": fqn or name}
    if parent:
        obj["ParentRef"] = {"value": parent}
    if acct_num:
        obj["AcctNum"] = acct_num
    return QboRef(**qbo_row(1, entity, obj, NOW))


CACHE = [
    ref("Customer", "1", "ACME Corp (ACME)"),
    ref("Customer", "2", "O’Neil Dental (ONEIL)"),
    ref("Customer", "3", "Harborview Health (HARBOR)"),
    ref("Customer", "4", "Harborview Health"),
    ref("Customer", "5", "Harborview Health:Harborview Clinic (HVCLINIC)", parent="4"),
    ref("Customer", "6", "Old Client (OLD)", active=False),
    ref("Vendor", "20", "Pinnacle Dental (PINNDENT)"),
    ref("Employee", "30", "Maria Garcia"),
    ref("Account", "40", "Accounts Receivable", acct_num="1200"),
    ref("Account", "41", "Sales", acct_num="4000"),
    ref("Account", "42", "Sales:Managed Services", acct_num="4010"),
    ref("Account", "43", "Sales:Managed Services:Backup:Offsite:Cold", acct_num="4019"),
    ref("Class", "50", "Services"), ref("Class", "51", "Services:Projects"),
    ref("Term", "60", "Net 30"),
    ref("Item", "70", "M365-BP"),
]


def mapping(prefs: Prefs | None = None, overrides=None) -> MappingSet:  # type: ignore[no-untyped-def]
    return MappingSet(CACHE, overrides or {}, prefs or Prefs())


def test_exact_match_is_code_point_equal():
    found = mapping().resolve("account", "Sales:Managed Services")
    assert (found.status, found.qbo_id) == ("exact", "42")
    assert mapping().resolve("account", "sales:managed services").status == "near_miss"


def test_sub_accounts_to_five_levels_by_name_or_number():
    assert mapping().account("Sales:Managed Services:Backup:Offsite:Cold").qbo_id == "43"
    by_number = mapping(Prefs(gl_account_match="Number"))
    assert by_number.account("4010").qbo_id == "42"
    assert by_number.account("Sales:Managed Services").status == "missing"


def test_near_miss_case_and_curly_quote():
    [customer] = mapping().customer("Acme Corp", "ACME")
    assert customer.status == "near_miss" and customer.blocking
    assert customer.candidates[0].qbo_id == "1"
    assert [d.describe() for d in customer.candidates[0].diffs] == [
        "pos 2: 'c' U+0063 'm' U+006D 'e' U+0065 ≠ 'C' U+0043 'M' U+004D 'E' U+0045 (case)"]
    [curly] = mapping().customer("O'Neil Dental", "ONEIL")
    assert curly.status == "near_miss"
    assert curly.candidates[0].diffs[0].describe() == "pos 2: ''' U+0027 ≠ '’' U+2019 (quote)"


def test_override_resolves_by_id_and_survives_renames():
    found = mapping(overrides={("customer", "Acme Corp (ACME)"): "1"}).customer("Acme Corp", "ACME")
    assert (found[-1].status, found[-1].qbo_id) == ("override", "1")
    dead = mapping(overrides={("customer", "Acme Corp (ACME)"): "6"}).customer("Acme Corp", "ACME")
    assert dead[-1].status == "error" and "inactive" in dead[-1].message


def test_missing_customer_will_be_created_unless_creation_is_off():
    [new] = mapping().customer("Granite Peak Outfitters", "GRANITE")
    assert (new.status, new.cw_value) == ("will_create", "Granite Peak Outfitters (GRANITE)")
    [off] = mapping(Prefs(create_customers=False)).customer("Granite Peak Outfitters", "GRANITE")
    assert off.status == "missing"


def test_sub_customers_need_their_parent():
    parent, child = mapping().customer("Harborview Health:Harborview Clinic", "HVCLINIC")
    assert (parent.status, child.status, child.qbo_id) == ("exact", "exact", "5")
    missing_parent, leaf = mapping().customer("Keystone Group:Keystone Logistics", "KEYLOG")
    assert missing_parent.status == "missing"
    assert missing_parent.message == ("Parent customer 'Keystone Group' does not exist in "
                                      "QuickBooks; create it there first.")
    assert leaf.status == "will_create"


def test_conflict_across_customer_vendor_employee():
    [clash] = mapping().customer("Pinnacle Dental", "PINNDENT")
    assert clash.status == "conflict" and "Vendor 'Pinnacle Dental (PINNDENT)'" in clash.message
    [employee] = mapping(Prefs(append_account_name=False)).customer("Maria Garcia",
                                                                    "Maria Garcia")
    assert employee.status == "conflict"


def test_append_off_needs_the_account_id_to_equal_the_name():
    [found] = mapping(Prefs(append_account_name=False)).customer("Acme Corp", "ACME")
    assert found.status == "error" and "needs the Account ID 'Acme Corp'" in found.message


def test_inactive_object_is_reported():
    [found] = mapping().customer("Old Client", "OLD")
    assert found.status == "inactive" and "Reactivate" in found.hint


def test_names_to_create_must_be_safe():
    [found] = mapping().customer("Smith–Jones LLC", "SMITH")
    assert found.status == "error" and "dash (U+2013)" in found.message


def _invoice(**overrides):  # type: ignore[no-untyped-def]
    tx = {"documentNumber": "10042", "glEntryIds": "1,2", "accountNumber": "Accounts Receivable",
          "company": {"name": "Acme Corp"}, "companyAccountNumber": "ACME",
          "billingTermsXref": "Net 30", "glClass": "Services",
          "detail": [{"glTypeId": "RP", "accountNumber": "Sales:Cloud Services",
                      "glClass": "Services:Projects", "item": {"identifier": "M365-BP"}},
                     {"glTypeId": "RP", "accountNumber": "Sales:Managed Services",
                      "glClass": "Services"}]}
    tx.update(overrides)
    return tx


def test_validator_lists_every_problem_with_a_hint():
    company = Company(class_tracking="line")
    problems = validate_invoice(_invoice(), mapping(), company)
    messages = [p.message for p in problems]
    assert messages == [
        "Customer 'Acme Corp (ACME)' is not in QuickBooks exactly; 'ACME Corp (ACME)' differs "
        "only by case.",
        "GL account 'Sales:Cloud Services' (invoice 10042 line 1) does not exist in QuickBooks."]
    assert all(p.hint and p.record == "invoice 10042" for p in problems)


def test_validator_record_level_checks():
    company = Company(class_tracking="txn")
    problems = validate_invoice(
        _invoice(glEntryIds="", documentNumber="1234567890123456789",
                 company={"name": "Granite Peak"}, companyAccountNumber="GP",
                 detail=[{"glTypeId": "RP", "accountNumber": "Sales", "glClass": "Services"},
                         {"glTypeId": "RP", "accountNumber": "Sales",
                          "glClass": "Services:Projects"}]),
        mapping(Prefs(use_classes=True, doc_number_prefix="INV-")), company)
    messages = [p.message for p in problems]
    assert messages[:3] == [
        "Invoice 1234567890123456789 has no GL entries in ConnectWise; re-open and re-close it.",
        "DocNumber 'INV-1234567890123456789' is 23 characters; QuickBooks allows 21.",
        "QuickBooks allows one class per transaction, but invoice 1234567890123456789 has lines "
        "in classes Services and Services:Projects."]


@pytest.mark.parametrize("value", ["Net 30"])
def test_terms_are_created_when_missing(value):
    assert mapping().term(value).status == "exact"
    assert mapping().term("Net 45").status == "will_create"


def test_append_on_flags_a_customer_already_there_without_its_account_id():
    cache = [*CACHE, ref("Customer", "7", "Blue  Harbor Law"), ref("Customer", "8", "Summit")]
    twins = MappingSet(cache, {}, Prefs())
    [spaced] = twins.customer("Blue Harbor Law", "BLUEHARB")
    assert spaced.status == "near_miss" and spaced.candidates[0].qbo_id == "7"
    assert "would make a twin" in spaced.message
    [same] = twins.customer("Summit", "SUMMIT")
    assert same.status == "near_miss" and same.candidates[0].diffs == ()


def test_a_clash_hint_never_asks_to_turn_on_what_is_on():
    """With append on, 'Pinnacle Dental (PINNDENT)' already carries its account id."""
    [clash] = mapping().customer("Pinnacle Dental", "PINNDENT")
    assert clash.status == "conflict" and clash.cw_value.endswith("(PINNDENT)")
    assert "Turn on" not in clash.hint
    assert "“Append account name” (Contacts tab) is on" in clash.hint
    [off] = mapping(Prefs(append_account_name=False)).customer("Maria Garcia", "Maria Garcia")
    assert off.hint == "Turn on “Append account name” (Contacts tab), or rename one of them."
    [error] = mapping(Prefs(append_account_name=False)).customer("Acme Corp", "ACME")
    assert "turn on “Append account name” (Contacts tab)" in error.hint
