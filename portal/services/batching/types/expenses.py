"""Expenses (SPEC 8): ConnectWise expense entries, grouped as they will post, to QuickBooks
Bills, VendorCredits, Purchases and JournalEntries; what is expense-specific, and nothing
else.

A record is one group (`builders/expense.py`): its key names the member and the group's
smallest GL entry id, `source_refs` holds the expense entry ids and `gl_entry_ids` every GL
entry of the group (lines and offsets), which marking puts in one accounting batch whose
entries all name one of those expenses. ConnectWise is read in three calls per 50
expenses: the unposted rows (classification, tax, still unposted?), the expense entries
(approval status, ticket) and the GL export (accounts, report period, vendor number, GL
entry ids).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from portal.integrations.connectwise import ConnectWiseClient, all_of, cond
from portal.models import BatchType
from portal.services.batching.builders import expense as builder
from portal.services.batching.types.base import (
    Built,
    CompanyFacts,
    Context,
    Filters,
    Need,
    Planned,
    Record,
    period_problem,
)
from portal.services.batching.types.invoices import _chunks, _day, _money, by_ids
from portal.services.company_settings import named
from portal.services.mapping import Problem, Resolution

log = logging.getLogger(__name__)
EXPORT_CHUNK = 50
IN_CHUNK = 200
PARALLEL_READS = 4
# SPEC 8.1: the entry statuses that count as approved [uncertain which values CW uses]
APPROVED = frozenset({"ApprovedByTierOne", "ApprovedByTierTwo", "ReadyToBill", "Billed",
                      "BilledAgreement"})
UNPOSTED_FIELDS = ("id,expenseDetailId,classification,member,dateExpense,total,currency,"
                   "locationId,expenseType,creditAccount,paymentMethod,salesTaxAmount,taxCode")
ENTRY_FIELDS = "id,status,chargeToId,chargeToType,notes,type,company,date"
CLASSIFICATIONS = {"Reimbursable": builder.REIMBURSABLE, "NonReimbursable":
                   builder.NON_REIMBURSABLE, "Non-Reimbursable": builder.NON_REIMBURSABLE,
                   "Personal": builder.PERSONAL}


# ---- ConnectWise reads ------------------------------------------------------------------------

def _unposted_rows(cw: ConnectWiseClient, conditions: str | None) -> list[dict[str, Any]]:
    return [row for row in cw.iter_all("/finance/accounting/unpostedexpenses",
                                       conditions=conditions, fields=UNPOSTED_FIELDS,
                                       order_by="dateExpense asc, id asc")
            if row.get("expenseDetailId")]


def _export_chunk(cw: ConnectWiseClient, ids: list[int], thru: date | None
                  ) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"batchIdentifier": "portal-validate", "exportExpensesFlag": True,
                            "includedExpenseIds": ids}
    if thru:
        body["thruDate"] = f"{thru.isoformat()}T23:59:59Z"
    # The export creates no accounting batch (SPEC 6.4): a read, retried like one.
    answer = cw.request("POST", "/finance/accounting/export", json=body,
                        idempotent=True).json() or {}
    return list(answer.get("expenses") or [])


def _signature(member_id: Any, day: Any, amount: Any) -> tuple[str, str, Decimal]:
    return str(member_id), str(day or "")[:10], _money(amount)


def _charge(entry: dict[str, Any], exported: dict[str, Any]) -> str:
    project = (exported.get("project") or {}).get("name")
    if project:
        return f"Project {project}"
    if entry.get("chargeToType") == "ServiceTicket" and entry.get("chargeToId"):
        return f"Ticket #{entry['chargeToId']}"
    if entry.get("chargeToType") == "ProjectTicket" and entry.get("chargeToId"):
        return f"Project ticket #{entry['chargeToId']}"
    return ""


def load(cw: ConnectWiseClient, ids: list[int], thru: date | None,
         rows: list[dict[str, Any]] | None = None) -> dict[int, builder.Expense]:
    """The expenses still unposted among `ids`, by expense entry id: their unposted rows
    (read here unless given), entries and GL export lines, every call on one pool of
    parallel reads (200 ids per list call, 50 per export). The export names no expense id,
    so its lines are matched on member, date and amount, in id order."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    with ThreadPoolExecutor(PARALLEL_READS, thread_name_prefix="cw-expenses") as pool:
        row_calls = [] if rows is not None else [
            pool.submit(_unposted_rows, cw, cond("expenseDetailId", "in", chunk))
            for chunk in _chunks(ids, IN_CHUNK)]
        entry_calls = [pool.submit(by_ids, cw, "/expense/entries", chunk, ENTRY_FIELDS)
                       for chunk in _chunks(ids, IN_CHUNK)]
        export_calls = [(chunk, pool.submit(_export_chunk, cw, chunk, thru))
                        for chunk in _chunks(ids, EXPORT_CHUNK)]
        if rows is None:
            rows = [row for call in row_calls for row in call.result()]
        entries = {k: v for call in entry_calls for k, v in call.result().items()}
        exports = [(chunk, call.result()) for chunk, call in export_calls]
    by_id = {int(row["expenseDetailId"]): row for row in rows}
    found: dict[int, builder.Expense] = {}
    for chunk, exported in exports:
        waiting: dict[tuple[str, str, Decimal], list[int]] = {}
        for expense_id in chunk:
            row = by_id.get(expense_id)
            if row is not None:
                waiting.setdefault(_signature((row.get("member") or {}).get("id"),
                                              row.get("dateExpense"), row.get("total")),
                                   []).append(expense_id)
        for line in exported:
            key = _signature((line.get("member") or {}).get("id"), line.get("documentDate"),
                             line.get("total"))
            if waiting.get(key):
                expense_id = waiting[key].pop(0)
                found[expense_id] = _expense(expense_id, by_id[expense_id],
                                             entries.get(expense_id) or {}, line)
    return found


