"""Entity registry and the write operations: create, full/sparse update, delete, void."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import blanks, faults, names, transactions
from .context import Ctx
from .util import fast_copy, meta_time, money

Prepare = Callable[[Ctx, dict[str, Any], "dict[str, Any] | None"], None]


@dataclass(frozen=True)
class Spec:
    """Per-entity rules of README §4-5."""

    prepare: Prepare | None
    deletable: bool = False
    sparse: bool = True
    writable: bool = True


def _sales(entity: str) -> Prepare:
    def prepare(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Sales forms share one rule set, parameterised by entity."""
        transactions.prepare_sales_form(ctx, entity, obj, old, ctx.realm.company_info)
    return prepare


SPECS: dict[str, Spec] = {
    "Account": Spec(names.prepare_account),
    "Class": Spec(names.prepare_class),
    "Department": Spec(names.prepare_department),
    "Term": Spec(names.prepare_term),
    "TaxCode": Spec(names.prepare_taxcode, writable=False),
    "TaxRate": Spec(names.prepare_taxrate, writable=False),
    "Customer": Spec(names.prepare_customer),
    "Vendor": Spec(names.prepare_vendor),
    "Employee": Spec(names.prepare_employee),
    "Item": Spec(names.prepare_item),
    "Invoice": Spec(_sales("Invoice"), deletable=True),
    "CreditMemo": Spec(_sales("CreditMemo"), deletable=True),
    "SalesReceipt": Spec(_sales("SalesReceipt"), deletable=True),
    "Bill": Spec(transactions.prepare_bill, deletable=True, sparse=False),
    "VendorCredit": Spec(transactions.prepare_vendor_credit, deletable=True, sparse=False),
    "Purchase": Spec(transactions.prepare_purchase, deletable=True, sparse=False),
    "JournalEntry": Spec(transactions.prepare_journal_entry, deletable=True),
    "Payment": Spec(transactions.prepare_payment, deletable=True),
    "Deposit": Spec(transactions.prepare_deposit, deletable=True),
    "CompanyInfo": Spec(None),
    "Preferences": Spec(None),
}
RESOURCES = {name.lower(): name for name in SPECS}
LOAD_ORDER = ("Account", "Class", "Department", "Term", "TaxRate", "TaxCode", "Customer", "Vendor",
              "Employee", "Item", "Invoice", "CreditMemo", "SalesReceipt", "Bill", "VendorCredit",
              "Purchase", "JournalEntry", "Payment", "Deposit")
SERVER_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse")


def _finish(ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None,
            seed: dict[str, Any] | None = None) -> None:
    """Id, SyncToken, MetaData, domain and sparse, as the server stamps them."""
    stamp = meta_time(ctx.now)
    if old is None:
        if seed and seed.get("SyncToken") is not None:
            obj["SyncToken"] = str(seed["SyncToken"])
            obj["MetaData"] = dict(seed.get("MetaData") or {"CreateTime": stamp, "LastUpdatedTime": stamp})
        else:
            obj["SyncToken"] = "0"
            obj["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
    else:
        obj["SyncToken"] = str(int(old["SyncToken"]) + 1)
        obj["MetaData"] = {**old.get("MetaData", {}), "LastUpdatedTime": stamp}
    obj["domain"] = "QBO"
    obj["sparse"] = False


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in SERVER_FIELDS}


