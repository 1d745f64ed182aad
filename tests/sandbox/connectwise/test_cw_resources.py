"""Reference collections, fields/orderBy, child collections, the PDF, and a 10,000-invoice load."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from portal.sandbox.connectwise import ConnectWiseSandbox
from portal.sandbox.connectwise.cli import connectwise
from portal.sandbox.demo_data import generate


def test_fields_and_order_by(cw: Any) -> None:
    rows = cw.get("company/companies", params={"fields": "id,name,billingTerms/name",
                                               "orderBy": "name desc", "pageSize": 5}).json()
    assert all(set(r) <= {"id", "name", "billingTerms"} for r in rows)
    assert set(rows[0]["billingTerms"]) == {"name"}
    names = [r["name"] for r in rows]
    assert names == sorted(names, key=str.casefold, reverse=True)
    assert cw.get("company/companies?orderBy=nosuch asc").status_code == 400


def test_child_conditions_on_contacts(cw: Any) -> None:
    rows = cw.get("company/contacts", params={
        "childConditions": 'communicationItems/value like "billing@acmecorp%" AND '
                           'communicationItems/communicationType="Email"'}).json()
    assert len(rows) == 1 and rows[0]["company"]["name"] == "Acme Corp"


def test_reference_collections_respond(cw: Any) -> None:
    for path in ("company/companies", "company/contacts", "finance/glAccounts",
                 "finance/taxCodes", "finance/billingTerms", "finance/billingStatuses",
                 "finance/currencies", "finance/accountingPackageSetup", "procurement/catalog",
                 "procurement/products", "procurement/types", "procurement/unitOfMeasures",
                 "procurement/purchaseorders", "system/members", "system/locations",
                 "time/workRoles", "time/workTypes", "time/entries", "expense/types",
                 "expense/entries", "project/tickets", "service/tickets",
                 "finance/accounting/unpostedexpenses", "finance/accounting/unpostedprocurement",
                 "finance/accounting/batches", "finance/invoices"):
        resp = cw.get(path + "?pageSize=1")
        assert resp.status_code == 200, path
        assert isinstance(resp.json(), list) and len(resp.json()) == 1, path
        assert cw.get(path + "/count").json()["count"] >= 1, path


def test_members_vendor_numbers_and_tax_levels(cw: Any) -> None:
    members = cw.get("system/members?conditions=vendorNumber = null and licenseClass = \"F\"").json()
    assert [m["identifier"] for m in members] == ["kpatel"]
    nyc = cw.get('finance/taxCodes?conditions=identifier="NYC"').json()[0]
    levels = cw.get(f"finance/taxCodes/{nyc['id']}/taxCodeLevels").json()
    assert [lv["taxCodeXref"] for lv in levels] == ["NY State", "NYC Local"]
    sites = cw.get("company/companies/1/sites").json()
    assert sites[0]["company"]["id"] == 1
    unposted = cw.get("finance/accounting/unpostedinvoices?conditions=taxCode/name=\"NYC\" "
                      "and salesTaxAmount > 0&pageSize=1").json()[0]
    levels = cw.get(f"finance/accounting/unpostedinvoices/{unposted['id']}/taxableLevels").json()
    assert [lv["taxLevel"] for lv in levels] == [1, 2]


def test_invoice_pdf(cw: Any) -> None:
    resp = cw.get("finance/invoices/30/pdf", headers=dict(cw.headers, Accept="application/pdf"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-1.4") and resp.content.rstrip().endswith(b"%%EOF")
    assert b"Invoice 10030" in resp.content


def test_ten_thousand_invoices_load_with_their_unposted_rows() -> None:
    """Loading time is a figure of benchmarks/demo_data.py; this checks what is loaded."""
    data = generate(seed=42, scale=10_000)["connectwise"]
    sandbox = ConnectWiseSandbox(data=data)
    assert len(sandbox.store.unposted["invoices"]) == 10_129
    assert sandbox.dump()["tables"]["invoices"][-1]["id"] == 10_150
    last = sandbox.store.unposted["invoices"][max(sandbox.store.unposted["invoices"])]
    assert last["billingLogId"] == 10_150 and last["stateTaxFlag"] is False


def test_cli_rejects_bad_switch() -> None:
    result = CliRunner().invoke(connectwise, ["--switch", "sim.cw_nonsense=1", "--port", "0"])
    assert result.exit_code != 0 and "unknown switch" in result.output


def test_members_carry_their_invoicing_display_options(cw: Any) -> None:
    """Real members carry these settings; the sandbox's left them out (CW-REF key-schemas)."""
    members = cw.get("system/members").json()
    assert members and all(
        m["agreementInvoicingDisplayOptions"] in ("RemainOnInvoicingScreen", "ShowRecentInvoices")
        and m["invoicingDisplayOptions"] in ("RemainOnInvoicingScreen", "ShowRecentInvoices")
        and m["invoiceScreenDefaultTabFormat"] in ("ShowInvoicingTab", "ShowAgreementInvoicingTab")
        for m in members)
    assert all(m["restrictLocationFlag"] is False and "password" not in m for m in members)
    filtered = cw.get("system/members?conditions=restrictLocationFlag=false").json()
    assert len(filtered) == len(members)
