"""The QuickBooks half of the demo data set: two companies in QBO API JSON, with string Ids."""

from __future__ import annotations

from typing import Any

from . import names as N
from .connectwise import BATCHED, BATCHED_CREDIT_MEMO, COLLIDING_INVOICE

# Id, Name, AccountType, AcctNum, parent Id
ACCOUNTS = [
    ("1", "Operating Checking", "Bank", "1000", None),
    ("2", "Accounts Receivable", "Accounts Receivable", "1200", None),
    ("3", "Inventory Asset", "Other Current Asset", "1300", None),
    ("4", "Accounts Payable", "Accounts Payable", "2000", None),
    ("5", "Company Amex", "Credit Card", "2100", None),
    ("6", "Employee Reimbursements", "Other Current Liability", "2200", None),
    ("7", "Sales Tax Payable", "Other Current Liability", "2300", None),
    ("8", "Customer Deposits", "Other Current Liability", "2400", None),
    ("9", "Sales", "Income", "4000", None),
    ("10", "Managed Services", "Income", "4100", "9"),
    ("11", "Professional Services", "Income", "4200", "9"),
    ("12", "Project Services", "Income", "4300", "9"),
    ("13", "Hardware", "Income", "4400", "9"),
    ("14", "Software Licenses", "Income", "4500", "9"),
    ("15", "Cost of Goods Sold", "Cost of Goods Sold", "5000", None),
    ("16", "Hardware", "Cost of Goods Sold", "5100", "15"),
    ("17", "Software", "Cost of Goods Sold", "5200", "15"),
    ("18", "Freight In", "Cost of Goods Sold", "5300", "15"),
    ("19", "Inventory Shrinkage", "Cost of Goods Sold", "5400", "15"),
    ("20", "Travel", "Expense", "6100", None),
    ("21", "Mileage", "Expense", "6110", "20"),
    ("22", "Meals", "Expense", "6120", "20"),
    ("23", "Lodging", "Expense", "6130", "20"),
    ("24", "Office Supplies", "Expense", "6200", None),
    ("25", "Parts and Supplies", "Expense", "6300", None),
    ("26", "Undeposited Funds", "Other Current Asset", "1250", None),
]
SERVICE_ITEMS = [("Engineer-Remote", "11"), ("Engineer-On-Site", "11"),
                 ("Consultant-Remote", "11"), ("Project Manager-Remote", "12")]


def _ref(value: str, name: str | None = None) -> dict[str, str]:
    return {"value": value, "name": name} if name else {"value": value}


def _accounts() -> list[dict[str, Any]]:
    out = []
    for aid, name, atype, num, parent in ACCOUNTS:
        acct: dict[str, Any] = {"Id": aid, "Name": name, "AccountType": atype, "AcctNum": num,
                                "SubAccount": parent is not None, "Active": True}
        if parent:
            acct["ParentRef"] = _ref(parent)
        out.append(acct)
    return out