def _expense(expense_id: int, row: dict[str, Any], entry: dict[str, Any],
             line: dict[str, Any]) -> builder.Expense:
    offset = line.get("offset") or {}
    member = line.get("member") or row.get("member") or {}
    gl_ids = tuple(int(x) for x in (line.get("id"), offset.get("id")) if x)
    tax = _money(row.get("salesTaxAmount"))
    return builder.Expense(
        id=expense_id, gl_ids=gl_ids, day=_day(line.get("documentDate") or row.get(
            "dateExpense")),
        classification=CLASSIFICATIONS.get(str(row.get("classification") or ""),
                                           builder.REIMBURSABLE),
        member=str(member.get("identifier") or ""), member_name=str(member.get("name") or ""),
        amount=_money(line.get("total")), account=str(line.get("accountNumber") or ""),
        offset_account=str(offset.get("accountNumber") or row.get("creditAccount") or ""),
        approved=str(entry.get("status") or "") in APPROVED,
        vendor_number=str(line.get("vendorNumber") or "") or None,
        type_name=str(line.get("description") or (row.get("expenseType") or {}).get("name")
                      or ""),
        memo=str(line.get("memo") or entry.get("notes") or ""),
        company=str((line.get("company") or {}).get("name") or ""),
        charge=_charge(entry, line),
        payment_method=str((row.get("paymentMethod") or {}).get("name") or offset.get("memo")
                           or ""),
        ap_account=str(line.get("apAccountNumber") or ""),
        gl_class=str(line.get("glClass") or ""),
        currency=str((line.get("currency") or row.get("currency") or {}).get("currencyCode")
                     or ""),
        tax=tax, tax_code=str((row.get("taxCode") or {}).get("name") or ""),
        period_start=_day(line.get("periodStartDate")),
        period_end=_day(line.get("periodEndDate")),
        location_id=row.get("locationId"), location="")


def unposted(cw: ConnectWiseClient, filters: Filters) -> list[Record]:
    """The unposted expenses grouped as they will post, oldest first; held expenses
    (unapproved, personal skipped) as greyed rows of their own."""
    settings = filters.settings
    assert settings is not None, "expense groups depend on the company's settings"
    conditions = []
    if filters.location_ids:
        conditions.append(cond("locationId", "in", sorted(set(filters.location_ids))))
    if filters.date_from:
        conditions.append(cond("dateExpense", ">=", filters.date_from))
    if filters.date_to:
        conditions.append(cond("dateExpense", "<", filters.date_to.fromordinal(
            filters.date_to.toordinal() + 1)))
    rows = _unposted_rows(cw, all_of(*conditions) or None)
    thru = max((d for d in (_day(r.get("dateExpense")) for r in rows) if d), default=None)
    expenses = load(cw, [int(r["expenseDetailId"]) for r in rows], thru, rows)
    grouped = builder.group(expenses.values(), settings)
    records = [record_of(g, settings, filters.mapping) for g in grouped.groups]
    records += [_held(e, flag) for e, flag in grouped.held]
    return sorted(records, key=lambda r: (r.day or date.min, r.cw_id or 0))


def record_of(group: builder.Group, settings: Any, mapping: Any = None) -> Record:
    first = group.expenses[0]
    return Record(
        key=f"exp:{group.member}:{group.first_gl}", cw_id=group.first_gl,
        number=group.doc_number, day=group.day, kind=group.classification,
        party=group.member_name, total=group.total, currency=group.currency,
        location_id=first.location_id, gl_entry_ids=group.gl_ids,
        source_refs=tuple(str(e.id) for e in group.expenses),
        target=builder.target(group, settings, mapping),
        lines=tuple(f"{builder.describe(e)}: {e.amount}" for e in group.expenses))


def _held(expense: builder.Expense, flag: str) -> Record:
    first = min(expense.gl_ids or (expense.id,))
    return Record(key=f"exp:{expense.member}:{first}", cw_id=first, number=f"E{first}",
                  day=expense.period_end or expense.day, kind=expense.classification,
                  party=expense.member_name, total=expense.amount, currency=expense.currency,
                  location_id=expense.location_id, source_refs=(str(expense.id),),
                  lines=(f"{builder.describe(expense)}: {expense.amount}",), held=flag)


