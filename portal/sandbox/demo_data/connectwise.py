"""The ConnectWise half of the demo data set: the tables the CW sandbox loads."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from ..connectwise import glexport
from . import names as N

START = date(2026, 7, 1)
DAYS = 122                      # four months of closed invoices
CURATED_INVOICES = 150
BATCHED = 20                    # invoices 1-20 are already posted (and paid in QuickBooks)
CREDIT_MEMOS = range(141, 149)  # invoice ids of the 8 credit memos
ZERO_INVOICE = 149
NO_GL_INVOICE = 150
BATCHED_CREDIT_MEMO = 141       # applied with invoices 19 and 20 in one QBO payment
CLOSED_BATCHES = 5              # the first five historical batches are closed
COLLIDING_INVOICE = 42          # QuickBooks already has an invoice with this number
WISEPAY_INVOICE = 16            # paid in ConnectWise through WisePay (never deleted by sync)


def number_of(invoice_id: int) -> str:
    """The printed invoice number of an invoice id (numbers run 10,000 above ids)."""
    return str(10000 + invoice_id)


def iso(day: date) -> str:
    """A CW date-time string for a day (`YYYY-MM-DDT00:00:00Z`)."""
    return f"{day.isoformat()}T00:00:00Z"


def ref(kind: str, path: str, rid: int, **fields: Any) -> dict[str, Any]:
    """A reference object with its `_info` href on the `{base}` placeholder."""
    return {"id": rid, **fields, "_info": {f"{kind}_href": f"{{base}}{path}/{rid}"}}


class Builder:
    """Accumulates tables and id counters while the data set is generated."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rnd = random.Random(seed)
        self.t: dict[str, list[dict[str, Any]]] = {}
        self.gl_id = 1000
        self.detail_id = 500000
        self.unposted_inv = 870000
        self.unposted_exp = 50000
        self.unposted_proc = 30000
        self.companies: dict[int, dict[str, Any]] = {}
        self.customer_ids: list[int] = []

    def add(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Append a row to a table."""
        self.t.setdefault(table, []).append(row)
        return row

    def gl(self, kind: str, owner: int, gtype: str, amount: float, account: str,
           description: str, klass: str = "", **extra: Any) -> int:
        """Create one GL entry for a record and return its id."""
        self.gl_id += 1
        self.add("gl_entries", {"id": self.gl_id, "type": gtype, "amount": round(amount, 2),
                                "description": description[:100], "segment1": account,
                                "segment2": klass or None, "isBatched": False,
                                "_kind": kind, "_owner": owner, "_batch": None, **extra,
                                "_info": {"lastUpdated": "2026-07-01T00:00:00Z",
                                          "updatedBy": "system"}})
        return self.gl_id


def _info(day: date | str, who: str = "admin") -> dict[str, str]:
    stamp = day if isinstance(day, str) else iso(day)
    return {"lastUpdated": stamp, "updatedBy": who}


def _setup(b: Builder) -> None:
    for lid, name, level in N.LOCATIONS:
        b.add("locations", {"id": lid, "ownerLevelId": 1, "name": name, "locationFlag": True,
                            "structureLevel": {"id": level, "name": f"Level {level}"},
                            "reportsTo": None if lid == 1 else ref("location", "system/locations",
                                                                   1, name="Corporate"),
                            "_info": _info(START)})
    for lid, name in N.TERRITORIES:
        b.add("locations", {"id": lid, "ownerLevelId": 1, "name": name, "locationFlag": False,
                            "clientFlag": False, "structureLevel": {"id": 3, "name": "Territory"},
                            "_info": _info(START)})
    for rid, name, rate in N.WORK_ROLES:
        b.add("work_roles", {"id": rid, "name": name, "hourlyRate": rate, "inactiveFlag": False,
                             "_info": _info(START)})
    for tid, name, mult in N.WORK_TYPES:
        b.add("work_types", {"id": tid, "name": name, "billTime": "Billable",
                             "rateType": "Multiplier", "rate": mult, "inactiveFlag": False,
                             "_info": _info(START)})
    for tid, name, days, xref in N.BILLING_TERMS:
        b.add("billing_terms", {"id": tid, "name": name, "defaultFlag": tid == 1,
                                "dueDays": days, "termsXref": xref, "_info": _info(START)})
    b.add("billing_statuses", {"id": 1, "name": "New", "sortOrder": 1, "defaultFlag": True,
                               "closedFlag": False, "inactiveFlag": False, "sentFlag": False,
                               "_info": _info(START)})
    b.add("billing_statuses", {"id": 2, "name": "Closed", "sortOrder": 2, "defaultFlag": False,
                               "closedFlag": True, "inactiveFlag": False, "sentFlag": True,
                               "_info": _info(START)})
    words = ("One", "Two", "Three", "Four", "Five", "Six")
    for cid, ident, desc, levels in N.TAX_CODES:
        code: dict[str, Any] = {"id": cid, "identifier": ident, "description": desc,
                                "invoiceCaption": desc[:25], "effectiveDate": "2020-01-01T00:00:00Z",
                                "defaultFlag": cid == 3, "_info": _info(START)}
        for n, (rate, caption, xref, agency) in enumerate(levels):
            w = words[n]
            code.update({f"level{w}Rate": rate, f"level{w}RateType": "Percent",
                         f"level{w}Caption": caption, f"level{w}TaxCodeXref": xref,
                         f"level{w}AgencyXref": agency, f"level{w}ServicesFlag": False,
                         f"level{w}ExpensesFlag": False, f"level{w}ProductsFlag": True})
        b.add("tax_codes", code)
    for cid, code, name, symbol in ((1, "USD", "US Dollar", "$"), (2, "EUR", "Euro", "\u20ac"),
                                    (3, "CAD", "Canadian Dollar", "$")):
        b.add("currencies", {"id": cid, "currencyIdentifier": code, "name": name,
                             "symbol": symbol, "displayIdFlag": False, "displaySymbolFlag": True,
                             "currencyCode": code, "thousandsSeparator": ",",
                             "decimalSeparator": ".", "negativeParenthesesFlag": False,
                             "rightAlign": False, "numberOfDecimals": 2, "_info": _info(START)})
    for uid, name in ((1, "Each"), (2, "Hour"), (3, "Month")):
        b.add("uoms", {"id": uid, "name": name, "inactiveFlag": False, "defaultFlag": uid == 1,
                       "uomScheduleXref": "DEFAULT", "_info": _info(START)})
    for pid, name, xref in N.PRODUCT_TYPES:
        b.add("product_types", {"id": pid, "name": name, "inactiveFlag": False,
                                "typeXref": xref, "defaultFlag": pid == 2, "_info": _info(START)})
    for eid, name, account in N.EXPENSE_TYPES:
        b.add("expense_types", {"id": eid, "name": name, "amountCaption": "Amount",
                                "reimbursementRate": 0.67 if name == "Mileage" else None,
                                "billExpenses": "Billable", "invoiceMarkupOption": "Percent",
                                "mileageFlag": name == "Mileage", "inactiveFlag": False,
                                "integrationXRef": account, "_info": _info(START)})
    b.add("accounting_packages", {"id": 1, "identifier": "QB99", "name": "QuickBooks Online"})
    b.add("accounting_package_setup", {
        "id": 1, "accountingPackage": {"id": 1, "identifier": "QB99", "name": "QuickBooks Online"},
        "directTransferFlag": False, "includeInvoicesFlag": True, "invoiceFormat": "Default",
        "includeExpensesFlag": True, "transferExpensesAsBillFlag": False,
        "expenseFormat": "Default", "suppressMemoFlag": False, "syncPaymentInfoFlag": True,
        "syncWisePayPaymentInfoFlag": False, "includeSalesTaxFlag": True,
        "enableTaxGroupsFlag": True, "zeroDollarTaxAmountsFlag": False, "includeItemsFlag": True,
        "inventorySOHFlag": False, "sendComponentAmountFlag": False, "sendUomFlag": False,
        "includeCogsEntriesFlag": True, "includeCogsDropShipFlag": False, "_info": _info(START)})
    _gl_accounts(b)


def _gl_accounts(b: Builder) -> None:
    """GL account mappings: which GL string each mapped record type posts to."""
    rows = [("AR", "Accounts Receivable", N.AR, None), ("AP", "Accounts Payable", N.AP, None),
            ("ST", "Sales Tax", N.SALES_TAX, None), ("RA", "Agreement", N.MANAGED, N.CLASS_MANAGED),
            ("RD", "Down Payment", N.DEPOSITS, None), ("R", "Time", N.PROFESSIONAL, N.CLASS_MANAGED),
            ("R", "Project", N.PROJECTS, N.CLASS_PROJECTS), ("IA", "Inventory Adjustment",
                                                              N.SHRINKAGE, None),
            ("FT", "Freight", N.FREIGHT, None)]
    for n, (gtype, mapped, account, klass) in enumerate(rows, start=1):
        b.add("gl_accounts", {"id": n, "glType": gtype,
                              "mappedType": {"id": n, "name": mapped},
                              "mappedRecord": {"id": n, "name": mapped},
                              "segment1": account, "segment2": klass, "_info": _info(START)})
    base = len(rows)
    for n, item in enumerate(N.CATALOG, start=1):
        b.add("gl_accounts", {"id": base + n, "glType": "RP",
                              "mappedType": {"id": 20, "name": "Product"},
                              "mappedRecord": {"id": item[0], "name": item[1]},
                              "segment1": item[4], "segment2": _product_class(item[4]),
                              "cogs1": item[5], "inventory": item[6], "productId": item[1],
                              "_info": _info(START)})
    base += len(N.CATALOG)
    for n, (eid, name, account) in enumerate(N.EXPENSE_TYPES, start=1):
        b.add("gl_accounts", {"id": base + n, "glType": "EE",
                              "mappedType": {"id": 30, "name": "Expense Type"},
                              "mappedRecord": {"id": eid, "name": name}, "segment1": account,
                              "_info": _info(START)})


def _product_class(account: str) -> str:
    return N.CLASS_SOFTWARE if account in (N.SOFTWARE, N.CLOUD) else (
        N.CLASS_MANAGED if account == N.MANAGED else N.CLASS_HARDWARE)


def _members(b: Builder) -> None:
    for n, (ident, first, last, role, loc, vendor) in enumerate(N.MEMBERS, start=1):
        lname = next(x[1] for x in N.LOCATIONS if x[0] == loc)
        b.add("members", {
            "id": n, "identifier": ident, "firstName": first, "lastName": last,
            "licenseClass": "F", "vendorNumber": vendor, "inactiveFlag": False,
            "hireDate": "2021-03-01T00:00:00Z", "officeEmail": f"{ident}@northwind.example",
            "defaultEmail": "Office", "defaultPhone": "Office",
            "securityRole": {"id": 2, "name": "Technician"},
            "defaultLocation": ref("location", "system/locations", loc, name=lname),
            "workRole": ref("workRole", "time/workRoles", role,
                            name=N.WORK_ROLES[role - 1][1]),
            "workType": ref("workType", "time/workTypes", 1, name="Remote"),
            "dailyCapacity": 8.0, "hourlyRate": N.WORK_ROLES[role - 1][2],
            "_systemLevel": 2, "_info": _info(START)})
    ident, first, last = N.API_MEMBER
    b.add("members", {
        "id": N.CREDENTIALS["member_id"], "identifier": ident, "firstName": first,
        "lastName": last, "licenseClass": "A", "inactiveFlag": False,
        "hireDate": "2026-06-01T00:00:00Z", "defaultEmail": "Office", "defaultPhone": "Office",
        "securityRole": {"id": 10, "name": "QuickBooks Sync"},
        "structureLevel": {"id": 1, "name": "Level 1"},
        "securityLocation": ref("location", "system/locations", 1, name="Corporate"),
        "defaultLocation": ref("location", "system/locations", 1, name="Corporate"),
        "_systemLevel": 1, "_info": _info(START)})


def company_ref(company: dict[str, Any]) -> dict[str, Any]:
    """The CompanyReference of a company record."""
    return ref("company", "company/companies", company["id"], identifier=company["identifier"],
               name=company["name"])


def _company(b: Builder, cid: int, name: str, account: str, *, tax: int, loc: int, terms: int,
             currency: int = 1, vendor: bool = False, customer: bool = True) -> dict[str, Any]:
    ident = "".join(ch for ch in name.split(":")[-1] if ch.isalnum())[:25] or f"C{cid}"
    types = []
    if customer:
        types.append({"id": 1, "name": "Customer"})
    if vendor:
        types.append({"id": 5, "name": "Vendor"})
    site_id = cid * 10 + 1
    city = ["New York", "Boston", "Newark", "Seattle", "Portland"][cid % 5]
    state = ["NY", "MA", "NJ", "WA", "OR"][cid % 5]
    term = N.BILLING_TERMS[terms - 1]
    tax_code = N.TAX_CODES[tax - 1]
    contact_id = cid * 10 + 2
    company = {
        "id": cid, "identifier": ident, "name": name,
        "status": {"id": 1, "name": "Active"}, "addressLine1": f"{100 + cid} Main Street",
        "city": city, "state": state, "zip": f"{10000 + cid * 37 % 89999:05d}",
        "country": {"id": 1, "name": "United States"} if currency == 1 else {"id": 2,
                                                                             "name": "Germany"},
        "phoneNumber": f"555{cid:07d}", "accountNumber": account,
        "territory": ref("location", "system/locations", 4 if loc == 2 else 5,
                         name=N.TERRITORIES[0 if loc == 2 else 1][1]),
        "defaultContact": ref("contact", "company/contacts", contact_id,
                              name=f"Billing {ident}"),
        "billingContact": ref("contact", "company/contacts", contact_id,
                              name=f"Billing {ident}"),
        "billingTerms": ref("billingTerms", "finance/billingTerms", term[0], name=term[1]),
        "taxCode": ref("taxCode", "finance/taxCodes", tax_code[0], name=tax_code[1]),
        "billingSite": ref("site", f"company/companies/{cid}/sites", site_id, name="Main"),
        "site": ref("site", f"company/companies/{cid}/sites", site_id, name="Main"),
        "invoiceToEmailAddress": f"ap@{ident.lower()}.example",
        "currency": _currency(currency), "isVendorFlag": vendor,
        "vendorIdentifier": account if vendor else None, "types": types,
        "deletedFlag": False, "_location": loc, "_info": _info(START),
    }
    b.add("companies", company)
    b.add("sites", {"id": site_id, "name": "Main", "addressLine1": company["addressLine1"],
                    "city": city, "stateReference": {"id": cid % 5 + 1, "identifier": state},
                    "zip": company["zip"], "defaultBillingFlag": True,
                    "defaultShippingFlag": True, "primaryAddressFlag": True,
                    "inactiveFlag": False, "company": company_ref(company),
                    "_info": _info(START)})
    b.add("contacts", {"id": contact_id, "firstName": "Billing", "lastName": ident,
                       "company": company_ref(company), "inactiveFlag": False,
                       "defaultFlag": True, "defaultBillingFlag": True,
                       "communicationItems": [
                           {"id": contact_id, "type": {"id": 1, "name": "Email"},
                            "value": f"billing@{ident.lower()}.example", "defaultFlag": True,
                            "communicationType": "Email"},
                           {"id": contact_id + 1, "type": {"id": 2, "name": "Direct"},
                            "value": company["phoneNumber"], "defaultFlag": True,
                            "communicationType": "Phone"}],
                       "_info": _info(START)})
    b.companies[cid] = company
    return company


def _currency(cid: int) -> dict[str, Any]:
    code, name, symbol = {1: ("USD", "US Dollar", "$"), 2: ("EUR", "Euro", "\u20ac"),
                          3: ("CAD", "Canadian Dollar", "$")}[cid]
    return {"id": cid, "symbol": symbol, "currencyCode": code,
            "decimalSeparator": ".", "numberOfDecimals": 2, "thousandsSeparator": ",",
            "negativeParenthesesFlag": False, "displaySymbolFlag": True,
            "currencyIdentifier": code, "displayIdFlag": False, "rightAlign": False,
            "name": name,
            "_info": {"currency_href": f"{{base}}finance/currencies/{cid}"}}


def _companies(b: Builder) -> None:
    for n, (name, account, tax, loc, terms) in enumerate(N.CUSTOMERS, start=1):
        _company(b, n, name, account, tax=tax, loc=loc, terms=terms,
                 currency=2 if name == N.EUR_CUSTOMER else 1,
                 vendor=name == N.VENDOR_AND_CUSTOMER)
        b.customer_ids.append(n)
    for n, (name, vid) in enumerate(N.VENDORS, start=len(N.CUSTOMERS) + 1):
        _company(b, n, name, vid, tax=3, loc=1, terms=1, vendor=True, customer=False)


def _catalog(b: Builder) -> None:
    for cid, ident, desc, ptype, income, cogs, inv, price, cost, taxable, serial in N.CATALOG:
        ptype_name = N.PRODUCT_TYPES[ptype - 1][1]
        category = ident.split(":")[0] if ":" in ident else "Services"
        b.add("catalog", {
            "id": cid, "identifier": ident, "description": desc, "inactiveFlag": False,
            "subcategory": {"id": cid, "name": category}, "category": {"id": 1, "name": category},
            "type": ref("type", "procurement/types", ptype, name=ptype_name),
            "productClass": "Inventory" if ptype == 1 else ("Service" if ptype == 3 else
                                                            "NonInventory"),
            "serializedFlag": serial, "unitOfMeasure": {"id": 1, "name": "Each"},
            "price": price, "cost": cost, "taxableFlag": taxable,
            "customerDescription": desc, "integrationXRef": ident,
            "vendor": company_ref(b.companies[len(N.CUSTOMERS) + 1]),
            "_incomeAccount": income, "_cogsAccount": cogs, "_inventoryAccount": inv,
            "_typeXref": ptype_name, "_info": _info(START)})


def _tax_levels(code_id: int, taxable: float) -> list[dict[str, Any]]:
    levels = N.TAX_CODES[code_id - 1][3]
    return [{"taxLevel": n, "taxRate": rate, "taxCodeXref": xref, "agency": agency,
             "taxAmount": round(taxable * rate / 100, 2), "taxableAmount": round(taxable, 2)}
            for n, (rate, _, xref, agency) in enumerate(levels, start=1)]


def _line(b: Builder, *, account: str, klass: str, description: str, qty: float,
          price: float, taxable: bool, item: tuple | None = None, role: int | None = None,
          wtype: int | None = None, time_entry: int | None = None,
          serials: str = "") -> dict[str, Any]:
    """One GL detail line, signed opposite to the invoice (a credit on a positive invoice)."""
    b.detail_id += 1
    total = round(qty * price, 2)
    line: dict[str, Any] = {
        "id": b.detail_id, "accountNumber": account, "glClass": klass, "glTypeId": "RP",
        "glItemId": item[1] if item else "", "invoiceSummaryOption": "0",
        "cost": item[8] if item else 0.0, "salesCode": "", "memo": description,
        "description": "Service" if time_entry else description, "quantity": -qty,
        "total": -total, "costAccountNumber": item[5] if item else "",
        "inventoryAccountNumber": item[6] if item else "", "productAccountNumber": account,
        "taxCodeXref": "", "taxNote": "", "taxRate": 0.0, "taxRatePercent": 0.0,
        "taxableFlag": taxable, "itemTaxableFlag": taxable, "itemPrice": price,
        "itemCost": item[8] if item else 0.0,
        "itemDescription": item[2] if item else description,
        "salesDescription": item[2] if item else description,
        "unitOfMeasure": {"id": 2, "name": "Hour"} if time_entry else {"id": 1, "name": "Each"},
        "serializedFlag": bool(item and item[10]), "serialNumbers": serials,
        "dropShippedFlag": False,
        "itemTypeXref": N.PRODUCT_TYPES[item[3] - 1][1] if item else "Service",
        "locationXref": "DEFAULT",
    }
    if item:
        line["item"] = {"id": item[0], "identifier": item[1], "serializedFlag": item[10]}
        line["product"] = {"id": item[0], "description": item[2]}
    if time_entry:
        line["timeEntry"] = {"id": time_entry}
    if role:
        line["_workRole"] = N.WORK_ROLES[role - 1][1]
        line["_workType"] = N.WORK_TYPES[(wtype or 1) - 1][1]
    return line


KIND_PLAN = (["Agreement"] * 40 + ["Ticket"] * 35 + ["Project"] * 15 + ["Product"] * 30
             + ["DownPayment"] * 5 + ["Miscellaneous"] * 15)


def _time_lines(b: Builder, iid: int, company: dict[str, Any], day: date, project: bool,
                count: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Time entries on one ticket (service or project) and their invoice lines."""
    table = "project_tickets" if project else "service_tickets"
    tid = len(b.t.get(table, [])) + (5001 if project else 1001)
    summary = b.rnd.choice(["Email migration", "Firewall upgrade", "New hire setup",
                            "Backup failure", "VPN issue", "Server patching"])
    ticket = {"id": tid, "summary": summary, "company": company_ref(company),
              "status": {"id": 1, "name": "Closed"}, "closedFlag": True,
              "_info": _info(day)}
    if project:
        ticket["project"] = {"id": 300 + iid % 40, "name": f"{company['identifier']} rollout"}
        ticket["phase"] = {"id": 1, "name": "Implementation"}
    b.add(table, ticket)
    lines = []
    for _ in range(count):
        mid = b.rnd.randint(1, len(N.MEMBERS))
        member = N.MEMBERS[mid - 1]
        role = member[3]
        wtype = b.rnd.choice([1, 1, 2, 3])
        hours = b.rnd.choice([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
        rate = round(N.WORK_ROLES[role - 1][2] * N.WORK_TYPES[wtype - 1][2], 2)
        te_id = len(b.t.get("time_entries", [])) + 1
        b.add("time_entries", {
            "id": te_id, "company": company_ref(company), "chargeToId": tid,
            "chargeToType": "ProjectTicket" if project else "ServiceTicket",
            "member": ref("member", "system/members", mid, identifier=member[0],
                          name=f"{member[1]} {member[2]}"),
            "locationId": company["_location"],
            "workRole": ref("workRole", "time/workRoles", role, name=N.WORK_ROLES[role - 1][1]),
            "workType": ref("workType", "time/workTypes", wtype, name=N.WORK_TYPES[wtype - 1][1]),
            "timeStart": iso(day).replace("T00", "T14"), "actualHours": hours,
            "hoursBilled": hours, "billableOption": "Billable",
            "notes": f"{summary}: worked with the client on site." if wtype == 2 else
            f"{summary}: remote session.", "hourlyRate": rate,
            "invoice": {"id": iid, "identifier": number_of(iid)},
            "ticket": {"id": tid, "summary": summary}, "_info": _info(day)})
        lines.append(_line(b, account=N.PROJECTS if project else N.PROFESSIONAL,
                           klass=N.CLASS_PROJECTS if project else N.CLASS_MANAGED,
                           description=f"Ticket #{tid} - {summary}", qty=hours, price=rate,
                           taxable=False, role=role, wtype=wtype, time_entry=te_id))
    return lines, ticket


def _product_lines(b: Builder, iid: int, company: dict[str, Any],
                   day: date) -> list[dict[str, Any]]:
    lines = []
    for _ in range(b.rnd.randint(1, 3)):
        item = N.CATALOG[b.rnd.choice([0, 1, 2, 3, 3, 4, 5])]
        qty = float(b.rnd.randint(1, 12))
        serials = f"FGT60F{b.rnd.randint(100000, 999999)}" if item[10] else ""
        line = _line(b, account=item[4], klass=_product_class(item[4]), description=item[2],
                     qty=qty, price=item[7], taxable=item[9], item=item, serials=serials)
        lines.append(line)
        pid = len(b.t.get("products", [])) + 1
        b.add("products", {
            "id": pid, "catalogItem": ref("catalog", "procurement/catalog", item[0],
                                          identifier=item[1]),
            "description": item[2], "sequenceNumber": float(len(lines)), "quantity": qty,
            "unitOfMeasure": ref("uom", "procurement/unitOfMeasures", 1, name="Each"),
            "price": item[7], "cost": item[8], "priceMethod": "FlatRateForRange",
            "extPrice": round(qty * item[7], 2), "extCost": round(qty * item[8], 2),
            "billableOption": "Billable", "locationId": company["_location"],
            "location": ref("location", "system/locations", company["_location"],
                            name=next(x[1] for x in N.LOCATIONS if x[0] == company["_location"])),
            "businessUnitId": 1, "businessUnit": ref("department", "system/departments", 1,
                                                     name="Services"),
            "taxCode": dict(company["taxCode"]), "taxableFlag": item[9], "dropshipFlag": False, "cancelledFlag": False,
            "customerDescription": item[2], "company": company_ref(company),
            "productClass": "Inventory" if item[3] == 1 else "NonInventory",
            "invoice": {"id": iid, "identifier": number_of(iid)},
            "serialNumbers": [serials] if serials else None, "uom": "Each",
            "_info": _info(day)})
    return lines


def _lines_for(b: Builder, kind: str, iid: int, company: dict[str, Any],
               day: date) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Detail lines and header extras (type, ticket/project/agreement) for one invoice kind."""
    if kind == "Agreement":
        price = float(b.rnd.choice([450, 900, 1250, 1800, 2400, 3200]))
        lines = [_line(b, account=N.MANAGED, klass=N.CLASS_MANAGED,
                       description=f"Managed Services - {day:%B %Y}", qty=1, price=price,
                       taxable=False)]
        if b.rnd.random() < 0.3:
            item = N.CATALOG[7]
            lines.append(_line(b, account=item[4], klass=N.CLASS_MANAGED, description=item[2],
                               qty=float(b.rnd.randint(2, 10)), price=item[7], taxable=False,
                               item=item))
        if b.rnd.random() < 0.3:
            item = N.CATALOG[5]
            lines.append(_line(b, account=item[4], klass=N.CLASS_MANAGED,
                               description="Backup - " + item[2], qty=float(b.rnd.randint(1, 4)),
                               price=item[7], taxable=False, item=item))
        return lines, {"type": "Agreement", "applyToType": "Agreement",
                       "agreement": {"id": 100 + company["id"],
                                     "name": f"{company['identifier']} Managed Services"}}
    if kind in ("Ticket", "Project"):
        lines, ticket = _time_lines(b, iid, company, day, kind == "Project", b.rnd.randint(1, 4))
        extra: dict[str, Any] = {"type": "Progress" if kind == "Project" else "Standard",
                                 "applyToType": "Project" if kind == "Project" else "Ticket",
                                 "applyToId": ticket["id"], "_hasTime": True}
        if kind == "Project":
            extra["project"] = dict(ticket["project"])
        else:
            extra["ticket"] = {"id": ticket["id"], "summary": ticket["summary"]}
        return lines, extra
    if kind == "Product":
        return _product_lines(b, iid, company, day), {"type": "Standard", "_hasProducts": True}
    if kind == "Bundle":  # benchmarks: a ticket's time plus the products sold with it
        lines, ticket = _time_lines(b, iid, company, day, False, b.rnd.randint(3, 5))
        lines += _product_lines(b, iid, company, day)
        return lines, {"type": "Standard", "applyToType": "Ticket", "applyToId": ticket["id"],
                       "ticket": {"id": ticket["id"], "summary": ticket["summary"]},
                       "_hasTime": True, "_hasProducts": True}
    if kind == "DownPayment":
        price = float(b.rnd.choice([1000, 2500, 5000]))
        return [_line(b, account=N.DEPOSITS, klass="", description="Down payment", qty=1,
                      price=price, taxable=False)], {"type": "DownPayment"}
    if kind == "CreditMemo":
        price = float(b.rnd.choice([100, 150, 250, 400]))
        return [_line(b, account=N.MANAGED, klass=N.CLASS_MANAGED,
                      description="Credit - service level adjustment", qty=-1, price=price,
                      taxable=False)], {"type": "CreditMemo"}
    if kind == "Zero":
        return [_line(b, account=N.PROFESSIONAL, klass=N.CLASS_MANAGED,
                      description="Warranty work - no charge", qty=1, price=0.0,
                      taxable=False)], {"type": "Standard"}
    price = float(b.rnd.choice([95, 150, 275, 600]))
    return [_line(b, account=N.PROFESSIONAL, klass=N.CLASS_MANAGED,
                  description="On-site visit fee", qty=1, price=price, taxable=False)], {
        "type": "Miscellaneous"}


def make_invoice(b: Builder, iid: int, kind: str, company: dict[str, Any], day: date,
                 with_gl: bool = True) -> dict[str, Any]:
    """One closed invoice with its GL detail lines, tax levels and GL entries."""
    lines, extra = _lines_for(b, kind, iid, company, day)
    subtotal = float(round(-sum(line["total"] for line in lines), 2))
    taxable_base = round(-sum(line["total"] for line in lines if line["taxableFlag"]), 2)
    code_id = company["taxCode"]["id"]
    levels = [lv for lv in _tax_levels(code_id, taxable_base) if taxable_base]
    for lv in levels:
        b.detail_id += 1
        lines.append({"id": b.detail_id, "accountNumber": N.SALES_TAX, "glClass": "",
                      "glTypeId": "ST", "glItemId": "", "invoiceSummaryOption": "0",
                      "cost": 0.0, "memo": "Sales Tax",
                      "description": f"Level {lv['taxLevel']} Sales Tax", "quantity": 0.0,
                      "total": -lv["taxAmount"], "taxCodeXref": lv["taxCodeXref"],
                      "taxAgencyXref": lv["agency"], "taxNote": "AUTOSTAX",
                      "taxRate": round(lv["taxRate"] / 100, 6), "taxRatePercent": lv["taxRate"],
                      "taxableFlag": False, "itemPrice": 0.0, "itemCost": 0.0,
                      "locationXref": "DEFAULT"})
    tax = float(round(sum(lv["taxAmount"] for lv in levels), 2))
    total = round(subtotal + tax, 2)
    term = next(t for t in N.BILLING_TERMS if t[0] == company["billingTerms"]["id"])
    loc = company["_location"]
    loc_name = next(x[1] for x in N.LOCATIONS if x[0] == loc)
    header_class = loc_name
    inv: dict[str, Any] = {
        "id": iid, "invoiceNumber": number_of(iid), "type": "Standard",
        "status": {"id": 2, "name": "Closed", "isClosed": True},
        "company": company_ref(company), "billToCompany": company_ref(company),
        "shipToCompany": company_ref(company), "accountNumber": company["accountNumber"],
        "applyToType": "All", "attention": f"Billing {company['identifier']}",
        "billingSite": dict(company["billingSite"]),
        "billingSiteAddressLine1": company["addressLine1"], "billingSiteCity": company["city"],
        "billingSiteState": company["state"], "billingSiteZip": company["zip"],
        "billingSiteCountry": company["country"]["name"],
        "shippingSite": dict(company["billingSite"]),
        "shippingSiteAddressLine1": company["addressLine1"], "shippingSiteCity": company["city"],
        "shippingSiteState": company["state"], "shippingSiteZip": company["zip"],
        "shippingSiteCountry": company["country"]["name"],
        "billingTerms": dict(company["billingTerms"]), "reference": "",
        "customerPO": f"PO-{company['identifier'][:4].upper()}-{iid}" if iid % 7 == 0 else None,
        "date": iso(day), "locationId": loc,
        "location": ref("location", "system/locations", loc, name=loc_name),
        "departmentId": 1, "department": ref("department", "system/departments", 1,
                                             name="Services"),
        "territoryId": company["territory"]["id"], "territory": dict(company["territory"]),
        "taxableFlag": bool(levels), "taxCode": dict(company["taxCode"]),
        "currency": dict(company["currency"]), "dueDate": iso(day + timedelta(days=term[2])),
        "serviceTotal": round(-sum(ln["total"] for ln in lines if "timeEntry" in ln), 2),
        "expenseTotal": 0.0,
        "productTotal": round(-sum(ln["total"] for ln in lines if "item" in ln), 2),
        "agreementAmount": subtotal if kind == "Agreement" else 0.0, "downpaymentApplied": 0.0,
        "subtotal": subtotal, "total": total, "salesTax": tax, "closedBy": "sliu",
        "payments": 0.0, "credits": 0.0, "balance": total, "specialInvoiceFlag": False,
        "_unpostedId": b.unposted_inv + iid, "_lines": lines,
        "_taxLevels": [{k: v for k, v in lv.items() if k != "agency"} for lv in levels],
        "_arAccount": N.AR, "_taxAccount": N.SALES_TAX, "_glClass": header_class,
        "_dueDays": term[2], "_createdBy": "Sarah Liu",
        "_dateClosed": iso(day).replace("T00:00:00", "T17:30:00"),
        "_info": _info(iso(day).replace("T00:00:00", "T17:30:00"), "sliu"),
    }
    inv.update(extra)
    gl_ids: list[int] = []
    if with_gl:
        gl_ids.append(b.gl("invoice", iid, "AR", total, N.AR, "Accounts Receivable",
                           header_class))
        for line in lines:
            gl_ids.append(b.gl("invoice", iid, line["glTypeId"], line["total"],
                               line["accountNumber"], line["description"], line["glClass"]))
    inv["_glEntryIds"] = gl_ids
    b.add("invoices", inv)
    return inv


def _invoices(b: Builder) -> None:
    """The 150 curated invoices; 1-20 and credit memo 141 are posted and paid already."""
    plan = list(KIND_PLAN)
    b.rnd.shuffle(plan)
    exact_exempt = list(range(11, 28))   # customers matched exactly in QBO, tax exempt
    others = [c for c in b.customer_ids if c not in (5,)]
    for iid in range(1, CURATED_INVOICES + 1):
        if iid <= BATCHED:
            company = b.companies[12 if iid >= 19 else exact_exempt[(iid - 1) % len(exact_exempt)]]
            kind = "Agreement" if iid % 2 else "Miscellaneous"
            day = START + timedelta(days=iid)
        elif iid in CREDIT_MEMOS:
            company = b.companies[12 if iid == BATCHED_CREDIT_MEMO else others[iid % len(others)]]
            kind = "CreditMemo"
            day = START + timedelta(days=iid - 140 if iid == BATCHED_CREDIT_MEMO
                                    else b.rnd.randrange(DAYS))
        else:
            company = b.companies[others[b.rnd.randrange(len(others))]]
            if iid == 25:
                company = b.companies[5]          # Pinnacle Dental: QBO has a vendor named so
            kind = {ZERO_INVOICE: "Zero", NO_GL_INVOICE: "Miscellaneous"}.get(
                iid, plan[iid % len(plan)])
            day = START + timedelta(days=25 + b.rnd.randrange(DAYS - 25))
        make_invoice(b, iid, kind, company, day, with_gl=iid != NO_GL_INVOICE)
    _cancelled_quote_line(b, b.companies[3])


def _cancelled_quote_line(b: Builder, company: dict[str, Any]) -> None:
    """A product line of an opportunity that was cancelled before billing: never invoiced,
    and carrying the cancellation and forecast fields a real one has (CW sample)."""
    item = N.CATALOG[0]
    day = START + timedelta(days=10)
    b.add("products", {
        "id": len(b.t.get("products", [])) + 1,
        "catalogItem": ref("catalog", "procurement/catalog", item[0], identifier=item[1]),
        "description": item[2], "sequenceNumber": 1.0, "quantity": 1.0,
        "unitOfMeasure": ref("uom", "procurement/unitOfMeasures", 1, name="Each"),
        "price": item[7], "cost": item[8], "priceMethod": "FlatRateForRange",
        "extPrice": item[7], "extCost": item[8], "billableOption": "Billable",
        "locationId": company["_location"],
        "location": ref("location", "system/locations", company["_location"],
                        name=next(x[1] for x in N.LOCATIONS if x[0] == company["_location"])),
        "businessUnitId": 1, "businessUnit": ref("department", "system/departments", 1,
                                                 name="Services"),
        "taxCode": dict(company["taxCode"]), "taxableFlag": item[9], "dropshipFlag": False,
        "cancelledFlag": True, "quantityCancelled": 1.0,
        "cancelledReason": "Customer chose a different model", "cancelledBy": 1,
        "cancelledDate": f"{day.isoformat()}T15:21:50Z",
        "opportunity": ref("opportunity", "sales/opportunities", 3,
                           name=f"{company['name']} laptop refresh"),
        "forecastDetailId": 5, "customerDescription": item[2], "company": company_ref(company),
        "productClass": "Inventory", "uom": "Each", "_info": _info(day)})


def _historical_batches(b: Builder) -> None:
    """One batch per already-posted invoice (identifier scheme of SPEC §6.4)."""
    by_id = {inv["id"]: inv for inv in b.t["invoices"]}
    entries = {e["id"]: e for e in b.t["gl_entries"]}
    for n, iid in enumerate(list(range(1, BATCHED + 1)) + [BATCHED_CREDIT_MEMO], start=1):
        inv = by_id[iid]
        identifier = f"{inv['date'][:10]}-I{inv['invoiceNumber']}"
        batch = {"id": n, "batchIdentifier": identifier, "exportInvoicesFlag": True,
                 "exportExpensesFlag": False, "exportProductsFlag": False,
                 "closedFlag": n <= CLOSED_BATCHES, "_entryIds": list(inv["_glEntryIds"]),
                 "_info": _info(inv["date"], "qbsync")}
        b.add("batches", batch)
        for gl_id in inv["_glEntryIds"]:
            entries[gl_id]["_batch"] = n
            entries[gl_id]["isBatched"] = True
        inv["glBatch"] = {"id": n, "name": identifier,
                          "_info": {"batch_href": f"{{base}}finance/accounting/batches/{n}"}}


def _wisepay_payment(b: Builder) -> None:
    """Invoice 16, paid in full in QuickBooks, also carries a WisePay payment in ConnectWise:
    payment sync keeps it and writes no cash beside it (SPEC 4.2 `cw_payment_authority`)."""
    inv = next(i for i in b.t["invoices"] if i["id"] == WISEPAY_INVOICE)
    day = inv["dueDate"][:10]
    b.add("payments", {
        "id": 1, "type": "Payment", "source": "WisePay", "amount": inv["total"],
        "paymentDate": f"{day}T00:00:00Z", "appliedBy": "WisePay",
        "invoice": {"id": inv["id"], "identifier": inv["invoiceNumber"],
                    "billingType": inv.get("type"), "applyToType": "All",
                    "invoiceDate": inv.get("date"), "chargeFirmFlag": False,
                    "_info": {"invoice_href": f"{{base}}finance/invoices/{inv['id']}"}},
        "credit": None, "invoiceTotal": inv["total"], "invoiceBalance": 0.0, "balance": 0.0,
        "wisePayPayment": {"paymentDateUtc": f"{day}T15:04:00Z",
                           "wisePayReference": f"WP-{inv['invoiceNumber']}",
                           "batchPayment": {"amount": inv["total"],
                                            "wisePayHref": "https://wisepay.example/b/1"},
                           "feeInvoice": None},
        "_info": _info(day, "WisePay")})
    inv["payments"], inv["balance"] = inv["total"], 0.0


EXPENSE_PLAN = (["Reimbursable"] * 40 + ["NonReimbursable"] * 15 + ["Personal"] * 8
                + ["Unapproved"] * 7)


def make_expense(b: Builder, eid: int, plan: str, member_id: int, day: date, *,
                 amount: float | None = None, advance: bool = False) -> dict[str, Any]:
    """One expense entry with its two GL entries (expense line and offset). A negative
    `amount` is a refund; `advance` puts a non-reimbursable expense on the liability
    account of company advances instead of the card."""
    member = N.MEMBERS[(member_id - 1) % len(N.MEMBERS)]
    etype = N.EXPENSE_TYPES[b.rnd.randrange(len(N.EXPENSE_TYPES))]
    drawn = round(b.rnd.uniform(12, 480), 2)
    amount = drawn if amount is None else amount
    company = b.companies[b.customer_ids[b.rnd.randrange(len(b.customer_ids))]]
    classification = "Reimbursable" if plan in ("Reimbursable", "Unapproved") else plan
    card = plan in ("NonReimbursable", "Personal") and not advance
    offset = N.CARD if card else N.REIMBURSE
    week_start = day - timedelta(days=day.weekday())
    status = "PendingApproval" if plan == "Unapproved" else b.rnd.choice(
        ["ApprovedByTierOne", "ApprovedByTierTwo", "ReadyToBill", "Billed"])
    exp = {
        "id": eid,
        "expenseReport": ref("expenseReport", "expense/reports", 700 + eid // 5,
                             name=f"{week_start} to {week_start + timedelta(days=6)}"),
        "company": company_ref(company), "chargeToId": 1000 + eid, "chargeToType": "ServiceTicket",
        "type": ref("type", "expense/types", etype[0], name=etype[1]),
        "member": ref("member", "system/members", (member_id - 1) % len(N.MEMBERS) + 1,
                      identifier=member[0], name=f"{member[1]} {member[2]}"),
        "paymentMethod": ref("method", "expense/paymentTypes", 3 if advance else 2 if card else 1,
                             name="Company advance" if advance else
                             "Company credit card" if card else "Paid by employee"),
        "classification": ref("classification", "expense/classifications",
                              {"Reimbursable": 1, "NonReimbursable": 2, "Personal": 3}[
                                  classification],
                              name={"Reimbursable": "Reimbursable",
                                    "NonReimbursable": "Non-Reimbursable",
                                    "Personal": "Personal"}[classification]),
        "amount": amount, "billableOption": "DoNotBill", "date": iso(day),
        "locationId": member[4], "businessUnitId": 1,
        "notes": f"{etype[1]} for {company['name']}", "invoiceAmount": 0.0,
        "currency": _currency(1), "status": status, "billAmount": 0.0, "agreementAmount": 0.0,
        "_unpostedId": b.unposted_exp + eid, "_accountNumber": etype[2],
        "_creditAccount": offset, "_apAccount": N.AP, "_classification": classification,
        "_glClass": next(x[1] for x in N.LOCATIONS if x[0] == member[4]),
        "_periodStart": iso(week_start), "_periodEnd": iso(week_start + timedelta(days=6)),
        "_dateClosed": iso(day + timedelta(days=3)), "_info": _info(day),
    }
    exp["_glEntryIds"] = [b.gl("expense", eid, "EE", amount, etype[2], etype[1], exp["_glClass"]),
                          b.gl("expense", eid, "EO", -amount, offset, classification,
                               exp["_glClass"])]
    b.add("expense_entries", exp)
    return exp


def _expenses(b: Builder, count: int = 70, start_id: int = 1, days: int = DAYS) -> None:
    plan = list(EXPENSE_PLAN)
    for n in range(count):
        eid = start_id + n
        kind = plan[n % len(plan)] if start_id == 1 else "Reimbursable"
        member_id = 4 if n in (3, 17) else b.rnd.randint(1, len(N.MEMBERS))
        make_expense(b, eid, kind, member_id, START + timedelta(days=b.rnd.randrange(days)))


TAXED_US_PO = 9001  # purchase tax (New Jersey); numbered apart from scaled POs
TAXED_CA_PO = 9002  # purchase tax (Ontario HST)
ADVANCE_EXPENSE = 71  # non-reimbursable, on the liability account of company advances
REFUND_EXPENSE = 72  # a reimbursable refund alone in its report period: a VendorCredit
CARD_REFUND_EXPENSE = 73  # a card refund: a credit Purchase
CARD_PAIR_EXPENSE = 74  # a card charge of the same member and week: per report, one group


def _more_expenses(b: Builder) -> None:
    """The expenses SPEC 8.2 needs beyond the plan: an advance, two refunds and a card
    charge in the card refund's week, two weeks before the others so each is a group of
    its own (the last two one group per report)."""
    early = START - timedelta(days=14)
    make_expense(b, ADVANCE_EXPENSE, "NonReimbursable", 6, early, advance=True)
    make_expense(b, REFUND_EXPENSE, "Reimbursable", 12, early, amount=-35.0)
    make_expense(b, CARD_REFUND_EXPENSE, "NonReimbursable", 7, early, amount=-20.0)
    make_expense(b, CARD_PAIR_EXPENSE, "NonReimbursable", 7, early + timedelta(days=1),
                 amount=64.5)


def make_po(b: Builder, pid: int, day: date, *, partial: bool = False, freight: float = 0.0,
            dropship: bool = False, blank_vin: bool = False, line_count: int | None = None,
            tax_code: int = 3, currency: int = 1) -> dict[str, Any]:
    """A closed purchase order, its lines and one receipt (two when `partial`)."""
    vendor = b.companies[len(N.CUSTOMERS) + 1 + pid % len(N.VENDORS)]
    customer = b.companies[b.customer_ids[pid % len(b.customer_ids)]]
    po = {"id": pid, "poNumber": f"NW-PO-{pid:04d}", "poDate": iso(day),
          "status": {"id": 3, "name": "Closed"}, "closedFlag": True,
          "vendorCompany": company_ref(vendor),
          "vendorContact": ref("contact", "company/contacts", vendor["id"] * 10 + 2,
                               name=f"Billing {vendor['identifier']}"),
          "vendorSite": dict(vendor["site"]),
          "terms": ref("billingTerms", "finance/billingTerms", 1, name="Net 30"),
          "locationId": customer["_location"], "businessUnitId": 1,
          "currency": _currency(currency),
          "taxCode": ref("taxCode", "finance/taxCodes", tax_code,
                         name=N.TAX_CODES[tax_code - 1][1]), "taxPoFlag": tax_code != 3,
          "customerCompany": company_ref(customer) if dropship else None,
          "dropShipCustomerFlag": dropship, "enteredBy": "sliu", "freightCost": freight,
          "_vendorAccountNumber": vendor["accountNumber"], "_info": _info(day)}
    lines = []
    for n in range(line_count or b.rnd.randint(1, 3)):
        item = N.CATALOG[b.rnd.choice([0, 1, 2, 3])]
        qty = float(b.rnd.randint(2, 10))
        lid = len(b.t.get("po_lines", [])) + 1
        lines.append(b.add("po_lines", {
            "id": lid, "purchaseOrderId": pid, "purchaseOrderNumber": po["poNumber"],
            "lineNumber": n + 1, "description": item[2],
            "product": {"id": item[0], "identifier": item[1]}, "quantity": qty,
            "unitOfMeasure": {"id": 1, "name": "Each"}, "unitCost": item[8],
            "extCost": round(qty * item[8], 2), "receivedQuantity": int(qty),
            "receivedStatus": "FullyReceived", "closedFlag": True, "canceledFlag": False,
            "dateReceived": iso(day + timedelta(days=3)), "packingSlip": f"PS-{pid:04d}",
            "batchedFlag": False, "isDetachAvailable": False,
            "serialNumbers": f"FGT60F{b.rnd.randint(100000, 999999)}" if item[10] else None,
            "_info": _info(day)}))
    po["subTotal"] = round(sum(ln["extCost"] for ln in lines), 2)
    po["total"] = round(po["subTotal"] + freight, 2)
    po["salesTax"] = 0.0
    vin = "" if blank_vin else f"INV-{88000 + pid}"
    po["vendorInvoiceNumber"] = vin
    po["vendorInvoiceDate"] = iso(day + timedelta(days=4))
    b.add("purchase_orders", po)
    if partial and len(lines) == 1:
        lines.append(b.add("po_lines", dict(lines[0], id=len(b.t["po_lines"]) + 1, lineNumber=2)))
        po["subTotal"] = round(po["subTotal"] * 2, 2)
        po["total"] = round(po["subTotal"] + freight, 2)
    groups = [lines[:1], lines[1:]] if partial else [lines]
    for n, group in enumerate(groups):
        received = day + timedelta(days=3 + 9 * n)
        for line in group:
            line["dateReceived"] = iso(received)
            if partial:
                line["packingSlip"] = f"PS-{pid:04d}-{n + 1}"
        _receipt(b, po, group, received, freight if n == 0 else 0.0, vin)
        po["dateClosed"] = iso(received)
    return po


def _receipt(b: Builder, po: dict[str, Any], lines: list[dict[str, Any]], day: date,
             freight: float, vin: str, quantities: dict[str, float] | None = None) -> None:
    """One receipt (a return when `quantities` are negative). An unposted procurement row is
    one GL record: its id is the GL entry id the accounting batch takes [inferred: the
    procurement parts of the GL export carry no glEntryIds]."""
    rid = len(b.t.get("receipts", [])) + 1
    cost = {ln["id"]: ln["unitCost"] * (quantities or {}).get(str(ln["id"]), 0.0)
            if quantities else ln["extCost"] for ln in lines}
    levels = [{"taxLevel": n, "taxRate": rate, "taxCodeXref": xref}
              for n, (rate, _caption, xref, _agency)
              in enumerate(N.TAX_CODES[po["taxCode"]["id"] - 1][3], start=1)]
    per_line = glexport.purchase_tax_line_amounts(levels, [round(c, 2) for c in cost.values()])
    sign = -1.0 if sum(cost.values()) < 0 else 1.0
    level_tax = [round(sign * sum(amounts[n] for amounts in per_line), 2)
                 for n in range(len(levels))]
    tax = round(float(sum(level_tax)), 2)
    total = round(sum(cost.values()) + freight + tax, 2)
    rec = {"id": rid, "purchaseOrderId": po["id"], "lineIds": [ln["id"] for ln in lines],
           "dateReceived": iso(day), "packingSlip": lines[0]["packingSlip"],
           "vendorInvoiceNumber": vin, "vendorInvoiceDate": iso(day + timedelta(days=1)),
           "freightCost": freight, "total": total, "tax": tax, "_apAccount": N.AP,
           "_taxAccount": N.SALES_TAX,
           "_taxLevels": [dict(lv, taxAmount=amount) for lv, amount in zip(levels, level_tax)
                          if amount],
           "_glClass": next(x[1] for x in N.LOCATIONS if x[0] == po["locationId"])}
    if quantities:
        rec["quantities"] = dict(quantities)
    gl = b.gl("receipt", rid, "AP", -total, N.AP, f"PO {po['poNumber']}", rec["_glClass"])
    rec["_unpostedId"] = gl
    rec["_glEntryIds"] = [gl]
    b.add("receipts", rec)


def _procurement(b: Builder) -> None:
    """18 POs (partial receipt, freight, drop-ship among them), 2 adjustments, 1 transfer."""
    for pid in range(1, 19):
        day = START + timedelta(days=pid * 6)
        po = make_po(b, pid, day, partial=pid == 3, freight=45.0 if pid == 7 else 0.0,
                     dropship=pid == 11, blank_vin=pid == 15)
        if pid == 5:  # one unit sent back: a return (negative receipt)
            line = next(ln for ln in b.t["po_lines"] if ln["purchaseOrderId"] == pid)
            _receipt(b, po, [line], day + timedelta(days=20), 0.0, f"CM-{88000 + pid}",
                     quantities={str(line["id"]): -1.0})
    for aid, (item_no, qty, reason) in enumerate(((0, -1, "Damaged in transit"),
                                                  (2, 25, "Cycle count correction")), start=1):
        item = N.CATALOG[item_no]
        total = round(qty * item[8], 2)
        day = START + timedelta(days=40 + aid * 20)
        adj = {"id": aid, "identifier": f"ADJ-{aid:03d}",
               "type": {"id": 1, "name": "Inventory Adjustment"}, "reason": reason,
               "closedFlag": True, "closedBy": "sliu", "closedDate": iso(day), "locationId": 2,
               "adjustmentDetails": [{"id": aid, "catalogItem": {"id": item[0],
                                                                 "identifier": item[1]},
                                      "description": item[2], "unitCost": item[8],
                                      "warehouse": {"id": 1, "name": "East Warehouse"},
                                      "warehouseBin": {"id": 1, "name": "Main"},
                                      "quantityAdjusted": qty}],
               "total": total, "_accountNumber": N.SHRINKAGE,
               "_glClass": "East", "_info": _info(day)}
        adj["_unpostedId"] = b.gl("adjustment", aid, "IA", total, N.INVENTORY, reason, "East")
        adj["_glEntryIds"] = [adj["_unpostedId"]]
        b.add("adjustments", adj)
    item = N.CATALOG[0]
    day = START + timedelta(days=75)
    xfr = {"id": 1, "item": {"id": item[0], "identifier": item[1]}, "quantity": 3.0,
           "cost": item[8], "reason": "Stock for West office", "closedDate": iso(day),
           "closedBy": "sliu", "locationId": 3, "total": round(3 * item[8], 2),
           "_fromAccount": N.INVENTORY, "_toAccount": N.INVENTORY,
           "_fromClass": "East", "_toClass": "West", "_fromLocation": "EAST-WH",
           "_toLocation": "WEST-WH", "_info": _info(day)}
    xfr["_unpostedId"] = b.gl("transfer", 1, "IT", xfr["total"], N.INVENTORY, "Transfer", "West")
    xfr["_glEntryIds"] = [xfr["_unpostedId"]]
    b.add("transfers", xfr)


def _scale(b: Builder, count: int) -> None:
    """`count` extra invoices for benchmarks, with customers, expenses and receipts to match."""
    if count <= 0:
        return
    first_company = max(b.companies) + 1
    new_customers = max(1, count // 20)
    terms = [1, 1, 2, 3]
    for n in range(new_customers):
        cid = first_company + n
        _company(b, cid, f"Scale Customer {n + 1:05d}", f"SC{n + 1:05d}", tax=3 if n % 3 else 1,
                 loc=2 + n % 2, terms=terms[n % 4])
    kinds = ["Bundle", "Bundle", "Bundle", "Bundle", "Agreement"]  # about five lines each
    start = CURATED_INVOICES + 1
    for n in range(count):
        company = b.companies[first_company + n % new_customers]
        make_invoice(b, start + n, kinds[n % len(kinds)], company,
                     START + timedelta(days=n % DAYS))
    _expenses(b, max(1, count // 10), start_id=len(b.t["expense_entries"]) + 1)
    first_po = len(b.t["purchase_orders"]) + 1
    for n in range(max(1, count // 50)):
        make_po(b, first_po + n, START + timedelta(days=n % DAYS))


def _taxed_receipts(b: Builder) -> None:
    """Two POs with purchase tax (SPEC 9.2): New Jersey for the US company, Ontario HST for
    the Canadian one. Built last, so the rest of the data set is the same with or without,
    and on a random stream of their own, so their amounts do not move when other parts of
    the data set (or its scale) change."""
    b.rnd = random.Random(f"taxed-receipts-{b.seed}")
    for pid, code, currency in ((TAXED_US_PO, 2, 1), (TAXED_CA_PO, 4, 3)):
        make_po(b, pid, START + timedelta(days=30 + pid % 10), line_count=2, tax_code=code,
                currency=currency)


def _receipts(b: Builder, count: int) -> None:
    """`count` extra closed POs of four lines, one receipt each (procurement benchmarks)."""
    first = len(b.t["purchase_orders"]) + 1
    for n in range(count):
        make_po(b, first + n, START + timedelta(days=n % DAYS), line_count=4)


def build(seed: int, scale: int, expenses: int = 0, receipts: int = 0) -> dict[str, Any]:
    """The "connectwise" part: company info, credentials, roles and every table."""
    from ..connectwise.permissions import admin_role, recommended_role
    b = Builder(seed)
    _setup(b)
    _members(b)
    _companies(b)
    _catalog(b)
    _invoices(b)
    _historical_batches(b)
    _wisepay_payment(b)
    _expenses(b)
    _procurement(b)
    _more_expenses(b)
    _scale(b, scale)
    if expenses:
        _expenses(b, expenses, start_id=len(b.t["expense_entries"]) + 1, days=91)
    _receipts(b, receipts)
    _taxed_receipts(b)
    return {
        "format": "portal-cw-sandbox/1",
        "company_info": {"CompanyName": N.COMPANY_NAME, "Codebase": N.CODEBASE,
                         "VersionCode": "v2025.1", "VersionNumber": "v2025.1.10431",
                         "CompanyID": N.COMPANY_ID, "IsCloud": True,
                         "SiteUrl": "na.myconnectwise.net"},
        "system_info": {"version": "v2025.1.10431", "isCloud": True,
                        "serverTimeZone": "Eastern Standard Time",
                        "licenseBits": [{"name": "Accounting", "activeFlag": True},
                                        {"name": "Procurement", "activeFlag": True}],
                        "cloudRegion": "NA", "maxWorkFlowRecordsAllowed": 10000},
        "credentials": dict(N.CREDENTIALS),
        "api_keys": [{"member_id": N.CREDENTIALS["member_id"],
                      "public_key": N.CREDENTIALS["public_key"],
                      "private_key": N.CREDENTIALS["private_key"]}],
        "client_ids": [N.CREDENTIALS["client_id"]],
        "roles": {"QuickBooks Sync": recommended_role(), "Admin": admin_role(),
                  "Technician": {}},
        "tables": b.t,
        "counters": {"batches": len(b.t["batches"]) + 100},
    }
