"""Company settings per realm, and the Preferences and CompanyInfo objects they show through."""

from __future__ import annotations

from typing import Any

SETTING_DEFAULTS: dict[str, Any] = {
    "country": "US",
    "ast": False,
    "using_sales_tax": True,
    "class_tracking": False,       # False | True (per line) | "txn" | "line"
    "location_tracking": False,
    "account_numbers": False,
    "multicurrency": False,
    "home_currency": "USD",
    "custom_txn_numbers": True,
    "allow_shipping": False,
    "allow_discount": True,
    "allow_deposit": True,
    "e_payments": False,
    "book_close_date": None,
    "track_inventory": True,
    "default_terms": None,         # a Term Id
    "custom_fields": [],           # [{"DefinitionId": "1", "Name": "Crew #", "Type": "StringType"}]
    "department_terminology": "Location",
}

ISO3 = {"US": "USA", "CA": "CAN", "GB": "GBR", "UK": "GBR", "AU": "AUS", "IN": "IND", "FR": "FRA"}
CURRENCY_NAMES = {"USD": "United States Dollar", "CAD": "Canadian Dollar", "EUR": "Euro",
                  "GBP": "British Pound Sterling", "AUD": "Australian Dollar", "INR": "Indian Rupee"}


def settings_with_defaults(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Fill in every setting the data set left out."""
    values = dict(SETTING_DEFAULTS)
    values.update(settings or {})
    return values


def is_us(settings: dict[str, Any]) -> bool:
    """US companies use the TAX/NON line codes and (optionally) AST."""
    return str(settings.get("country", "US")).upper() in ("US", "USA", "UNITED STATES")


def currency_ref(code: str) -> dict[str, str]:
    """A CurrencyRef with the currency's display name."""
    return {"value": code, "name": CURRENCY_NAMES.get(code, code)}


def _class_flags(value: Any) -> tuple[bool, bool]:
    if value == "txn":
        return True, False
    if value in ("line", True):
        return False, True
    return False, False


def preferences(settings: dict[str, Any]) -> dict[str, Any]:
    """The Preferences body (README §14.16) for these settings, without server fields."""
    per_txn, per_line = _class_flags(settings.get("class_tracking"))
    accounting: dict[str, Any] = {
        "TrackDepartments": bool(settings.get("location_tracking")),
        "DepartmentTerminology": settings.get("department_terminology") or "Location",
        "ClassTrackingPerTxn": per_txn,
        "ClassTrackingPerTxnLine": per_line,
        "UseAccountNumbers": bool(settings.get("account_numbers")),
        "FirstMonthOfFiscalYear": "January",
        "TaxYearMonth": "January",
        "CustomerTerminology": "Customers",
    }
    if settings.get("book_close_date"):
        accounting["BookCloseDate"] = settings["book_close_date"]
    custom = []
    for index, definition in enumerate(settings.get("custom_fields") or [], start=1):
        custom.append({"Name": f"SalesFormsPrefs.UseSalesCustom{index}", "Type": "BooleanType",
                       "BooleanValue": True})
        custom.append({"Name": f"SalesFormsPrefs.SalesCustomName{index}", "Type": "StringType",
                       "StringValue": definition.get("Name", f"Custom {index}")})
    sales: dict[str, Any] = {
        "CustomField": [{"CustomField": custom}] if custom else [],
        "CustomTxnNumbers": bool(settings.get("custom_txn_numbers")),
        "AllowShipping": bool(settings.get("allow_shipping")),
        "AllowDiscount": bool(settings.get("allow_discount")),
        "AllowDeposit": bool(settings.get("allow_deposit")),
        "AllowEstimates": True,
        "AllowServiceDate": False,
        "ETransactionPaymentEnabled": bool(settings.get("e_payments")),
        "ETransactionEnabledStatus": "NotApplicable",
        "AutoApplyCredit": True,
        "IPNSupportEnabled": False,
        "UsingPriceLevels": False,
        "UsingProgressInvoicing": False,
        "EmailCopyToCompany": False,
        "PrintItemWithZeroAmount": False,
    }
    if settings.get("default_terms"):
        sales["DefaultTerms"] = {"value": str(settings["default_terms"])}
    home = settings.get("home_currency") or "USD"
    return {
        "AccountingInfoPrefs": accounting,
        "ProductAndServicesPrefs": {"ForSales": True, "ForPurchase": True,
                                    "QuantityWithPriceAndRate": True,
                                    "QuantityOnHand": bool(settings.get("track_inventory"))},
        "SalesFormsPrefs": sales,
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": True, "BillableExpenseTracking": True,
                                    "POCustomField": []},
        "TaxPrefs": {"UsingSalesTax": bool(settings.get("using_sales_tax")),
                     "PartnerTaxEnabled": bool(settings.get("ast")) and is_us(settings)},
        "CurrencyPrefs": {"MultiCurrencyEnabled": bool(settings.get("multicurrency")),
                          "HomeCurrency": {"value": home}},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.DefaultCustomerMessage",
                                      "Value": "Thank you for your business."}]},
        "Id": "1",
        "domain": "QBO",
        "sparse": False,
    }


