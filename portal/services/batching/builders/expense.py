"""Turn ConnectWise expenses into expense groups and each group into its QuickBooks
document (SPEC 8): a Bill or VendorCredit to the member vendor, a Purchase (card or cash,
a card refund as a credit Purchase), or a JournalEntry; personal groups are marked only.

Pure: no database, no HTTP. The expense record type (`types/expenses.py`) reads
ConnectWise into `Expense` values, groups them with `group()` for the selection screen,
and runs `check()`, `needs()` and `build()` for the engine. Money is Decimal until
`_jsonable`, the last step of `build()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from portal.services.batching.types import base
from portal.services.batching.types.base import Need
from portal.services.company_settings import CompanySettings, named
from portal.services.mapping import MappingSet, Problem, Resolution
from portal.services.matching import normalise

CENT = Decimal("0.01")
DASH = "\u2013"  # SPEC 8.2 writes "DATE TYPE – DESCRIPTION" with an en dash
MAX_DESCRIPTION = 4000
RESOLVED = frozenset({"exact", "override"})
REIMBURSABLE, NON_REIMBURSABLE, PERSONAL = "Reimbursable", "NonReimbursable", "Personal"
CARD_TYPES = frozenset({"Credit Card"})
BANK_TYPES = frozenset({"Bank"})


class BuildError(base.BuildError):
    """An expense group that cannot be built as it stands; `hint` says what fixes it."""


# ---- inputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expense:
    """One ConnectWise expense entry with its GL export lines (expense and offset)."""

    id: int  # the expense entry id (what the accounting batch entries name)
    gl_ids: tuple[int, ...]  # its GL entries: the expense line and the offset
    day: date | None
    classification: str  # Reimbursable | NonReimbursable | Personal
    member: str  # the member identifier
    member_name: str  # "First Last"
    amount: Decimal  # signed: a refund is negative
    account: str  # the expense type's GL account
    offset_account: str  # the balancing account (payment method)
    approved: bool = True
    vendor_number: str | None = None
    type_name: str = ""
    memo: str = ""
    company: str = ""
    charge: str = ""  # "Ticket #1001" or "Project NAME"
    payment_method: str = ""
    ap_account: str = ""
    gl_class: str = ""
    currency: str = ""
    tax: Decimal = Decimal(0)
    tax_code: str = ""
    period_start: date | None = None
    period_end: date | None = None
    location_id: int | None = None
    location: str = ""


@dataclass(frozen=True)
class Group:
    """The expenses that become one QuickBooks document (SPEC 8.1)."""

    classification: str
    expenses: tuple[Expense, ...]

    @property
    def gl_ids(self) -> tuple[int, ...]:
        """Every GL entry id of the group: expense lines and offsets (SPEC 8.2 marking)."""
        return tuple(sorted({gl for e in self.expenses for gl in e.gl_ids}))

    @property
    def first_gl(self) -> int:
        return self.gl_ids[0] if self.gl_ids else min(e.id for e in self.expenses)

    @property
    def doc_number(self) -> str:
        return f"E{self.first_gl}"

    @property
    def member(self) -> str:
        return self.expenses[0].member

    @property
    def member_name(self) -> str:
        return self.expenses[0].member_name

    @property
    def total(self) -> Decimal:
        return sum((e.amount for e in self.expenses), Decimal(0)).quantize(CENT, ROUND_HALF_UP)

    @property
    def tax(self) -> Decimal:
        return sum((e.tax for e in self.expenses), Decimal(0)).quantize(CENT, ROUND_HALF_UP)

    @property
    def day(self) -> date | None:
        """TxnDate: the report period's end, or the last expense date."""
        ends = [e.period_end for e in self.expenses if e.period_end]
        if ends:
            return max(ends)
        days = [e.day for e in self.expenses if e.day]
        return max(days) if days else None

    @property
    def offset_account(self) -> str:
        return self.expenses[0].offset_account

    @property
    def currency(self) -> str:
        return self.expenses[0].currency


@dataclass
class Grouped:
    groups: list[Group] = field(default_factory=list)
    held: list[tuple[Expense, str]] = field(default_factory=list)  # (expense, flag)