@dataclass
class ExpenseWindow:
    """ConnectWise's data for a window of expense groups: their expenses by entry id."""

    expenses: dict[int, builder.Expense] = field(default_factory=dict)

    def group(self, record: Record) -> builder.Group | None:
        """The record's group, or None when one of its expenses is no longer unposted."""
        ids = [int(ref) for ref in record.source_refs if str(ref).isdigit()]
        if not ids or any(i not in self.expenses for i in ids):
            return None
        return builder.Group(record.kind, tuple(self.expenses[i] for i in ids))


def _facts(company: CompanyFacts) -> builder.Facts:
    return builder.Facts(**{name: getattr(company, name)
                            for name in builder.Facts.__dataclass_fields__})


# ---- the record type ------------------------------------------------------------------------

class Expenses:
    """SPEC 8: ConnectWise expenses to QuickBooks Bills, Purchases and journal entries."""

    kind = BatchType.EXPENSE
    noun = "expense group"
    letter = "E"
    export_flag = "exportExpensesFlag"
    entry_field = "expense"
    sends_doc_numbers = False  # custom numbering is a sales-form preference

    def label(self, record: Record) -> str:
        return f"expense group {record.number} ({record.party})"

    def list_unposted(self, cw: ConnectWiseClient, filters: Filters) -> list[Record]:
        return unposted(cw, filters)

    def read(self, cw: ConnectWiseClient, records: Sequence[Record],
             ctx: Context) -> ExpenseWindow:
        ids = [int(ref) for r in records for ref in r.source_refs if str(ref).isdigit()]
        return ExpenseWindow(load(cw, ids, max((r.day for r in records if r.day),
                                               default=None)))

    def gl_entry_ids(self, window: ExpenseWindow, record: Record) -> list[int] | None:
        found = window.group(record)
        return list(found.gl_ids) if found is not None else None

    def evaluate(self, window: ExpenseWindow, record: Record, ctx: Context,
                 request_token: str) -> tuple[list[Problem], Built | None]:
        label = self.label(record)
        found = window.group(record)
        if found is None:
            return [Problem(label, "error",
                            f"Expense group {record.number} changed in ConnectWise: one of "
                            "its expenses is no longer unposted.",
                            "Refresh the selection and submit the group again.")], None
        problems = []
        unapproved = [e for e in found.expenses if not e.approved]
        if unapproved and not ctx.settings.sync_unapproved_expenses:
            problems.append(Problem(
                label, "error", f"{len(unapproved)} expenses skipped: not approved.",
                f"Approve them in CW, or turn on {named('sync_unapproved_expenses')}."))
        facts = _facts(ctx.company)
        problems += builder.check(found, label, ctx.settings, facts, ctx.mapping)
        if found.classification != builder.PERSONAL:
            closed = period_problem(label, found.day, ctx)
            if closed is not None:
                problems.append(closed)
        if problems:
            return problems, None
        try:
            built = builder.preview(found, ctx.settings, facts, ctx.mapping,
                                    request_token=request_token)
        except builder.BuildError as exc:
            return [Problem(label, "error", exc.message, exc.hint)], None
        return [], Built(entity=built.entity, doc_number=built.doc_number,
                         payload=built.payload, cw_total=built.cw_total, cw_tax=built.cw_tax,
                         warnings=list(built.warnings), note=built.note,
                         cw_signed=built.cw_signed)

    def needs(self, window: ExpenseWindow, record: Record, ctx: Context) -> list[Need]:
        found = window.group(record)
        return builder.needs(found, ctx.settings, ctx.mapping) if found is not None else []

    def planned(self, record: Record, ctx: Context, window: ExpenseWindow | None = None
                ) -> Planned | None:
        if window is None:  # a Bill's number is known from the listing: checked at once
            bill = record.kind == builder.REIMBURSABLE and \
                ctx.settings.reimbursable_expenses_as_bills
            return Planned("VendorCredit" if record.total < 0 else "Bill", record.number) \
                if bill else None
        found = window.group(record)
        if found is None:
            return None
        entity = builder.entity_of(found, ctx.settings, ctx.mapping)
        return Planned(entity, found.doc_number) if entity else None

    def values(self, window: ExpenseWindow, record: Record, ctx: Context
               ) -> list[Resolution]:
        found = window.group(record)
        return builder.resolutions(found, ctx.settings, ctx.mapping) if found else []

    def identifier(self, record: Record, day: date) -> str:
        """`YYYY-MM-DD-E<smallest GL entry id><member identifier>` (SPEC 8.2)."""
        member = record.key.split(":")[1] if record.key.count(":") >= 2 else ""
        return f"{day.isoformat()}-{record.number}{member}"

    def entry_id(self, record: Record) -> Any:
        """The entries of a group's accounting batch name its expenses, one each."""
        return frozenset(int(ref) for ref in record.source_refs if str(ref).isdigit())


EXPENSES = Expenses()