def settings_from_preferences(prefs: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """After a Preferences update, keep the settings (which drive behaviour) in step."""
    acc = prefs.get("AccountingInfoPrefs", {})
    sales = prefs.get("SalesFormsPrefs", {})
    tax = prefs.get("TaxPrefs", {})
    cur = prefs.get("CurrencyPrefs", {})
    updated = dict(settings)
    per_txn, per_line = acc.get("ClassTrackingPerTxn"), acc.get("ClassTrackingPerTxnLine")
    updated["class_tracking"] = "line" if per_line else ("txn" if per_txn else False)
    updated["location_tracking"] = bool(acc.get("TrackDepartments"))
    updated["account_numbers"] = bool(acc.get("UseAccountNumbers"))
    updated["book_close_date"] = acc.get("BookCloseDate")
    updated["custom_txn_numbers"] = bool(sales.get("CustomTxnNumbers"))
    updated["allow_shipping"] = bool(sales.get("AllowShipping"))
    updated["e_payments"] = bool(sales.get("ETransactionPaymentEnabled"))
    updated["default_terms"] = (sales.get("DefaultTerms") or {}).get("value")
    updated["using_sales_tax"] = bool(tax.get("UsingSalesTax"))
    updated["ast"] = bool(tax.get("PartnerTaxEnabled"))
    updated["multicurrency"] = bool(cur.get("MultiCurrencyEnabled"))
    updated["home_currency"] = (cur.get("HomeCurrency") or {}).get("value", settings.get("home_currency"))
    return updated


def company_info(realm_id: str, settings: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """CompanyInfo (README §14.15): seeded fields win; address countries are ISO alpha-3 since 2025."""
    country = str(settings.get("country") or "US").upper()
    name = given.get("CompanyName") or f"Sandbox Company {realm_id[-4:]}"
    default_addr = {"Line1": "2700 Coast Ave", "City": "Mountain View",
                    "CountrySubDivisionCode": "CA", "PostalCode": "94043"} if is_us(settings) else {
        "Line1": "100 King St W", "City": "Toronto", "CountrySubDivisionCode": "ON",
        "PostalCode": "M5X 1A9"}
    address = dict(given.get("CompanyAddr") or default_addr)
    address.setdefault("Country", ISO3.get(country, country))
    address.setdefault("Id", "1")
    info: dict[str, Any] = {
        "CompanyName": name,
        "LegalName": name,
        "CompanyAddr": address,
        "CustomerCommunicationAddr": dict(address),
        "LegalAddr": dict(address),
        "PrimaryPhone": {},
        "CompanyStartDate": "2024-01-01",
        "FiscalYearStartMonth": "January",
        "Country": country,
        "Email": {"Address": "noreply@sandbox.invalid"},
        "WebAddr": {},
        "SupportedLanguages": "en",
        "NameValue": [{"Name": "NeoEnabled", "Value": "true"},
                      {"Name": "IndustryType", "Value": "Information Technology Services"},
                      {"Name": "SubscriptionStatus", "Value": "PAID"},
                      {"Name": "OfferingSku", "Value": "QuickBooks Online Advanced"},
                      {"Name": "PayrollFeature", "Value": "false"}],
    }
    info.update({k: v for k, v in given.items() if k not in ("Id", "SyncToken", "MetaData")})
    info.update({"Id": "1", "domain": "QBO", "sparse": False})
    return info