def _sent(entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """A copy of what the caller sent, without the empty fields QuickBooks reads as absent."""
    return blanks.drop_blanks(entity, fast_copy(_strip(body)))


def create(ctx: Ctx, entity: str, body: dict[str, Any], *, seed: bool = False) -> dict[str, Any]:
    """Create (or, when seeding, load) one object and return the stored version."""
    spec = SPECS[entity]
    if spec.prepare is None or (not spec.writable and not ctx.seeding):
        raise faults.unsupported("create")
    obj = _sent(entity, body)
    given_id = str(body["Id"]) if seed and body.get("Id") not in (None, "") else None
    if given_id is not None:
        if ctx.realm.get(entity, given_id) is not None:
            raise ValueError(f"duplicate seeded Id {entity} {given_id}")
        obj["Id"] = given_id
    else:
        obj["Id"] = ctx.realm.new_id()
    blanks.check_dates(entity, obj)
    spec.prepare(ctx, obj, None)
    if given_id is not None:
        ctx.realm.reserve_id(given_id)
    _finish(ctx, obj, None, body if seed else None)
    _store(ctx, entity, obj, None)
    ctx.event(entity, obj["Id"], "Create")
    return obj


def update(ctx: Ctx, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """Full or sparse update guarded by SyncToken (5010 when stale)."""
    spec = SPECS[entity]
    if spec.prepare is None or not spec.writable:
        raise faults.unsupported("update")
    old = _existing(ctx, entity, body)
    _refuse_if_deposited(ctx, entity, old)
    sparse = bool(body.get("sparse")) and spec.sparse
    if sparse:
        obj = fast_copy({**_strip(old), **_sent(entity, body)})
        for key in ("DisplayName", "PrintOnCheckName"):
            if key in old and not obj.get(key):
                obj[key] = old[key]
    else:
        obj = _sent(entity, body)
        if entity == "Customer" and "Balance" not in obj:
            obj["Balance"] = old.get("Balance", 0)
    obj["Id"] = old["Id"]
    blanks.check_dates(entity, obj)
    spec.prepare(ctx, obj, old)
    _finish(ctx, obj, old)
    _store(ctx, entity, obj, old)
    ctx.event(entity, obj["Id"], "Update")
    return obj


def _existing(ctx: Ctx, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("Id") in (None, ""):
        raise faults.required("Id")
    old = ctx.realm.get(entity, body["Id"])
    if old is None:
        raise faults.not_found()
    if ctx.stale:
        old["SyncToken"] = str(int(old["SyncToken"]) + 1)  # the `stale` fault: someone else saved
        ctx.stale, ctx.stale_consumed = False, True
    if body.get("SyncToken") in (None, ""):
        raise faults.required("SyncToken")
    if str(body["SyncToken"]) != old["SyncToken"]:
        raise faults.stale()
    return old


def delete(ctx: Ctx, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """Delete a transaction; name lists cannot be deleted (deactivate them instead)."""
    if not SPECS[entity].deletable:
        raise faults.unsupported("delete")
    old = _existing(ctx, entity, body)
    _refuse_if_deposited(ctx, entity, old)
    _refuse_if_linked(ctx, entity, old, "delete")
    ctx.realm.remove(entity, old["Id"], ctx.now)
    _after_remove(ctx, entity, old)
    ctx.event(entity, old["Id"], "Delete")
    return {"status": "Deleted", "domain": "QBO", "Id": old["Id"]}


def _refuse_if_deposited(ctx: Ctx, entity: str, old: dict[str, Any]) -> None:
    if entity == "Payment" and old["Id"] in ctx.realm.deposited:
        raise transactions.deposited(old["Id"])


def _refuse_if_linked(ctx: Ctx, entity: str, old: dict[str, Any], verb: str) -> None:
    if entity in ("Invoice", "CreditMemo") and ctx.realm.payment_links.get((entity, old["Id"])):
        raise faults.business(f"You can't {verb} this transaction because it has payments or credits "
                              "linked to it. Unlink them first.")


def void(ctx: Ctx, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    """Void: amounts become 0, PrivateNote "Voided", SyncToken + 1 (README §5)."""
    old = _existing(ctx, entity, body)
    _refuse_if_deposited(ctx, entity, old)
    _refuse_if_linked(ctx, entity, old, "void")
    obj = {k: v for k, v in old.items()}
    lines = []
    for line in old.get("Line") or []:
        line = {**line}
        if "Amount" in line:
            line["Amount"] = 0
        detail_key = line.get("DetailType", "")
        if isinstance(line.get(detail_key), dict):
            detail = {**line[detail_key]}
            for key in ("Qty", "UnitPrice"):
                if key in detail:
                    detail[key] = 0
            line[detail_key] = detail
        lines.append(line)
    obj["Line"] = [] if entity == "Payment" else lines
    obj["TotalAmt"] = 0
    obj["PrivateNote"] = "Voided"
    if "TxnTaxDetail" in obj:
        obj["TxnTaxDetail"] = {"TotalTax": 0}
    for key in ("Balance", "Deposit", "UnappliedAmt", "RemainingCredit"):
        if key in obj:
            obj[key] = 0
    _finish(ctx, obj, old)
    _store(ctx, entity, obj, old)
    ctx.event(entity, obj["Id"], "Void")
    return obj


# side effects --------------------------------------------------------------------------------------
def _store(ctx: Ctx, entity: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    ctx.realm.put(entity, obj, ctx.now)
    if entity == "Payment":
        _relink(ctx, obj["Id"], transactions.payment_links(old) if old else {},
                transactions.payment_links(obj))
    if entity == "Deposit":
        _redeposit(ctx, obj["Id"], transactions.deposit_links(old), transactions.deposit_links(obj))
    _customer_balances(ctx, entity, obj, old)


def _after_remove(ctx: Ctx, entity: str, old: dict[str, Any]) -> None:
    if entity == "Payment":
        _relink(ctx, old["Id"], transactions.payment_links(old), {})
    if entity == "Deposit":
        _redeposit(ctx, old["Id"], transactions.deposit_links(old), set())
    _customer_balances(ctx, entity, None, old)


def _redeposit(ctx: Ctx, deposit_id: str, before: set[str], after: set[str]) -> None:
    """Payments in a deposit show it in their LinkedTxn and can no longer change."""
    realm = ctx.realm
    for payment_id in before - after:
        realm.deposited.pop(payment_id, None)
    for payment_id in after:
        realm.deposited[payment_id] = deposit_id


def _relink(ctx: Ctx, payment_id: str, before: dict[tuple[str, str], float],
            after: dict[tuple[str, str], float]) -> None:
    """Keep invoice/credit-memo Balance and LinkedTxn in step with the payments applied to them."""
    realm = ctx.realm
    for key in set(before) | set(after):
        links = realm.payment_links[key]
        links.pop(payment_id, None)
        if key in after:
            links[payment_id] = after[key]
        if not links:
            realm.payment_links.pop(key, None)
        target = realm.get(*key)
        if target is None:
            continue
        if before.get(key) == after.get(key) and key in before:
            continue
        updated = {**target}
        transactions.refresh_open_balance(ctx, key[0], updated)
        if not ctx.seeding:
            _finish(ctx, updated, target)
            ctx.event(key[0], updated["Id"], "Update")
        realm.put(key[0], updated, ctx.now)
        _customer_balances(ctx, key[0], updated, target)


def _customer_balances(ctx: Ctx, entity: str, obj: dict[str, Any] | None,
                       old: dict[str, Any] | None) -> None:
    """Customer.Balance moves by the change in open amount of this document (O(1) per write)."""
    if entity not in ("Invoice", "CreditMemo", "Payment"):
        return
    for txn, sign in ((old, -1), (obj, 1)):
        customer = ctx.realm.get("Customer", ((txn or {}).get("CustomerRef") or {}).get("value"))
        if customer is None:
            continue
        customer["Balance"] = money(float(customer.get("Balance", 0) or 0) + sign * _open_amount(entity, txn))
        customer["BalanceWithJobs"] = customer["Balance"]


def _open_amount(entity: str, txn: dict[str, Any] | None) -> float:
    if not txn:
        return 0.0
    if entity == "Invoice":
        return float(txn.get("Balance", 0) or 0)
    if entity == "CreditMemo":
        return -float(txn.get("Balance", 0) or 0)
    return -float(txn.get("UnappliedAmt", 0) or 0)


def render(ctx: Ctx, entity: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API shows it (adds read-time fields such as Payment LineEx)."""
    if entity == "Payment":
        shown = {**obj, "Line": [_payment_line(ctx, line) for line in obj.get("Line") or []]}
        deposit = ctx.realm.deposited.get(str(obj.get("Id")))
        if deposit is not None:
            shown["LinkedTxn"] = [{"TxnId": deposit, "TxnType": "Deposit"}]
        return shown
    if entity == "Account" and not ctx.settings.get("account_numbers") and "AcctNum" in obj:
        return {k: v for k, v in obj.items() if k != "AcctNum"}
    return obj


def _payment_line(ctx: Ctx, line: dict[str, Any]) -> dict[str, Any]:
    links = line.get("LinkedTxn") or []
    if not links:
        return line
    link = links[0]
    target = ctx.realm.get(link.get("TxnType", ""), link.get("TxnId", "")) or {}
    values = [("txnId", str(link.get("TxnId"))),
              ("txnOpenBalance", f"{float(target.get('Balance', 0) or 0):.2f}"),
              ("txnReferenceNumber", str(target.get("DocNumber", "")))]
    entries = [{"name": "{http://schema.intuit.com/finance/v3}NameValue", "nil": False,
                "value": {"Name": name, "Value": value},
                "declaredType": "com.intuit.schema.finance.v3.NameValue",
                "scope": "javax.xml.bind.JAXBElement$GlobalScope", "globalScope": True,
                "typeSubstituted": False} for name, value in values]
    return {"Amount": line.get("Amount"), "LineEx": {"any": entries}, **{k: v for k, v in line.items()
                                                                          if k != "Amount"}}
