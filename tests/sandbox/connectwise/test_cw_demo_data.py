"""The seeded demo data set: deterministic, every curated case present, complete at scale."""

from __future__ import annotations

import json
from typing import Any

from portal.sandbox.demo_data import CURATED, generate


def test_same_seed_same_data(demo: dict[str, Any]) -> None:
    assert json.dumps(generate(seed=42), sort_keys=True) == json.dumps(demo, sort_keys=True)
    assert json.dumps(generate(seed=43), sort_keys=True) != json.dumps(demo, sort_keys=True)


def test_curated_connectwise_cases(demo: dict[str, Any]) -> None:
    cw = demo["connectwise"]
    t = cw["tables"]
    c = CURATED["connectwise"]
    names = {co["name"] for co in t["companies"]}
    customers = [co for co in t["companies"] if any(ty["name"] == "Customer" for ty in co["types"])]
    vendors = [co for co in t["companies"] if co.get("isVendorFlag")]
    assert len(customers) == 45 and len(vendors) == 8
    assert set(c["sub_customers"]) <= names and len(c["sub_customers"]) == 3
    assert c["vendor_also_customer"] in {v["name"] for v in vendors}
    assert next(co for co in t["companies"] if co["name"] == c["eur_customer"])[
        "currency"]["currencyCode"] == "EUR"
    assert [loc["name"] for loc in t["locations"] if loc["locationFlag"]] == [
        "Corporate", "East", "West"]
    assert len([loc for loc in t["locations"] if not loc["locationFlag"]]) == 2
    staff = [m for m in t["members"] if m["licenseClass"] == "F"]
    assert len(staff) == 12
    assert [m["identifier"] for m in staff if not m.get("vendorNumber")] == [
        c["member_without_vendor_number"]]
    assert {r["name"] for r in t["work_roles"]} == {"Engineer", "Consultant", "Project Manager"}
    assert {w["name"] for w in t["work_types"]} == {"Remote", "On-Site", "After Hours"}
    invoices = {i["invoiceNumber"]: i for i in t["invoices"]}
    assert len(invoices) == 150
    assert {invoices[n]["type"] for n in c["credit_memo_numbers"]} == {"CreditMemo"}
    assert all(invoices[n]["total"] < 0 for n in c["credit_memo_numbers"])
    assert invoices[c["zero_invoice_number"]]["total"] == 0
    assert invoices[c["no_gl_entries_invoice_number"]]["_glEntryIds"] == []
    assert {i["type"] for i in t["invoices"]} >= {"Agreement", "Standard", "Progress",
                                                  "DownPayment", "CreditMemo"}
    assert all(invoices[n].get("glBatch") for n in c["posted_invoice_numbers"])
    assert len(t["expense_entries"]) == 74
    statuses = {e["id"]: e for e in t["expense_entries"]}
    [advance] = c["expense_ids"]["non_reimbursable_advance"]
    assert (statuses[advance]["_classification"], statuses[advance]["_creditAccount"]) == (
        "NonReimbursable", "Employee Reimbursements")
    [refund] = c["expense_ids"]["reimbursable_refund"]
    [card_refund] = c["expense_ids"]["card_refund"]
    assert statuses[refund]["amount"] < 0 and statuses[card_refund]["amount"] < 0
    assert statuses[card_refund]["_creditAccount"] == "Company Amex"
    pair = [statuses[i] for i in c["expense_ids"]["card_pair"]]
    assert {(e["member"]["id"], e["_periodEnd"], e["_creditAccount"]) for e in pair} == {
        (pair[0]["member"]["id"], pair[0]["_periodEnd"], "Company Amex")}
    assert all(statuses[i]["status"] == "PendingApproval"
               for i in c["expense_ids"]["unapproved"])
    assert {statuses[i]["_classification"] for i in c["expense_ids"]["personal"]} == {"Personal"}
    assert len(t["purchase_orders"]) == 20
    pos = {p["poNumber"]: p for p in t["purchase_orders"]}
    receipts = {r["purchaseOrderId"]: r for r in t["receipts"]}
    for key, code in (("purchase_tax_us", "NJ"), ("purchase_tax_canada", "ON")):
        po = pos[c["purchase_orders"][key]]
        assert po["taxCode"]["name"] == code and receipts[po["id"]]["tax"] > 0
    assert pos[c["purchase_orders"]["purchase_tax_canada"]]["currency"]["currencyCode"] == \
        "CAD"
    assert sum(1 for r in t["receipts"] if r["tax"]) == 2
    assert pos[c["purchase_orders"]["drop_ship"]]["dropShipCustomerFlag"] is True
    assert pos[c["purchase_orders"]["freight"]]["freightCost"] > 0
    assert len(t["adjustments"]) == 2 and len(t["transfers"]) == 1
    assert {p["typeXref"] for p in t["product_types"]} == {
        "Inventory Part", "Non-Inventory Part", "Service", "Other Charge"}
    assert any(i["serializedFlag"] for i in t["catalog"])
    assert any(":" in i["identifier"] for i in t["catalog"])
    nyc = next(code for code in t["tax_codes"] if code["identifier"] == c["two_level_tax_code"])
    assert nyc["levelOneTaxCodeXref"] and nyc["levelTwoTaxCodeXref"]
    assert [b["name"] for b in t["billing_terms"] if not b.get("termsXref")] == [
        c["billing_term_without_xref"]]
    assert cw["credentials"]["client_id"] in cw["client_ids"]