def _customers(cw: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """30 customers: 4 near-misses, the parent of two sub-customers, 25 exact matches."""
    out: list[dict[str, Any]] = []
    by_cw: dict[int, str] = {}

    def add(name: str, cw_id: int | None = None, **extra: Any) -> str:
        cid = str(len(out) + 1)
        out.append({"Id": cid, "DisplayName": name, "CompanyName": name.strip(),
                    "Active": True, "SalesTermRef": _ref("3"), **extra})
        if cw_id is not None:
            by_cw[cw_id] = cid
        return cid

    for cw_name, qbo_name, _ in N.NEAR_MISSES:
        add(qbo_name)
    add("Harborview Health")
    exact = [c for c in cw["tables"]["companies"] if 11 <= c["id"] <= 35]
    for company in exact:
        add(f"{company['name']} ({company['accountNumber']})", company["id"],
            PrimaryEmailAddr={"Address": company["invoiceToEmailAddress"]})
    return out, by_cw


def _invoice_lines(inv: dict[str, Any], items: dict[str, str]) -> list[dict[str, Any]]:
    lines = []
    for n, line in enumerate((ln for ln in inv["_lines"] if ln["glTypeId"] == "RP"), start=1):
        amount = round(-line["total"], 2)
        if inv["type"] == "CreditMemo":
            amount = round(line["total"], 2)
        lines.append({"Id": str(n), "LineNum": n, "DetailType": "SalesItemLineDetail",
                      "Amount": amount, "Description": line["description"],
                      "SalesItemLineDetail": {
                          "ItemRef": _ref(items.get(line.get("glItemId") or "", "1")),
                          "Qty": 1, "UnitPrice": amount, "TaxCodeRef": _ref("NON")}})
    return lines


def _documents(cw: dict[str, Any], customers: dict[int, str],
               items: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Invoices 1-20 posted earlier (20 paid, some partly), one credit memo, one collision."""
    invs = {i["id"]: i for i in cw["tables"]["invoices"]}
    out: dict[str, list[dict[str, Any]]] = {"Invoice": [], "CreditMemo": [], "Payment": []}
    qbo_ids: dict[int, str] = {}
    for iid in range(1, BATCHED + 1):
        inv = invs[iid]
        qid = str(100 + iid)
        qbo_ids[iid] = qid
        out["Invoice"].append({
            "Id": qid, "DocNumber": inv["invoiceNumber"], "TxnDate": inv["date"][:10],
            "DueDate": inv["dueDate"][:10], "CustomerRef": _ref(customers[inv["company"]["id"]]),
            "Line": _invoice_lines(inv, items), "SalesTermRef": _ref("1"),
            "PrivateNote": f"ConnectWise invoice {inv['invoiceNumber']}"})
    memo = invs[BATCHED_CREDIT_MEMO]
    out["CreditMemo"].append({
        "Id": "301", "DocNumber": memo["invoiceNumber"], "TxnDate": memo["date"][:10],
        "CustomerRef": _ref(customers[memo["company"]["id"]]), "Line": _invoice_lines(memo, items),
        "PrivateNote": f"ConnectWise invoice {memo['invoiceNumber']}"})
    colliding = invs[COLLIDING_INVOICE]
    out["Invoice"].append({
        "Id": "401", "DocNumber": colliding["invoiceNumber"], "TxnDate": "2026-06-15",
        "CustomerRef": _ref(customers[11]), "SalesTermRef": _ref("1"),
        "Line": [{"Id": "1", "LineNum": 1, "DetailType": "SalesItemLineDetail", "Amount": 75.0,
                  "Description": "Entered by hand in QuickBooks",
                  "SalesItemLineDetail": {"ItemRef": _ref("1"), "Qty": 1, "UnitPrice": 75.0,
                                          "TaxCodeRef": _ref("NON")}}]})
    pay_id = 500

    def payment(cust: str, day: str, lines: list[tuple[str, str, float]],
                unapplied: float = 0.0) -> None:
        nonlocal pay_id
        pay_id += 1
        cash = round(sum(a if t == "Invoice" else -a for _, t, a in lines) + unapplied, 2)
        out["Payment"].append({
            "Id": str(pay_id), "CustomerRef": _ref(cust), "TxnDate": day, "TotalAmt": cash,
            "DepositToAccountRef": _ref("26"),
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": txn, "TxnType": ttype}]}
                     for txn, ttype, amount in lines]})

    for iid in range(1, 17):  # invoice 15 is over-paid: 25.00 stays unapplied credit
        inv = invs[iid]
        payment(customers[inv["company"]["id"]], inv["dueDate"][:10],
                [(qbo_ids[iid], "Invoice", inv["total"])], 25.0 if iid == 15 else 0.0)
    for iid in (17, 18):
        inv = invs[iid]
        share = round(inv["total"] * (0.3 if iid == 18 else 0.5), 2)
        payment(customers[inv["company"]["id"]], inv["dueDate"][:10],
                [(qbo_ids[iid], "Invoice", share)])
    payment(customers[invs[18]["company"]["id"]], "2026-10-01",
            [(qbo_ids[18], "Invoice", round(invs[18]["total"] * 0.2, 2))])
    a, b2 = invs[19], invs[20]
    credit = round(-memo["total"], 2)
    payment(customers[a["company"]["id"]], "2026-09-15",
            [(qbo_ids[19], "Invoice", a["total"]), (qbo_ids[20], "Invoice", b2["total"]),
             ("301", "CreditMemo", credit)])
    return out


def _us_company(cw: dict[str, Any]) -> dict[str, Any]:
    customers, by_cw = _customers(cw)
    items = [{"Id": "1", "Name": "Services", "Type": "Service", "IncomeAccountRef": _ref("11"),
              "Active": True},
             {"Id": "2", "Name": N.MISMATCHED_ITEM, "Type": "Service", "Active": True,
              "IncomeAccountRef": _ref("13"), "Description": "Microsoft 365 Business Premium"},
             {"Id": "3", "Name": "Freight", "Type": "Service", "IncomeAccountRef": _ref("13"),
              "Active": True}]
    for name, account in SERVICE_ITEMS:
        items.append({"Id": str(len(items) + 1), "Name": name, "Type": "Service",
                      "IncomeAccountRef": _ref(account), "Active": True})
    item_ids = {item["Name"]: item["Id"] for item in items}
    vendors = [{"Id": str(n), "DisplayName": f"{name} ({vid})", "CompanyName": name,
                "Active": True} for n, (name, vid) in enumerate(N.VENDORS[:3], start=1)]
    vendors.append({"Id": "4", "DisplayName": N.VENDOR_NAMED_LIKE_CUSTOMER[1],
                    "CompanyName": N.VENDOR_NAMED_LIKE_CUSTOMER[0], "Active": True})
    vendors.append({"Id": "5", "DisplayName": "Alex Chen (V1001)", "CompanyName": "V1001",
                    "Active": True})
    twin = next(m for m in N.MEMBERS if m[0] == N.PAYROLL_TWIN)
    entities = {
        "Account": _accounts(), "Customer": customers, "Vendor": vendors,
        "Employee": [{"Id": "1", "DisplayName": f"{twin[1]} {twin[2]}", "GivenName": twin[1],
                      "FamilyName": twin[2], "Active": True},
                     {"Id": "2", "DisplayName": "Tom Baker", "GivenName": "Tom",
                      "FamilyName": "Baker", "Active": True}],
        "Item": items,
        "Class": [{"Id": "1", "Name": "Services", "SubClass": False, "Active": True},
                  {"Id": "2", "Name": "Managed", "SubClass": True, "ParentRef": _ref("1"),
                   "Active": True},
                  {"Id": "3", "Name": "Projects", "SubClass": True, "ParentRef": _ref("1"),
                   "Active": True},
                  {"Id": "4", "Name": "Products", "SubClass": False, "Active": True},
                  {"Id": "5", "Name": "Hardware", "SubClass": True, "ParentRef": _ref("4"),
                   "Active": True},
                  {"Id": "6", "Name": "Software", "SubClass": True, "ParentRef": _ref("4"),
                   "Active": True}],
        "Department": [{"Id": str(n), "Name": name, "SubDepartment": False, "Active": True}
                       for n, (_, name, _) in enumerate(N.LOCATIONS, start=1)],
        "Term": [{"Id": "1", "Name": "Net 30", "DueDays": 30, "Active": True},
                 {"Id": "2", "Name": "Net 15", "DueDays": 15, "Active": True},
                 {"Id": "3", "Name": "Due on receipt", "DueDays": 0, "Active": True}],
        "TaxRate": [{"Id": "1", "Name": "NY State", "RateValue": "4", "Active": True,
                     "AgencyRef": _ref("1")},
                    {"Id": "2", "Name": "NYC Local", "RateValue": "4.5", "Active": True,
                     "AgencyRef": _ref("2")},
                    {"Id": "3", "Name": "NJ State", "RateValue": "6.625", "Active": True,
                     "AgencyRef": _ref("3")}],
        "TaxCode": [_tax_code("1", "NYC Combined", ["1", "2"]), _tax_code("2", "NJ State", ["3"])],
    }
    entities.update(_documents(cw, by_cw, item_ids))
    return {"realmId": N.US_REALM,
            "settings": {"country": "US", "ast": False, "class_tracking": True,
                         "location_tracking": True, "account_numbers": True,
                         "multicurrency": False, "home_currency": "USD"},
            "CompanyInfo": {"CompanyName": N.COMPANY_NAME, "LegalName": "Northwind Managed IT LLC",
                            "Country": "US", "CompanyAddr": {"Line1": "1 Harbor Way",
                                                             "City": "New York",
                                                             "CountrySubDivisionCode": "NY",
                                                             "PostalCode": "10004"},
                            "Email": {"Address": "accounts@northwind.example"}},
            "entities": entities}


def _tax_code(cid: str, name: str, rates: list[str],
              purchase_rates: tuple[str, ...] = ()) -> dict[str, Any]:
    """A tax code; Canadian codes also carry purchase rates (input tax credits), which
    QuickBooks applies to bills and expenses."""
    def details(ids: Any) -> dict[str, Any]:
        return {"TaxRateDetail": [{"TaxRateRef": _ref(r), "TaxTypeApplicable": "TaxOnAmount",
                                   "TaxOrder": 0} for r in ids]}

    return {"Id": cid, "Name": name, "Description": name, "Active": True, "Taxable": True,
            "TaxGroup": True, "SalesTaxRateList": details(rates),
            "PurchaseTaxRateList": details(purchase_rates)}


def _canada_company() -> dict[str, Any]:
    accounts = [{"Id": "1", "Name": "Chequing", "AccountType": "Bank", "AcctNum": "1000",
                 "SubAccount": False, "Active": True},
                {"Id": "2", "Name": "Accounts Receivable", "AccountType": "Accounts Receivable",
                 "AcctNum": "1200", "SubAccount": False, "Active": True},
                {"Id": "3", "Name": "Sales", "AccountType": "Income", "AcctNum": "4000",
                 "SubAccount": False, "Active": True},
                {"Id": "4", "Name": "GST/HST Payable", "AccountType": "Other Current Liability",
                 "AcctNum": "2300", "SubAccount": False, "Active": True}]
    for aid, name, atype, num, parent in (  # what procurement posts to (SPEC 9.2)
            ("5", "Accounts Payable", "Accounts Payable", "2000", None),
            ("6", "Inventory Asset", "Other Current Asset", "1300", None),
            ("7", "Hardware", "Income", "4400", "3"),
            ("8", "Software Licenses", "Income", "4500", "3"),
            ("9", "Cost of Goods Sold", "Cost of Goods Sold", "5000", None),
            ("10", "Hardware", "Cost of Goods Sold", "5100", "9"),
            ("11", "Software", "Cost of Goods Sold", "5200", "9")):
        account: dict[str, Any] = {"Id": aid, "Name": name, "AccountType": atype,
                                   "AcctNum": num, "SubAccount": parent is not None,
                                   "Active": True}
        if parent:
            account["ParentRef"] = _ref(parent)
        accounts.append(account)
    return {"realmId": N.CA_REALM,
            "settings": {"country": "CA", "ast": False, "class_tracking": False,
                         "location_tracking": False, "account_numbers": True,
                         "multicurrency": False, "home_currency": "CAD"},
            "CompanyInfo": {"CompanyName": "Northwind Canada", "Country": "CA",
                            "CompanyAddr": {"Line1": "200 Bay Street", "City": "Toronto",
                                            "CountrySubDivisionCode": "ON",
                                            "PostalCode": "M5J 2J2"}},
            "entities": {
                "Account": accounts,
                "Customer": [{"Id": "1", "DisplayName": "Maple Leaf Clinics (MAPLELF)",
                              "CompanyName": "Maple Leaf Clinics", "Active": True}],
                "Vendor": [], "Employee": [],
                "Item": [{"Id": "1", "Name": "Services", "Type": "Service",
                          "IncomeAccountRef": _ref("3"), "Active": True}],
                "Class": [], "Department": [],
                "Term": [{"Id": "1", "Name": "Net 30", "DueDays": 30, "Active": True}],
                "TaxRate": [{"Id": "1", "Name": "GST", "RateValue": "5", "Active": True},
                            {"Id": "2", "Name": "HST ON", "RateValue": "13", "Active": True},
                            {"Id": "3", "Name": "QST", "RateValue": "9.975", "Active": True},
                            {"Id": "4", "Name": "GST ITC", "RateValue": "5", "Active": True},
                            {"Id": "5", "Name": "HST ON ITC", "RateValue": "13",
                             "Active": True},
                            {"Id": "6", "Name": "QST ITR", "RateValue": "9.975",
                             "Active": True}],
                "TaxCode": [_tax_code("1", "GST", ["1"], ("4",)),
                            _tax_code("2", "HST ON", ["2"], ("5",)),
                            _tax_code("3", "GST/QST QC", ["1", "3"], ("4", "6")),
                            {"Id": "4", "Name": "Exempt", "Active": True, "Taxable": False,
                             "TaxGroup": True,
                             "SalesTaxRateList": {"TaxRateDetail": []},
                             "PurchaseTaxRateList": {"TaxRateDetail": []}}],
                "Invoice": [], "CreditMemo": [], "Payment": []}}


def build(cw: dict[str, Any]) -> dict[str, Any]:
    """The "quickbooks" part, in the format the QBO sandbox loads."""
    return {"apps": [dict(N.QBO_APP)], "companies": [_us_company(cw), _canada_company()]}