def group(expenses: Iterable[Expense], settings: CompanySettings) -> Grouped:
    """SPEC 8.1: reimbursable by member and report period; non-reimbursable per entry or
    per report (`non_reimbursable_grouping`); personal marked only or skipped
    (`personal_expenses`); unapproved held back unless `sync_unapproved_expenses`.
    A group also shares its currency and, unless it becomes a Bill, its offset account
    (which decides the document type)."""
    out = Grouped()
    keyed: dict[tuple[Any, ...], list[Expense]] = {}
    for expense in sorted(expenses, key=lambda e: (min(e.gl_ids or (e.id,)), e.id)):
        kind = expense.classification
        if not expense.approved and not settings.sync_unapproved_expenses:
            out.held.append((expense, "unapproved"))
            continue
        if kind == PERSONAL and settings.personal_expenses != "MarkOnly":
            out.held.append((expense, "personal, skipped"))
            continue
        period = (expense.period_start, expense.period_end)
        if kind == NON_REIMBURSABLE and settings.non_reimbursable_grouping == "PerEntry":
            key: tuple[Any, ...] = (kind, expense.id)
        elif kind == REIMBURSABLE and settings.reimbursable_expenses_as_bills:
            key = (kind, expense.member, period, expense.currency)
        else:
            key = (kind, expense.member, period, expense.currency, expense.offset_account)
        keyed.setdefault(key, []).append(expense)
    out.groups = [Group(key[0], tuple(members)) for key, members in keyed.items()]
    return out


# ---- what a group becomes ------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the QuickBooks company is, as far as an expense document depends on it."""

    is_us: bool
    class_tracking: str  # none | line | txn
    multicurrency: bool
    home_currency: str
    name: str


@dataclass
class Built:
    entity: str | None  # Bill | VendorCredit | Purchase | JournalEntry; None: mark only
    doc_number: str
    payload: dict[str, Any] | None
    cw_total: Decimal  # positive: the document's own sign
    cw_signed: Decimal
    cw_tax: Decimal
    warnings: list[str] = field(default_factory=list)
    note: str | None = None


def account_type(mapping: MappingSet, account: str) -> str | None:
    """The QuickBooks type of a mapped GL account, or None while it does not resolve."""
    found = mapping.account(account)
    if found.status not in RESOLVED or found.qbo_id is None:
        return None
    ref = mapping.index("Account").by_id.get(found.qbo_id)
    return ref.type if ref is not None else None


def entity_of(group_: Group, settings: CompanySettings, mapping: MappingSet) -> str | None:
    """SPEC 8.2: the document type, or None for a personal group (marked only) or while the
    offset account does not resolve. Bank offsets are always Purchases; a negative one is
    refused by `check()`."""
    if group_.classification == PERSONAL:
        return None
    negative = group_.total < 0
    if group_.classification == REIMBURSABLE and settings.reimbursable_expenses_as_bills:
        return "VendorCredit" if negative else "Bill"
    kind = account_type(mapping, group_.offset_account)
    if kind is None:
        return None
    if kind in CARD_TYPES or kind in BANK_TYPES:
        return "Purchase"
    return "JournalEntry"


def target(group_: Group, settings: CompanySettings, mapping: MappingSet | None) -> str:
    """What the selection screen shows before Submit: the document type in words."""
    if group_.classification == PERSONAL:
        return "Marked only"
    if mapping is None:
        if group_.classification == REIMBURSABLE and settings.reimbursable_expenses_as_bills:
            return "VendorCredit" if group_.total < 0 else "Bill"
        return "by offset account"
    entity = entity_of(group_, settings, mapping)
    if entity == "Purchase":
        kind = account_type(mapping, group_.offset_account)
        if kind in CARD_TYPES:
            return "Purchase (card credit)" if group_.total < 0 else "Purchase (card)"
        return "Purchase (cash)"
    return entity or "Purchase or JournalEntry (by the offset account's QuickBooks type)"


