"""The sandbox's answers have the shape of the real samples (keys, no nulls, `_info`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from typing import Iterator

DATA = Path(__file__).parent / "data"


def sample(name: str) -> Any:
    """A copied reference sample (see data/README.md); never read from the shared folder."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, nested ones included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def _no_nulls(doc: Any) -> None:
    assert all(value is not None for _, value in walk(doc))


def _same_shape(ours: dict[str, Any], theirs: dict[str, Any], optional: set[str]) -> None:
    """Every key of the sample is present (recursively for references), except `optional`."""
    missing = set(theirs) - set(ours) - optional
    assert not missing, missing
    for key, value in theirs.items():
        if isinstance(value, dict) and key in ours and key != "_info":
            _same_shape(ours[key], value, optional={"symbol", "typeId", "mobileGuid"})
        if key == "_info" or (key in ours and isinstance(value, dict) and "_info" in value):
            assert "_info" in (ours if key == "_info" else ours.get(key, {}))


def test_unposted_invoice_matches_real_sample(cw: Any) -> None:
    ours = cw.get("finance/accounting/unpostedinvoices/870030").json()
    theirs = sample("unposted_invoice.real.json")
    _same_shape(ours, theirs, optional=set())
    assert isinstance(ours["dueDays"], str) and ours["id"] != ours["billingLogId"]
    assert ours["location"]["_info"]["location_href"].startswith(cw.base)
    _no_nulls(ours)


def test_invoice_matches_real_sample(cw: Any) -> None:
    ours = cw.get("finance/invoices/1").json()
    theirs = sample("invoice.real.json")
    _same_shape(ours, theirs, optional={"templateSetupId", "emailTemplateId",
                                        "addToBatchEmailList", "restrictDownpaymentFlag",
                                        "topComment", "bottomComment",
                                        "downpaymentPreviouslyTaxedFlag",
                                        "overrideDownPaymentAmountFlag", "previousProgressApplied",
                                        "serviceAdjustmentAmount", "remainingDownpayment"})
    assert ours["glBatch"]["_info"]["batch_href"].startswith(cw.base)
    _no_nulls(ours)


def test_product_item_matches_real_sample(cw: Any) -> None:
    ours = cw.get("procurement/products/1").json()
    theirs = sample("product_item.real.json")
    optional = {"margin", "agreementAmount", "vendorSku", "specialOrderFlag",
                "phaseProductFlag", "quantityCancelled", "cancelledReason",
                "productSuppliedFlag", "subContractorAmountLimit", "opportunity",
                "calculatedPriceFlag", "calculatedCostFlag", "forecastDetailId", "cancelledBy",
                "cancelledDate", "listPrice", "needToPurchaseFlag",
                "minimumStockFlag", "poApprovedFlag"}
    _same_shape(ours, theirs, optional)
    _no_nulls(ours)


def test_expense_entry_matches_real_sample(cw: Any) -> None:
    ours = cw.get("expense/entries/1").json()
    theirs = sample("expense_entry.real.json")
    _same_shape(ours, theirs, optional={"mobileGuid"})
    assert isinstance(ours["classification"], dict)
    unposted = cw.get("finance/accounting/unpostedexpenses?conditions=expenseDetailId=1").json()
    assert isinstance(unposted[0]["classification"], str)


def test_glexport_transaction_matches_vendor_sample(cw: Any) -> None:
    ours = cw.post("finance/accounting/export", json={
        "exportInvoicesFlag": True, "includedInvoiceIds": [30]}).json()
    theirs = sample("glexport_invoice.derived.json")
    renamed = {"shipCompanyAccountNumber", "shipCompanyType", "shipTaxId"}   # 2011 names
    _same_shape(ours["transactions"][0], theirs["transactions"][0], optional=renamed)
    assert {"shipToCompanyAccountNumber", "shipToCompanyType", "shipToTaxId"} <= set(
        ours["transactions"][0])
    detail_keys = set(theirs["transactions"][0]["detail"][0]) - {"dropShippedFlag"}
    assert detail_keys - set(ours["transactions"][0]["detail"][0]) <= {
        "costAccountNumber", "inventoryAccountNumber", "uomScheduleXref", "inventoryXref",
        "cogsXref", "taxAgencyXref", "taxable2Flag", "taxable3Flag", "taxable4Flag",
        "taxable5Flag"}
    customer_keys = set(theirs["customers"][0]) - set(ours["customers"][0])
    assert not customer_keys, customer_keys
    _no_nulls(ours)


def test_glexport_purchase_matches_vendor_sample(cw: Any) -> None:
    ours = cw.post("finance/accounting/export", json={"exportProductsFlag": True}).json()
    theirs = sample("glexport_procurement.derived.json")
    tx = ours["purchaseTransactions"][0]
    optional = {"shipToCompanyAccountNumber", "shipToCompanyType", "shipToContact",
                "shipToSite", "taxAgencyXref", "stateTaxXref", "countyTaxXref", "cityTaxXref",
                "purchaseHeaderTaxGroup", "shipToCompany"}
    _same_shape(tx, theirs["purchaseTransactions"][0], optional)
    assert isinstance(tx["id"], str)
    assert set(theirs["vendors"][0]) - set(ours["vendors"][0]) == set()


def test_accounting_batch_matches_vendor_sample(cw: Any) -> None:
    ours = cw.get("finance/accounting/batches/1").json()
    theirs = sample("accounting_batch.vendor_sample.json")
    assert set(theirs) <= set(ours)
    assert set(ours["_info"]) == {"lastUpdated", "updatedBy"}


@pytest.mark.parametrize("name", ["error_400_invalidobject.real.json",
                                  "error_auth_usernotauthenticated.real.json"])
def test_error_bodies_match_real_samples(cw: Any, name: str) -> None:
    theirs = sample(name)
    if theirs["message"] == "UserNotAuthenticated":
        cw.sim("POST", "switches", json={"cw_cloud_mode": False})
        ours = cw.get("system/info", headers={"clientId": cw.creds["client_id"]}).json()
        assert ours == theirs
        return
    ours = cw.post("finance/accounting/batches", json={"exportInvoicesFlag": True}).json()
    assert set(ours) == set(theirs)
    assert set(ours["errors"][0]) == set(theirs["errors"][0])


def test_vendor_payment_request_body_is_accepted(cw: Any) -> None:
    body = dict(sample("invoice_payment_request.vendor_sample.json"), invoice={"id": 61})
    resp = cw.post("finance/invoices/61/payments", json=body)
    assert resp.status_code == 201
    assert resp.json()["paymentDate"] == body["paymentDate"]
