"""Transaction entities: sales forms, Bill, VendorCredit, Purchase, JournalEntry and Payment, with
computed fields."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

from . import faults, tax
from .context import Ctx, check_length, named_ref, ref_value, resolve
from .prefs import currency_ref, is_us
from .util import local_date, money, number, parse_date

SALES_FORMS = ("Invoice", "CreditMemo", "SalesReceipt")
TXN_TYPE_NAMES = {"Invoice": "Invoice", "CreditMemo": "Credit Memo", "SalesReceipt": "Sales Receipt",
                  "JournalEntry": "Journal Entry", "Bill": "Bill", "Purchase": "Expense",
                  "Payment": "Payment", "VendorCredit": "Vendor Credit"}
EXPENSE_DETAILS = ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail")


# shared header rules ----------------------------------------------------------------------------
def _header(ctx: Ctx, entity: str, obj: dict[str, Any], party: dict[str, Any] | None) -> None:
    obj.setdefault("TxnDate", local_date(ctx.now))
    close = ctx.settings.get("book_close_date")
    if close and not ctx.seeding and str(obj["TxnDate"]) <= str(close):
        raise faults.ApiFault("6200", "Account Period Closed Error",
                              "Account Period Closed Error : The books are closed for the date "
                              f"{obj['TxnDate']}.", "")
    check_length(obj, "PrivateNote", 4000)
    home = ctx.settings.get("home_currency") or "USD"
    wanted = ref_value(obj.get("CurrencyRef")) or ref_value((party or {}).get("CurrencyRef")) or home
    obj["CurrencyRef"] = currency_ref(wanted)
    if wanted != home:
        obj.setdefault("ExchangeRate", 1)
    for key, entity_name in (("DepartmentRef", "Department"), ("ClassRef", "Class")):
        target = resolve(ctx, obj.get(key), entity_name)
        if target is not None:
            obj[key] = named_ref(obj[key], target)
    _doc_number(ctx, entity, obj)


def _doc_number(ctx: Ctx, entity: str, obj: dict[str, Any]) -> None:
    doc = obj.get("DocNumber")
    if doc in (None, ""):
        obj.pop("DocNumber", None)
        if entity in SALES_FORMS and not ctx.settings.get("custom_txn_numbers"):
            obj["DocNumber"] = _next_doc_number(ctx, entity, obj)
        return
    doc = str(doc)
    obj["DocNumber"] = doc
    if len(doc) > 21:
        raise faults.too_long("DocNumber", len(doc), 21)
    holder = ctx.realm.find_doc(entity, obj, doc)
    if holder is not None and holder != obj.get("Id") and not ctx.allow_duplicate_docnumber:
        raise faults.duplicate_docnumber(doc, TXN_TYPE_NAMES.get(entity, entity), holder)
    if doc.isdigit():
        ctx.realm.doc_seq[entity] = max(ctx.realm.doc_seq[entity], int(doc))


def _next_doc_number(ctx: Ctx, entity: str, obj: dict[str, Any]) -> str:
    while True:
        ctx.realm.doc_seq[entity] += 1
        candidate = str(ctx.realm.doc_seq[entity])
        if ctx.realm.find_doc(entity, obj, candidate) is None:
            return candidate


def _assign_line_ids(lines: list[dict[str, Any]], old: dict[str, Any] | None) -> None:
    """Known line Ids update their line; none, <= 0 or unknown Ids make new lines."""
    old_ids = {str(line.get("Id")) for line in (old or {}).get("Line", []) if line.get("Id")}
    used = {int(i) for i in old_ids if i.isdigit()}
    next_id = max(used, default=0) + 1
    for line in lines:
        given = str(line.get("Id", ""))
        if given in old_ids and given not in {"", "0"}:
            continue
        line["Id"] = str(next_id)
        next_id += 1
    for num, line in enumerate(lines, start=1):
        line["LineNum"] = num


def _due_date(ctx: Ctx, obj: dict[str, Any], term_ref: Any, fallback_term: Any) -> None:
    if obj.get("DueDate"):
        return
    term = resolve(ctx, term_ref, "Term", allow_inactive=True) or \
        ctx.realm.get("Term", ref_value(fallback_term) or "")
    txn = parse_date(obj["TxnDate"]) or date.today()
    obj["DueDate"] = _apply_term(term, txn).isoformat()


def _apply_term(term: dict[str, Any] | None, txn: date) -> date:
    """STANDARD terms add DueDays; DATE_DRIVEN ones fall on DayOfMonthDue (next month if late)."""
    if not term:
        return txn
    if term.get("Type") == "DATE_DRIVEN" and term.get("DayOfMonthDue"):
        day = int(term["DayOfMonthDue"])
        late = txn.day > day - int(term.get("DueNextMonthDays", 0) or 0)
        year, month = (txn.year + (txn.month // 12), txn.month % 12 + 1) if late else (txn.year, txn.month)
        return date(year, month, min(day, calendar.monthrange(year, month)[1]))
    return txn + timedelta(days=int(term.get("DueDays", 0) or 0))


def _custom_fields(ctx: Ctx, obj: dict[str, Any]) -> None:
    definitions = ctx.settings.get("custom_fields") or []
    given = {str(f.get("DefinitionId")): f for f in obj.get("CustomField") or [] if isinstance(f, dict)}
    fields = []
    for definition in definitions:
        key = str(definition.get("DefinitionId"))
        entry = {"DefinitionId": key, "Type": definition.get("Type", "StringType"),
                 "Name": definition.get("Name")}
        if given.get(key, {}).get("StringValue") not in (None, ""):
            entry["StringValue"] = given[key]["StringValue"]
        fields.append(entry)
    if definitions:
        obj["CustomField"] = fields
    else:
        obj.pop("CustomField", None)


def _copy_address(ctx: Ctx, source: Any) -> dict[str, Any] | None:
    if not isinstance(source, dict) or not source:
        return None
    addr = {k: v for k, v in source.items() if k != "Id"}
    addr["Id"] = ctx.realm.address_id()
    if ctx.switches.get("sim.qbo_address_latlong"):
        addr.setdefault("Lat", "INVALID")
        addr.setdefault("Long", "INVALID")
    return addr


def _line_amount(line: dict[str, Any], detail: dict[str, Any]) -> float:
    amount, qty, price = number(line.get("Amount")), number(detail.get("Qty")), number(detail.get("UnitPrice"))
    if amount is None:
        if qty is None or price is None:
            raise faults.required("Line.Amount")
        amount = qty * price
    elif qty is not None and price is not None and abs(money(qty * price) - money(amount)) > 0.011:
        raise faults.ApiFault("6070", "Amount calculation incorrect in the request",
                              "Business Validation Error: Amount is not equal to UnitPrice * Qty. "
                              f"Supplied value:{money(amount)}", "")
    return money(amount)


# sales forms -------------------------------------------------------------------------------------
def _sales_line(ctx: Ctx, line: dict[str, Any], customer: dict[str, Any], us: bool) -> None:
    kind = line.get("DetailType")
    if kind == "SalesItemLineDetail":
        detail = line.setdefault("SalesItemLineDetail", {})
        item = resolve(ctx, detail.get("ItemRef"), "Item")
        if item is not None:
            detail["ItemRef"] = named_ref(detail["ItemRef"], item, fqn=False)
        line["Amount"] = _line_amount(line, detail)
        code = ref_value(detail.get("TaxCodeRef"))
        if us and ctx.settings.get("using_sales_tax"):
            if code is None:
                taxable = bool(item and item.get("Taxable")) and customer.get("Taxable", True) is not False
                detail["TaxCodeRef"] = {"value": "TAX" if taxable else "NON"}
            elif code not in ("TAX", "NON"):
                raise faults.ApiFault("6100", "Invalid Line TaxCode in the request",
                                      "Invalid Line TaxCode in the request: For US, specify TAX or NON "
                                      "as the line TaxCode.", "")
        elif code is not None:
            resolve(ctx, detail.get("TaxCodeRef"), "TaxCode")
        klass = resolve(ctx, detail.get("ClassRef"), "Class")
        if klass is not None:
            detail["ClassRef"] = named_ref(detail["ClassRef"], klass)
    elif kind == "GroupLineDetail":
        line["Amount"] = money(line.get("Amount", 0))
    elif kind == "DescriptionOnly":
        if line.get("Amount") is None:
            line.pop("Amount", None)
    else:
        raise faults.required("Line.DetailType") if not kind else faults.ApiFault(
            "2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}", "DetailType")
    check_length(line, "Description", 4000)


def _split_sales_lines(lines: list[dict[str, Any]]) -> tuple[list, list, list]:
    regular, discounts, shipping = [], [], []
    for line in lines:
        kind = line.get("DetailType")
        if kind == "SubTotalLineDetail":
            continue
        if kind == "DiscountLineDetail":
            discounts.append(line)
        elif kind == "SalesItemLineDetail" and \
                ref_value((line.get("SalesItemLineDetail") or {}).get("ItemRef")) == "SHIPPING_ITEM_ID":
            shipping.append(line)
        else:
            regular.append(line)
    return regular, discounts, shipping


def prepare_sales_form(ctx: Ctx, entity: str, obj: dict[str, Any], old: dict[str, Any] | None,
                       company: dict[str, Any]) -> None:
    """Invoice, CreditMemo, SalesReceipt: lines, SubTotal, discount, tax, totals, defaults."""
    customer = resolve(ctx, obj.get("CustomerRef"), "Customer", required_field="CustomerRef")
    assert customer is not None
    obj["CustomerRef"] = named_ref(obj["CustomerRef"], customer)
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise faults.required("Line")
    _header(ctx, entity, obj, customer)
    us = is_us(ctx.settings)
    regular, discounts, shipping = _split_sales_lines([dict(line) for line in lines])
    for line in regular:
        _sales_line(ctx, line, customer, us)
    _assign_line_ids(regular, old)
    subtotal = money(sum(float(l.get("Amount", 0) or 0) for l in regular
                         if l.get("DetailType") in ("SalesItemLineDetail", "GroupLineDetail")))
    discount_total = 0.0
    for line in discounts:
        detail = line.setdefault("DiscountLineDetail", {})
        if detail.get("PercentBased") and detail.get("DiscountPercent") is not None:
            line["Amount"] = money(subtotal * float(detail["DiscountPercent"]) / 100)
        line["Amount"] = money(line.get("Amount", 0))
        discount_total += line["Amount"]
    shipping_total = 0.0
    for line in shipping:
        line["Amount"] = money(line.get("Amount", 0))
        shipping_total += line["Amount"]
    _default_addresses(ctx, entity, obj, customer)
    obj.setdefault("ApplyTaxAfterDiscount", False)
    detail, tax_total, _inclusive = tax.sales_tax(ctx, obj, regular, company, discount_total, subtotal)
    if detail is None:
        obj.pop("TxnTaxDetail", None)
    else:
        obj["TxnTaxDetail"] = detail
    subtotal_line = {"DetailType": "SubTotalLineDetail", "Amount": subtotal, "SubTotalLineDetail": {}}
    obj["Line"] = regular + [subtotal_line] + discounts + shipping
    obj["TotalAmt"] = money(subtotal - discount_total + shipping_total + tax_total)
    if not obj.get("BillEmail") and (customer.get("PrimaryEmailAddr") or {}).get("Address"):
        obj["BillEmail"] = {"Address": customer["PrimaryEmailAddr"]["Address"]}
    obj.setdefault("EmailStatus", "NotSet")
    if entity == "Invoice":
        default_print = "NeedToPrint" if customer.get("PreferredDeliveryMethod") == "Print" else "NotSet"
        obj.setdefault("PrintStatus", default_print)
        term_ref = obj.get("SalesTermRef") or customer.get("SalesTermRef")
        if term_ref:
            obj["SalesTermRef"] = {"value": ref_value(term_ref)}
        _due_date(ctx, obj, term_ref, ctx.settings.get("default_terms"))
        obj["Deposit"] = money(obj.get("Deposit", 0))
        for flag in ("AllowIPNPayment", "AllowOnlinePayment", "AllowOnlineCreditCardPayment",
                     "AllowOnlineACHPayment"):
            obj.setdefault(flag, False)
        obj["LinkedTxn"] = [l for l in obj.get("LinkedTxn") or [] if l.get("TxnType") != "Payment"]
    else:
        obj.setdefault("PrintStatus", "NotSet")
        if entity == "SalesReceipt":
            obj.pop("LinkedTxn", None)
    if entity == "SalesReceipt":
        obj["Balance"] = 0
    _custom_fields(ctx, obj)
    refresh_open_balance(ctx, entity, obj)


def _default_addresses(ctx: Ctx, entity: str, obj: dict[str, Any], customer: dict[str, Any]) -> None:
    for key in ("BillAddr", "ShipAddr"):
        if isinstance(obj.get(key), dict) and obj[key]:
            obj[key].setdefault("Id", ctx.realm.address_id())
            continue
        copied = _copy_address(ctx, customer.get(key))
        if copied:
            obj[key] = copied


def refresh_open_balance(ctx: Ctx, entity: str, obj: dict[str, Any]) -> None:
    """Balance (and the Payment links in LinkedTxn) from the payments applied to this document."""
    if entity not in ("Invoice", "CreditMemo"):
        return
    links = ctx.realm.payment_links.get((entity, obj.get("Id", "")), {}) if obj.get("Id") else {}
    applied = sum(links.values())
    if entity == "Invoice":
        obj["Balance"] = money(obj["TotalAmt"] - float(obj.get("Deposit", 0) or 0) - applied)
        others = [l for l in obj.get("LinkedTxn") or [] if l.get("TxnType") != "Payment"]
        obj["LinkedTxn"] = others + [{"TxnId": pid, "TxnType": "Payment"} for pid in links]
    else:
        obj["Balance"] = money(obj["TotalAmt"] - applied)
        obj["RemainingCredit"] = obj["Balance"]


# Bill and Purchase ------------------------------------------------------------------------------
def _expense_lines(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, Any]]:
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise faults.required("Line")
    out = []
    for raw in lines:
        line = dict(raw)
        kind = line.get("DetailType")
        if kind not in EXPENSE_DETAILS:
            raise faults.required("Line.DetailType") if not kind else faults.ApiFault(
                "2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}", "DetailType")
        detail = line.setdefault(kind, {})
        if kind == "AccountBasedExpenseLineDetail":
            account = resolve(ctx, detail.get("AccountRef"), "Account", required_field="AccountRef")
            assert account is not None
            detail["AccountRef"] = named_ref(detail["AccountRef"], account, fqn=False)
            detail.setdefault("BillableStatus", "NotBillable")
        else:
            item = resolve(ctx, detail.get("ItemRef"), "Item", required_field="ItemRef")
            assert item is not None
            detail["ItemRef"] = named_ref(detail["ItemRef"], item, fqn=False)
            detail.setdefault("BillableStatus", "NotBillable")
        line["Amount"] = _line_amount(line, detail)
        for key, name in (("CustomerRef", "Customer"), ("ClassRef", "Class")):
            target = resolve(ctx, detail.get(key), name)
            if target is not None:
                detail[key] = named_ref(detail[key], target)
        if is_us(ctx.settings):
            detail.setdefault("TaxCodeRef", {"value": "NON"})
        out.append(line)
    _assign_line_ids(out, old)
    return out


def _vendor_document(ctx: Ctx, entity: str, obj: dict[str, Any],
                     old: dict[str, Any] | None) -> dict[str, Any]:
    """What Bill and VendorCredit share: VendorRef, header, expense lines, tax, total, AP."""
    vendor = resolve(ctx, obj.get("VendorRef"), "Vendor", required_field="VendorRef")
    assert vendor is not None
    obj["VendorRef"] = named_ref(obj["VendorRef"], vendor)
    _header(ctx, entity, obj, vendor)
    lines = _expense_lines(ctx, obj, old)
    detail, tax_total = tax.purchase_tax(ctx, obj, lines)
    obj["Line"] = lines
    _set_tax_detail(obj, detail)
    obj["TotalAmt"] = money(sum(l["Amount"] for l in lines) + tax_total)
    account = resolve(ctx, obj.get("APAccountRef"), "Account")
    if account is not None:
        obj["APAccountRef"] = named_ref(obj["APAccountRef"], account, fqn=False)
    obj["Balance"] = obj["TotalAmt"]
    return vendor


def prepare_bill(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Bills: VendorRef and lines required on every write (no sparse update)."""
    vendor = _vendor_document(ctx, "Bill", obj, old)
    term_ref = obj.get("SalesTermRef") or vendor.get("TermRef")
    if term_ref:
        obj["SalesTermRef"] = {"value": ref_value(term_ref)}
    _due_date(ctx, obj, term_ref, None)