def test_curated_quickbooks_cases(demo: dict[str, Any]) -> None:
    qbo = demo["quickbooks"]
    q = CURATED["quickbooks"]
    assert qbo["apps"][0]["client_id"] == q["app_client_id"] and qbo["apps"][0]["client_secret"]
    us, ca = qbo["companies"]
    assert us["realmId"] == q["realm_us"] and us["settings"]["country"] == "US"
    assert us["CompanyInfo"]["CompanyName"] == "Northwind Managed IT"
    assert ca["CompanyInfo"]["CompanyName"] == "Northwind Canada"
    e = us["entities"]
    assert len(e["Customer"]) == 30
    displays = {c["DisplayName"] for c in e["Customer"]}
    assert {m["qbo"] for m in q["near_miss_customers"]} <= displays
    assert "O\u2019Neil Dental" in displays and "Blue  Harbor Law" in displays
    assert "Summit Partners " in displays
    assert q["vendor_named_like_customer"]["qbo_vendor"] in {v["DisplayName"] for v in e["Vendor"]}
    assert q["docnumber_collision"]["doc_number"] in {i["DocNumber"] for i in e["Invoice"]}
    accounts = {a["Id"]: a for a in e["Account"]}

    def fqn(acct: dict[str, Any]) -> str:
        parent = acct.get("ParentRef")
        return f"{fqn(accounts[parent['value']])}:{acct['Name']}" if parent else acct["Name"]
    names = {fqn(a) for a in e["Account"]}
    cw_accounts = {line["accountNumber"] for inv in demo["connectwise"]["tables"]["invoices"]
                   for line in inv["_lines"]}
    assert cw_accounts - names == {q["missing_account"]}
    item = next(i for i in e["Item"] if i["Name"] == q["item_account_mismatch"]["item"])
    assert fqn(accounts[item["IncomeAccountRef"]["value"]]) == q["item_account_mismatch"][
        "qbo_account"]
    linked = {lt["TxnId"] for p in e["Payment"] for line in p["Line"] for lt in line["LinkedTxn"]
              if lt["TxnType"] == "Invoice"}
    paid_numbers = {i["DocNumber"] for i in e["Invoice"] if i["Id"] in linked}
    assert paid_numbers == set(q["paid_invoice_numbers"]) and len(paid_numbers) == 20
    memo_payment = next(p for p in e["Payment"] if p["Id"] == q["credit_memo_payment"]["payment_id"])
    kinds = [lt["TxnType"] for line in memo_payment["Line"] for lt in line["LinkedTxn"]]
    assert kinds.count("Invoice") == 2 and kinds.count("CreditMemo") == 1
    rate_counts = {t["Name"]: len(t["SalesTaxRateList"]["TaxRateDetail"])
                   for t in ca["entities"]["TaxCode"] if t["Name"] in q["canada_tax_codes"]}
    assert rate_counts == q["canada_tax_codes"]
    assert ca["settings"]["country"] != "US"
    for company in qbo["companies"]:
        for entity, rows in company["entities"].items():
            assert all(isinstance(r["Id"], str) for r in rows), entity


def test_scale_ten_thousand_adds_matching_records(demo: dict[str, Any]) -> None:
    """--scale N adds N invoices with customers, expenses and receipts to match (SPEC §17.4);
    how fast that is, is a figure of benchmarks/demo_data.py."""
    plain = demo["connectwise"]["tables"]
    t = generate(seed=42, scale=10_000)["connectwise"]["tables"]
    assert len(t["invoices"]) == len(plain["invoices"]) + 10_000 == 10_150
    assert len(t["companies"]) == len(plain["companies"]) + 500
    assert len(t["expense_entries"]) == len(plain["expense_entries"]) + 1_000
    assert len(t["purchase_orders"]) == len(plain["purchase_orders"]) + 200
    companies = {c["id"] for c in t["companies"]}
    added = t["invoices"][len(plain["invoices"]):]
    assert len({i["invoiceNumber"] for i in t["invoices"]}) == 10_150
    assert all(i["company"]["id"] in companies and i["_lines"] and i["_glEntryIds"]
               for i in added)
    gl_entries = {e["id"] for e in t["gl_entries"]}
    assert all(set(i["_glEntryIds"]) <= gl_entries for i in added)


def test_curated_payment_cases(demo: dict[str, Any]) -> None:
    q = CURATED["quickbooks"]
    e = demo["quickbooks"]["companies"][0]["entities"]
    invoices = {i["DocNumber"]: i["Id"] for i in e["Invoice"]}
    over = invoices[q["overpaid_invoice_number"]]
    [payment] = [p for p in e["Payment"] if any(lt["TxnId"] == over for line in p["Line"]
                                                 for lt in line["LinkedTxn"])]
    assert payment["TotalAmt"] == round(payment["Line"][0]["Amount"] + 25, 2)
    wisepay = [p for p in demo["connectwise"]["tables"]["payments"] if p.get("wisePayPayment")]
    assert [p["invoice"]["identifier"] for p in wisepay] == [q["wisepay_invoice_number"]]
