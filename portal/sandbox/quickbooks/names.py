"""Name-list entities (Customer, Vendor, Employee, Item, Account, Class, Department, Term, tax lists)."""

from __future__ import annotations

from typing import Any

from . import faults
from .context import Ctx, check_length, resolve, trim_names
from .prefs import currency_ref, is_us
from .store import ITEM_NAMES

ACCOUNT_TYPES: dict[str, tuple[str, str]] = {
    "Bank": ("Asset", "Checking"),
    "Other Current Asset": ("Asset", "OtherCurrentAssets"),
    "Fixed Asset": ("Asset", "OtherFixedAssets"),
    "Other Asset": ("Asset", "OtherLongTermAssets"),
    "Accounts Receivable": ("Asset", "AccountsReceivable"),
    "Equity": ("Equity", "OpeningBalanceEquity"),
    "Expense": ("Expense", "OtherMiscellaneousServiceCost"),
    "Other Expense": ("Expense", "OtherMiscellaneousExpense"),
    "Cost of Goods Sold": ("Expense", "SuppliesMaterialsCogs"),
    "Accounts Payable": ("Liability", "AccountsPayable"),
    "Credit Card": ("Liability", "CreditCard"),
    "Long Term Liability": ("Liability", "NotesPayable"),
    "Other Current Liability": ("Liability", "OtherCurrentLiabilities"),
    "Income": ("Revenue", "ServiceFeeIncome"),
    "Other Income": ("Revenue", "OtherMiscellaneousIncome"),
}
SUBTYPE_TO_TYPE = {sub: kind for kind, (_, sub) in ACCOUNT_TYPES.items()}
SUBTYPE_TO_TYPE.update({"UndepositedFunds": "Other Current Asset", "Inventory": "Other Current Asset",
                        "SalesOfProductIncome": "Income", "CashOnHand": "Bank", "Savings": "Bank"})
ITEM_TYPES = ("Service", "NonInventory", "Inventory", "Category", "Group")
OTHER_NAME_DETAIL = ("The name supplied already exists. : Another {what} is already using this name. "
                     "Please use a different name.")