def prepare_vendor_credit(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Vendor credits (refunds and returns, SPEC §8.2 and §9.2): a Bill's shape without terms
    or due date; no sparse update, delete yes, void no."""
    _vendor_document(ctx, "VendorCredit", obj, old)


def prepare_purchase(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Expenses, checks and card charges: PaymentType must be re-sent on every write."""
    kind = obj.get("PaymentType")
    if not kind:
        raise faults.required("PaymentType")
    if kind not in ("Cash", "Check", "CreditCard"):
        raise faults.ApiFault("2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}",
                              "PaymentType")
    account = resolve(ctx, obj.get("AccountRef"), "Account", required_field="AccountRef")
    assert account is not None
    obj["AccountRef"] = named_ref(obj["AccountRef"], account, fqn=False)
    party = None
    entity_ref = obj.get("EntityRef")
    if entity_ref:
        party_type = entity_ref.get("type") or "Vendor"
        party = resolve(ctx, entity_ref, party_type if party_type in ("Vendor", "Customer", "Employee")
                        else "Vendor")
        if party is not None:
            obj["EntityRef"] = {**named_ref(entity_ref, party), "type": party_type}
    _header(ctx, "Purchase", obj, party)
    lines = _expense_lines(ctx, obj, old)
    detail, tax_total = tax.purchase_tax(ctx, obj, lines)
    obj["Line"] = lines
    _set_tax_detail(obj, detail)
    obj["TotalAmt"] = money(sum(l["Amount"] for l in lines) + tax_total)
    if kind == "CreditCard":
        obj.setdefault("Credit", False)


def _set_tax_detail(obj: dict[str, Any], detail: dict[str, Any] | None) -> None:
    if detail is None:
        obj.pop("TxnTaxDetail", None)
    else:
        obj["TxnTaxDetail"] = detail


# JournalEntry -------------------------------------------------------------------------------------
def prepare_journal_entry(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Journal entries: two or more lines, posting types, non-negative, balanced."""
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise faults.required("Line")
    _header(ctx, "JournalEntry", obj, None)
    out, debit, credit, detail_lines = [], 0.0, 0.0, 0
    for raw in lines:
        line = dict(raw)
        if line.get("DetailType") == "DescriptionOnly":
            out.append(line)
            continue
        line["DetailType"] = "JournalEntryLineDetail"
        detail = line.setdefault("JournalEntryLineDetail", {})
        posting = detail.get("PostingType")
        if posting not in ("Debit", "Credit"):
            raise faults.ApiFault("2260", "MissingPostingType",
                                  "Journal Entry line is missing the Credit or Debit PostingType", "")
        amount = number(line.get("Amount"))
        if amount is None:
            raise faults.required("Line.Amount")
        if amount < 0:
            raise faults.ApiFault("2290", "NegativeAmount",
                                  "Negative amounts are not supported on journal entry lines", "")
        account = resolve(ctx, detail.get("AccountRef"), "Account", required_field="AccountRef")
        assert account is not None
        detail["AccountRef"] = named_ref(detail["AccountRef"], account, fqn=False)
        _je_entity(ctx, detail, account)
        for key, name in (("ClassRef", "Class"), ("DepartmentRef", "Department")):
            target = resolve(ctx, detail.get(key), name)
            if target is not None:
                detail[key] = named_ref(detail[key], target)
        line["Amount"] = money(amount)
        if posting == "Debit":
            debit += amount
        else:
            credit += amount
        detail_lines += 1
        out.append(line)
    if detail_lines < 2:
        raise faults.business("Fill out at least two detail lines to continue.")
    if abs(money(debit) - money(credit)) > 0.001:
        code = str(ctx.switches.get("sim.qbo_je_unbalanced_code", "6000"))
        if code == "2300":
            raise faults.ApiFault("2300", "Amount on debits not equal to credits",
                                  "Amount on debits not equal to credits", "")
        raise faults.business("You can't save this transaction because the debits and credits "
                              "don't balance.")
    _assign_line_ids(out, old)
    obj["Line"] = out
    obj["TotalAmt"] = money(debit)
    obj.setdefault("Adjustment", False)


def _je_entity(ctx: Ctx, detail: dict[str, Any], account: dict[str, Any]) -> None:
    entity = detail.get("Entity")
    needs = {"Accounts Receivable": "Customer", "Accounts Payable": "Vendor"}.get(account.get("AccountType"))
    if not entity:
        if needs:
            raise faults.business(f"You must select a {needs.lower()} in the Name field for the "
                                  f"line posting to {account.get('Name')}.")
        return
    kind = entity.get("Type") or needs or "Customer"
    target = resolve(ctx, entity.get("EntityRef"), kind, required_field="EntityRef")
    assert target is not None
    detail["Entity"] = {"Type": kind, "EntityRef": named_ref(entity["EntityRef"], target)}


# Payment ----------------------------------------------------------------------------------------------
def prepare_payment(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Customer payments: LinkedTxn lines apply money to invoices and credit memos."""
    customer = resolve(ctx, obj.get("CustomerRef"), "Customer", required_field="CustomerRef")
    assert customer is not None
    obj["CustomerRef"] = named_ref(obj["CustomerRef"], customer)
    if number(obj.get("TotalAmt")) is None:
        raise faults.required("TotalAmt")
    obj["TotalAmt"] = money(obj["TotalAmt"])
    _header(ctx, "Payment", obj, customer)
    applied = 0.0
    lines = []
    for raw in obj.get("Line") or []:
        line = {k: v for k, v in raw.items() if k != "LineEx"}
        links = []
        for link in line.get("LinkedTxn") or []:
            txn_type, txn_id = link.get("TxnType"), str(link.get("TxnId", ""))
            if txn_type in ("Invoice", "CreditMemo"):
                target = ctx.realm.get(txn_type, txn_id)
                if target is None:
                    raise faults.invalid_reference(txn_type, txn_id)
                applied += (1 if txn_type == "Invoice" else -1) * float(line.get("Amount", 0) or 0)
            links.append({"TxnId": txn_id, "TxnType": txn_type})
        line["LinkedTxn"] = links
        line["Amount"] = money(line.get("Amount", 0))
        lines.append(line)
    obj["Line"] = lines
    obj["UnappliedAmt"] = money(max(0.0, obj["TotalAmt"] - applied))
    obj.setdefault("ProcessPayment", False)
    account = resolve(ctx, obj.get("DepositToAccountRef"), "Account")
    if account is None and "DepositToAccountRef" not in obj:
        undeposited = ctx.realm.find_named("Account", "Undeposited Funds")
        if undeposited:
            obj["DepositToAccountRef"] = {"value": undeposited}
    elif account is not None:
        obj["DepositToAccountRef"] = {"value": account["Id"]}


def payment_links(payment: dict[str, Any]) -> dict[tuple[str, str], float]:
    """(TxnType, TxnId) -> amount this payment applies to it."""
    found: dict[tuple[str, str], float] = {}
    for line in payment.get("Line") or []:
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType") in ("Invoice", "CreditMemo"):
                key = (link["TxnType"], str(link["TxnId"]))
                found[key] = found.get(key, 0.0) + float(line.get("Amount", 0) or 0)
    return found


# Deposit -------------------------------------------------------------------------------------------
def prepare_deposit(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Bank deposits: each line moves one customer payment out of Undeposited Funds (LinkedTxn
    TxnType Payment, TxnLineId required); a payment in a deposit can no longer change (6540)."""
    account = resolve(ctx, obj.get("DepositToAccountRef"), "Account",
                      required_field="DepositToAccountRef")
    assert account is not None
    obj["DepositToAccountRef"] = named_ref(obj["DepositToAccountRef"], account, fqn=False)
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise faults.required("Line")
    _header(ctx, "Deposit", obj, None)
    out = []
    for raw in lines:
        line = dict(raw)
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType") != "Payment":
                continue
            if link.get("TxnLineId") in (None, ""):
                raise faults.required("Line.LinkedTxn.TxnLineId")
            payment_id = str(link.get("TxnId", ""))
            if ctx.realm.get("Payment", payment_id) is None:
                raise faults.invalid_reference("Payment", payment_id)
            holder = ctx.realm.deposited.get(payment_id)
            if holder is not None and holder != obj.get("Id"):
                raise deposited(payment_id)
        line["Amount"] = money(line.get("Amount", 0))
        line.setdefault("DetailType", "DepositLineDetail")
        out.append(line)
    _assign_line_ids(out, old)
    obj["Line"] = out
    obj["TotalAmt"] = money(sum(line["Amount"] for line in out))


def deposit_links(deposit: dict[str, Any] | None) -> set[str]:
    """The payment Ids a deposit holds."""
    return {str(link.get("TxnId")) for line in (deposit or {}).get("Line") or []
            for link in line.get("LinkedTxn") or [] if link.get("TxnType") == "Payment"}


def deposited(payment_id: str) -> faults.ApiFault:
    """6540: a payment in a deposit cannot change (README §14.6)."""
    return faults.ApiFault("6540", "Deposited Transaction cannot be changed",
                           f"Deposited Transaction cannot be changed: Payment {payment_id} is "
                           "in a deposit. Remove it from the deposit first.", "")