def member_vendor(group_: Group, mapping: MappingSet) -> Resolution:
    """The member vendor with the SPEC 8.3 wording: no vendor number, or a name a payroll
    employee already holds (QuickBooks would refuse the vendor, 6240)."""
    first = group_.expenses[0]
    found = mapping.member_vendor(first.member_name, first.member, first.vendor_number)
    if not first.vendor_number:
        return Resolution("vendor", first.member_name, "error",
                          message=f"Member {first.member} has no Vendor Nbr in ConnectWise.",
                          hint="Set System › Members › Vendor Nbr.")
    if found.status == "conflict" and mapping.index("Employee").near.get(
            normalise(found.cw_value)):
        return Resolution("vendor", found.cw_value, "conflict",
                          message=f"QuickBooks refused vendor '{found.cw_value}': an employee "
                                  "already uses this name.",
                          hint="Add a middle initial in CW, or turn on "
                               f"{named('append_account_name')}, so payroll employees and "
                               "member vendors differ.")
    return found


def _account(mapping: MappingSet, value: str, message: str, hint: str) -> Resolution:
    found = mapping.account(value)
    if found.status == "missing":
        return Resolution("account", value, "missing", message=message, hint=hint)
    return found


def resolutions(group_: Group, settings: CompanySettings,
                mapping: MappingSet) -> list[Resolution]:
    """Every reference the group's document uses, with the SPEC 8.3 messages."""
    found: list[Resolution] = []
    if group_.classification == PERSONAL:
        return found
    found.append(member_vendor(group_, mapping))
    bill = group_.classification == REIMBURSABLE and settings.reimbursable_expenses_as_bills
    if not bill:
        first = group_.expenses[0]
        found.append(_account(
            mapping, group_.offset_account,
            f"Offset account '{group_.offset_account}' for payment method "
            f"'{first.payment_method}' does not exist in QuickBooks.",
            "Create it, or fix the CW expense offset GL setup."))
    for expense in group_.expenses:
        if not expense.account:
            continue
        found.append(_account(
            mapping, expense.account,
            f"Expense type '{expense.type_name}' maps to GL account '{expense.account}', "
            "which does not exist in QuickBooks.",
            "Fix the GL mapping in CW or the QBO chart of accounts."))
        if bill and expense.ap_account:
            found.append(mapping.account(expense.ap_account, f"expense {expense.id} AP"))
        if settings.use_classes and expense.gl_class:
            found.append(mapping.klass(expense.gl_class))
    return found