def _display_name(obj: dict[str, Any]) -> str:
    parts = [obj.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
    return " ".join(str(p).strip() for p in parts if p and str(p).strip())


def _unique_person(ctx: Ctx, entity: str, obj: dict[str, Any]) -> None:
    holder = ctx.realm.find_person(obj["DisplayName"])
    if holder is not None and holder != (entity, obj.get("Id")):
        raise faults.duplicate_name()


def _address_ids(ctx: Ctx, obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        addr = obj.get(key)
        if isinstance(addr, dict) and addr and "Id" not in addr:
            addr["Id"] = ctx.realm.address_id()


def _person_common(ctx: Ctx, entity: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    trim_names(ctx, obj, ("DisplayName", "GivenName", "FamilyName", "CompanyName", "PrintOnCheckName"))
    if not obj.get("DisplayName"):
        built = _display_name(obj) or (obj.get("CompanyName") or "").strip()
        if not built:
            raise faults.ApiFault("6080", "No Name Provided",
                                  "Need to provide at least one of Title, GivenName, MiddleName, "
                                  "FamilyName, DisplayName, Suffix", "")
        obj["DisplayName"] = built
    check_length(obj, "DisplayName", 500)
    for key in ("GivenName", "FamilyName", "MiddleName", "CompanyName"):
        check_length(obj, key, 100)
    _unique_person(ctx, entity, obj)
    obj.setdefault("PrintOnCheckName", obj.get("CompanyName") or obj["DisplayName"])
    obj.setdefault("Active", True)
    obj.setdefault("CurrencyRef", currency_ref(ctx.settings.get("home_currency") or "USD"))
    _address_ids(ctx, obj, ("BillAddr", "ShipAddr"))


def prepare_customer(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Customers and sub-customers (jobs): name rules, hierarchy, balances."""
    _person_common(ctx, "Customer", obj, old)
    check_length(obj, "Notes", 2000)
    parent = resolve(ctx, obj.get("ParentRef"), "Customer")
    if parent is not None:
        level = int(parent.get("Level", 0)) + 1
        if level > 4:
            raise faults.ApiFault("6180", "Sub Level Limit",
                                  "Business Validation Error: Sub-customers can be nested at most "
                                  "5 levels deep.", "")
        obj["ParentRef"] = {"value": parent["Id"]}
        obj["Job"] = True
        obj["Level"] = level
        obj["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{obj['DisplayName']}"
        obj.setdefault("BillWithParent", False)
    else:
        obj.pop("ParentRef", None)
        obj.pop("Level", None)
        obj["Job"] = False
        obj["FullyQualifiedName"] = obj["DisplayName"]
        obj["BillWithParent"] = False
    term = resolve(ctx, obj.get("SalesTermRef"), "Term")
    if term is not None:
        obj["SalesTermRef"] = {"value": term["Id"]}
    if is_us(ctx.settings):
        obj.setdefault("Taxable", True)
    obj.setdefault("PreferredDeliveryMethod", "Print")
    obj.setdefault("IsProject", False)
    if old is None:
        opening = round(float(obj.get("Balance", 0) or 0), 2)
        ctx.realm.opening_balances[obj["Id"]] = opening
        obj["Balance"] = opening
    else:
        obj["Balance"] = old.get("Balance", 0)
    obj["BalanceWithJobs"] = obj["Balance"]


def prepare_vendor(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Vendors: shared name uniqueness, masked tax id."""
    _person_common(ctx, "Vendor", obj, old)
    check_length(obj, "AcctNum", 100)
    term = resolve(ctx, obj.get("TermRef"), "Term")
    if term is not None:
        obj["TermRef"] = {"value": term["Id"]}
    tax_id = obj.get("TaxIdentifier")
    if isinstance(tax_id, str) and tax_id and not tax_id.startswith("X"):
        obj["TaxIdentifier"] = "XXXXXX" + tax_id[-4:]
    obj.setdefault("Vendor1099", False)
    obj["Balance"] = old.get("Balance", 0) if old else 0


def prepare_employee(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Employees: a given or family name is required; SSN is only ever shown masked."""
    if not (obj.get("GivenName") or obj.get("FamilyName")):
        raise faults.required("GivenName")
    _person_common(ctx, "Employee", obj, old)
    if obj.get("SSN"):
        obj["SSN"] = "XXX-XX-XXXX"
    obj.setdefault("BillableTime", False)


def _unique_named(ctx: Ctx, entity: str, obj: dict[str, Any], what: str) -> None:
    holder = ctx.realm.find_named(entity, obj["FullyQualifiedName"])
    if holder is not None and holder != obj.get("Id"):
        raise faults.duplicate_name(OTHER_NAME_DETAIL.format(what=what))


def _hierarchy(ctx: Ctx, entity: str, obj: dict[str, Any], sub_flag: str | None,
               parent_ok: tuple[str, ...] | None = None) -> None:
    parent = resolve(ctx, obj.get("ParentRef"), entity)
    if parent is not None:
        if parent_ok is not None and parent.get("Type") not in parent_ok:
            raise faults.business("The parent must be a category.")
        level = int(parent.get("Level", 0)) + 1
        if level > 4:
            raise faults.ApiFault("6180", "Sub Level Limit",
                                  "Business Validation Error: Lists can be nested at most 5 levels.", "")
        obj["ParentRef"] = {"value": parent["Id"]}
        obj["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{obj['Name']}"
        obj["Level"] = level
        if sub_flag:
            obj[sub_flag] = True
    else:
        obj.pop("ParentRef", None)
        obj.pop("Level", None)
        obj["FullyQualifiedName"] = obj["Name"]
        if sub_flag:
            obj[sub_flag] = False


def _named_common(ctx: Ctx, obj: dict[str, Any], max_len: int) -> None:
    trim_names(ctx, obj, ("Name",))
    if not obj.get("Name"):
        raise faults.required("Name")
    check_length(obj, "Name", max_len)
    obj.setdefault("Active", True)


def prepare_item(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Products and services; inventory items need their accounts and quantities."""
    _named_common(ctx, obj, 100)
    check_length(obj, "Description", 4000)
    kind = obj.get("Type")
    if not kind:
        raise faults.required("Type")
    if kind not in ITEM_TYPES:
        raise faults.ApiFault("2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}", "Type")
    for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
        account = resolve(ctx, obj.get(key), "Account")
        if account is not None:
            obj[key] = {"value": account["Id"], "name": account.get("Name")}
    if kind == "Service" and not obj.get("IncomeAccountRef"):
        raise faults.required("IncomeAccountRef")
    if kind == "NonInventory" and not (obj.get("IncomeAccountRef") or obj.get("ExpenseAccountRef")):
        raise faults.required("IncomeAccountRef")
    if kind == "Inventory":
        for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "InvStartDate"):
            if not obj.get(key):
                raise faults.required(key)
        if old is not None and old.get("TrackQtyOnHand") and obj.get("TrackQtyOnHand") is False:
            raise faults.business("You can't turn off quantity tracking for an inventory item.")
        if obj.get("TrackQtyOnHand") is not True:
            raise faults.required("TrackQtyOnHand")
        if obj.get("QtyOnHand") is None:
            raise faults.ApiFault("6520", "Missing Tracked Inventory Item Quantity",
                                  "Business Validation Error: Enter the quantity on hand.", "")
    else:
        obj.setdefault("TrackQtyOnHand", False)
    _hierarchy(ctx, "Item", obj, "SubItem", ("Category",) if kind == "Category" else None)
    _unique_named(ctx, "Item", obj, "product or service")
    holder = ctx.realm.find_named(ITEM_NAMES, obj["Name"])
    if holder is not None and holder != obj.get("Id"):
        raise faults.duplicate_name(OTHER_NAME_DETAIL.format(what="product or service"))
    if kind != "Category":
        obj.setdefault("UnitPrice", 0)
        obj.setdefault("PurchaseCost", 0)
        if is_us(ctx.settings):
            obj.setdefault("Taxable", False)


def prepare_account(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Chart of accounts: type/subtype/classification, numbers, deactivation suffix."""
    _named_common(ctx, obj, 100)
    if '"' in obj["Name"] or ":" in obj["Name"]:
        raise faults.ApiFault("2040", "Invalid String",
                              "Invalid String : Name cannot contain a quote or a colon.", "Name")
    kind, sub = obj.get("AccountType"), obj.get("AccountSubType")
    if not kind and not sub:
        raise faults.ApiFault("6010", "Invalid Account.AccountType && Account.SubType",
                              "Invalid Account.AccountType && Account.SubType", "")
    if not kind:
        kind = SUBTYPE_TO_TYPE.get(sub)
        if kind is None:
            raise faults.ApiFault("6010", "Invalid Account.AccountType && Account.SubType",
                                  f"Invalid Account.AccountType && Account.SubType : {sub}", "")
        obj["AccountType"] = kind
    if kind not in ACCOUNT_TYPES:
        raise faults.ApiFault("6010", "Invalid Account.AccountType && Account.SubType",
                              f"Invalid Account.AccountType && Account.SubType : {kind}", "")
    classification, default_sub = ACCOUNT_TYPES[kind]
    obj.setdefault("AccountSubType", default_sub)
    obj["Classification"] = classification
    number = obj.get("AcctNum")
    if number:
        if ":" in str(number):
            raise faults.ApiFault("2040", "Invalid String",
                                  "Invalid String : AcctNum cannot contain a colon.", "AcctNum")
        limit = 20 if str(ctx.settings.get("country", "US")).upper() in ("AU", "CA") else 7
        check_length(obj, "AcctNum", limit)
    check_length(obj, "Description", 100)
    if old is not None and obj.get("Active") is False and old.get("Active") is not False \
            and ctx.switches.get("sim.qbo_account_deleted_suffix") \
            and not obj["Name"].endswith(" (deleted)"):
        obj["Name"] = obj["Name"] + " (deleted)"
    if obj.get("Active") is not False and obj["Name"].endswith(" (deleted)") and old is not None \
            and old.get("Active") is False:
        obj["Name"] = obj["Name"][: -len(" (deleted)")]
    _hierarchy(ctx, "Account", obj, "SubAccount")
    _unique_named(ctx, "Account", obj, "account")
    obj.setdefault("CurrencyRef", currency_ref(ctx.settings.get("home_currency") or "USD"))
    balance = 0 if obj.get("Active") is False else float(obj.get("CurrentBalance", 0) or 0)
    obj["CurrentBalance"] = balance
    obj["CurrentBalanceWithSubAccounts"] = balance


def prepare_class(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Classes (class tracking)."""
    _named_common(ctx, obj, 100)
    _hierarchy(ctx, "Class", obj, "SubClass")
    _unique_named(ctx, "Class", obj, "class")


def prepare_department(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Departments, which the QBO UI calls locations."""
    _named_common(ctx, obj, 100)
    _hierarchy(ctx, "Department", obj, "SubDepartment")
    _unique_named(ctx, "Department", obj, "location")


def prepare_term(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Payment terms; DueDays drive invoice due dates."""
    _named_common(ctx, obj, 31)
    obj["FullyQualifiedName"] = obj["Name"]
    kind = obj.setdefault("Type", "DATE_DRIVEN" if obj.get("DayOfMonthDue") else "STANDARD")
    if kind == "STANDARD":
        obj.setdefault("DueDays", 0)
    _unique_named(ctx, "Term", obj, "term")
    obj.pop("FullyQualifiedName", None)


def prepare_taxrate(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Tax rates: read-only through the API, so only seeds (and taxservice) get here."""
    _named_common(ctx, obj, 100)
    obj["RateValue"] = float(obj.get("RateValue", 0) or 0)
    obj.setdefault("SpecialTaxType", "NONE")
    obj.setdefault("DisplayType", "ReadOnly")
    obj["FullyQualifiedName"] = obj["Name"]
    _unique_named(ctx, "TaxRate", obj, "tax rate")
    obj.pop("FullyQualifiedName", None)


def prepare_taxcode(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Tax codes: rate lists must point at existing tax rates."""
    _named_common(ctx, obj, 100)
    obj.setdefault("Description", obj["Name"])
    obj.setdefault("Hidden", False)
    obj.setdefault("Taxable", True)
    obj.setdefault("TaxGroup", False)
    obj.setdefault("TaxCodeConfigType", "USER_DEFINED")
    for list_key in ("SalesTaxRateList", "PurchaseTaxRateList"):
        details = (obj.get(list_key) or {}).get("TaxRateDetail") or []
        for detail in details:
            rate = resolve(ctx, detail.get("TaxRateRef"), "TaxRate", allow_inactive=True)
            if rate is not None:
                detail["TaxRateRef"] = {"value": rate["Id"], "name": rate["Name"]}
        obj[list_key] = {"TaxRateDetail": details}
    obj["FullyQualifiedName"] = obj["Name"]
    _unique_named(ctx, "TaxCode", obj, "tax code")
    obj.pop("FullyQualifiedName", None)