def check(group_: Group, label: str, settings: CompanySettings, facts: Facts,
          mapping: MappingSet) -> list[Problem]:
    """Every problem that stops the group (writes nothing): references, offset types,
    currency and the class rule."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for resolution in resolutions(group_, settings, mapping):
        if resolution.blocking and (resolution.kind, resolution.cw_value) not in seen:
            seen.add((resolution.kind, resolution.cw_value))
            problems.append(Problem(label, "error", resolution.message or resolution.status,
                                    resolution.hint, resolution.kind, resolution.cw_value,
                                    resolution.status))
    if group_.classification == PERSONAL:
        return problems
    entity = entity_of(group_, settings, mapping)
    if entity == "Purchase" and group_.total < 0 and account_type(
            mapping, group_.offset_account) in BANK_TYPES:
        problems.append(Problem(
            label, "error",
            f"Expense group {group_.doc_number} is a refund of {-group_.total} on bank "
            f"account '{group_.offset_account}'; QuickBooks has no negative cash expense.",
            "Record the refund as a deposit in QuickBooks by hand, or move it to a credit "
            "card or liability offset in ConnectWise."))
    currency = group_.currency
    if currency and currency != facts.home_currency and not facts.multicurrency:
        problems.append(Problem(
            label, "error",
            f"Expense group {group_.doc_number} is in {currency} but QuickBooks company "
            f"{facts.name} has multicurrency off.",
            f"Turn on multicurrency in QuickBooks, or enter the expenses in "
            f"{facts.home_currency}."))
    if settings.use_classes and facts.class_tracking == "txn" and entity != "JournalEntry":
        classes = sorted({e.gl_class for e in group_.expenses if e.gl_class})
        if len(classes) > 1:
            problems.append(Problem(
                label, "error",
                f"QuickBooks allows one class per transaction, but expense group "
                f"{group_.doc_number} has lines in classes {', '.join(classes)}.",
                "Turn on class per line in QuickBooks or give the expenses one class."))
    if group_.tax and _tax_as_line(settings, facts) and not settings.purchase_tax_account:
        problems.append(Problem(
            label, "error",
            f"Expense group {group_.doc_number} carries purchase tax {group_.tax}, and "
            f"{named('purchase_tax_as_line_item')} is on without a purchase tax account.",
            f"Choose {named('purchase_tax_account')} on the Purchases tab."))
    return problems


def needs(group_: Group, settings: CompanySettings, mapping: MappingSet) -> list[Need]:
    """The member vendor and classes to create first (SPEC 5.2)."""
    out: list[Need] = []
    for resolution in resolutions(group_, settings, mapping):
        if resolution.status == "will_create":
            fields = {"CompanyName": group_.expenses[0].vendor_number or ""} \
                if resolution.kind == "vendor" else {}
            out.append(Need(resolution.kind, resolution.cw_value, fields))
    return out


# ---- the document ----------------------------------------------------------------------


def describe(expense: Expense) -> str:
    """SPEC 8.2: `DATE TYPE – DESCRIPTION [COMPANY / TICKET or PROJECT]`."""
    day = expense.day.isoformat() if expense.day else ""
    text = f"{day} {expense.type_name} {DASH} {expense.memo}".strip()
    where = " / ".join(part for part in (expense.company, expense.charge) if part)
    if where:
        text = f"{text} [{where}]"
    return text[:MAX_DESCRIPTION]


def _resolved(found: Resolution, what: str) -> str:
    if found.status in RESOLVED and found.qbo_id is not None:
        return found.qbo_id
    raise BuildError(found.message or f"{what} '{found.cw_value}' is {found.status}.",
                     found.hint)


def _tax_as_line(settings: CompanySettings, facts: Facts) -> bool:
    return facts.is_us or settings.purchase_tax_as_line_item


def _tax_code(settings: CompanySettings, mapping: MappingSet, cw_code: str) -> str:
    """Non-US purchase tax: the QuickBooks code mapped to the CW code (Taxes tab), else the
    code of the same name."""
    for row in settings.tax_code_mappings:
        if row.cw_tax_code == cw_code:
            return row.qbo_tax_code_id
    found = mapping.index("TaxCode").exact.get(cw_code) if cw_code else None
    if found is not None:
        return found.qbo_id
    raise BuildError(f"ConnectWise tax code '{cw_code}' on an expense is not mapped to a "
                     "QuickBooks tax code.", "Add a row in Taxes › Tax code mappings.")


@dataclass
class _Line:
    account: str  # QuickBooks account id
    amount: Decimal  # in the document's sign
    description: str
    class_id: str | None = None
    tax_code: str | None = None


def _lines(group_: Group, settings: CompanySettings, facts: Facts, mapping: MappingSet,
           sign: Decimal) -> list[_Line]:
    """One line per expense (net of tax), plus one purchase tax line when tax goes as a
    line item (US, or `purchase_tax_as_line_item`)."""
    lines = []
    as_line = _tax_as_line(settings, facts)
    for expense in group_.expenses:
        class_id = _resolved(mapping.klass(expense.gl_class), "Class") \
            if settings.use_classes and expense.gl_class else None
        code = _tax_code(settings, mapping, expense.tax_code) \
            if expense.tax and not as_line else None
        lines.append(_Line(_resolved(mapping.account(expense.account), "GL account"),
                           (expense.amount - expense.tax) * sign, describe(expense),
                           class_id, code))
    if group_.tax and as_line:
        if not settings.purchase_tax_account:
            raise BuildError(f"Expense group {group_.doc_number} carries purchase tax; choose "
                             f"{named('purchase_tax_account')} on the Purchases tab.")
        lines.append(_Line(settings.purchase_tax_account, group_.tax * sign, "Purchase tax"))
    return lines


def _expense_line(line: _Line, per_line_class: bool) -> dict[str, Any]:
    detail: dict[str, Any] = {"AccountRef": {"value": line.account},
                              "BillableStatus": "NotBillable"}
    if line.class_id and per_line_class:
        detail["ClassRef"] = {"value": line.class_id}
    if line.tax_code:
        detail["TaxCodeRef"] = {"value": line.tax_code}
    return {"DetailType": "AccountBasedExpenseLineDetail", "Amount": line.amount,
            "Description": line.description, "AccountBasedExpenseLineDetail": detail}


def _journal_line(account: str, amount: Decimal, description: str,
                  class_id: str | None = None, vendor: str | None = None) -> dict[str, Any]:
    """A debit for a positive amount, a credit for a negative one (so a refund swaps)."""
    detail: dict[str, Any] = {"PostingType": "Debit" if amount >= 0 else "Credit",
                              "AccountRef": {"value": account}}
    if class_id:
        detail["ClassRef"] = {"value": class_id}
    if vendor:
        detail["Entity"] = {"Type": "Vendor", "EntityRef": {"value": vendor}}
    return {"DetailType": "JournalEntryLineDetail", "Amount": abs(amount),
            "Description": description, "JournalEntryLineDetail": detail}


def build(group_: Group, settings: CompanySettings, facts: Facts, mapping: MappingSet, *,
          request_token: str) -> Built:
    """The group's QuickBooks document (SPEC 8.2). A reference that does not resolve
    raises BuildError, so a half-mapped document is never posted."""
    total = group_.total
    if group_.classification == PERSONAL:
        return Built(None, group_.doc_number, None, abs(total), total, group_.tax,
                     note="personal expenses: marked without a document")
    entity = entity_of(group_, settings, mapping)
    if entity is None:
        raise BuildError(f"Offset account '{group_.offset_account}' does not exist in "
                         "QuickBooks.", "Create it, or fix the CW expense offset GL setup.")
    vendor = _resolved(member_vendor(group_, mapping), "Vendor")
    sign = Decimal(-1) if total < 0 else Decimal(1)
    lines = _lines(group_, settings, facts, mapping, sign)
    header: dict[str, Any] = {
        "DocNumber": group_.doc_number,
        "PrivateNote": f"ConnectWise expenses {group_.doc_number} ({group_.member}) "
                       f"\u00b7 portal:{request_token}"}
    if group_.day:
        header["TxnDate"] = group_.day.isoformat()
    if group_.currency and group_.currency != facts.home_currency:
        header["CurrencyRef"] = {"value": group_.currency}
    per_line_class = facts.class_tracking != "txn"
    classes = {line.class_id for line in lines if line.class_id}
    if classes and not per_line_class and entity != "JournalEntry":
        header["ClassRef"] = {"value": sorted(classes)[0]}
    if entity == "JournalEntry":
        offset = _resolved(mapping.account(group_.offset_account), "GL account")
        body_lines = [_journal_line(line.account, line.amount * sign, line.description,
                                    line.class_id) for line in lines]
        body_lines.append(_journal_line(offset, -total, f"{group_.member_name} "
                                                        f"{group_.doc_number}",
                                        vendor=vendor))
        payload = {**header, "Line": body_lines}
    else:
        payload = {**header, "Line": [_expense_line(line, per_line_class) for line in lines]}
        if entity in ("Bill", "VendorCredit"):
            payload["VendorRef"] = {"value": vendor}
            ap = group_.expenses[0].ap_account
            if ap:
                payload["APAccountRef"] = {"value": _resolved(mapping.account(ap),
                                                              "GL account")}
        else:
            card = account_type(mapping, group_.offset_account) in CARD_TYPES
            payload["PaymentType"] = "CreditCard" if card else "Cash"
            payload["AccountRef"] = {"value": _resolved(mapping.account(
                group_.offset_account), "GL account")}
            payload["EntityRef"] = {"value": vendor, "type": "Vendor"}
            if card:
                payload["Credit"] = total < 0
    return Built(entity, group_.doc_number, _jsonable(payload), abs(total), total, group_.tax)


def _jsonable(value: Any) -> Any:
    """The one place Decimal becomes float, so the payload goes through json.dumps."""
    if isinstance(value, Decimal):
        return float(value.quantize(CENT, ROUND_HALF_UP))
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def preview(group_: Group, settings: CompanySettings, facts: Facts, mapping: MappingSet, *,
            request_token: str = "0" * 32) -> Built:
    """The document as it will be once the missing member vendor and classes exist (they
    stand in as `new:<kind>:<name>`, see `types.base.fill_in`)."""
    return build(group_, settings, facts, base.stand_ins(mapping), request_token=request_token)
