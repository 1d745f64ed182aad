"""Invoices and credit memos (SPEC 7): what is invoice-specific, and nothing else.

ConnectWise is read in as few calls as it allows (SPEC 7.1): the unposted list for the
grid; per window, the GL export (50 invoices per call, the calls in parallel under the
shared limit), the invoices, and for Condensed and Detailed the time entries and tickets
(200 ids per call). The pure builder (`builders/invoice.py`) turns one into a QuickBooks
Invoice or CreditMemo.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from portal.integrations.connectwise import ConnectWiseClient, all_of, cond
from portal.models import BatchType
from portal.services.batching.builders import invoice as builder
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
from portal.services.mapping import MappingSet, Problem, Resolution

log = logging.getLogger(__name__)
EXPORT_CHUNK = 50
IN_CHUNK = 200
PARALLEL_READS = 4
UNPOSTED_FIELDS = ("id,billingLogId,invoiceNumber,invoiceDate,invoiceType,company,"
                   "accountNumber,locationId,location,total,currency,salesTax")
WORK_SOURCES = ("WorkRoleWorkType", "WorkRole", "WorkType")


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return Decimal("0.00")


# ---- ConnectWise reads ------------------------------------------------------------------------

def unposted(cw: ConnectWiseClient, *, location_ids: Iterable[int] = (),
             date_from: date | None = None, date_to: date | None = None) -> list[Record]:
    """The unposted invoices, filtered by location and invoice date, oldest first."""
    conditions = []
    locations = sorted(set(location_ids))
    if locations:
        conditions.append(cond("locationId", "in", locations))
    if date_from:
        conditions.append(cond("invoiceDate", ">=", date_from))
    if date_to:
        conditions.append(cond("invoiceDate", "<", date_to.fromordinal(date_to.toordinal() + 1)))
    rows = []
    for row in cw.iter_all("/finance/accounting/unpostedinvoices",
                           conditions=all_of(*conditions) or None, fields=UNPOSTED_FIELDS,
                           order_by="invoiceDate asc, id asc"):
        if not row.get("billingLogId"):
            continue
        invoice_id = int(row["billingLogId"])
        rows.append(Record(
            key=f"inv:{invoice_id}", cw_id=invoice_id, unposted_id=int(row["id"]),
            number=str(row.get("invoiceNumber") or ""), day=_day(row.get("invoiceDate")),
            kind=str(row.get("invoiceType") or "Standard"),
            party=str((row.get("company") or {}).get("name") or ""),
            total=_money(row.get("total")),
            currency=str((row.get("currency") or {}).get("currencyCode") or ""),
            location_id=row.get("locationId"),
            location=str((row.get("location") or {}).get("name") or "")))
    return rows


def gl_export(cw: ConnectWiseClient, body: dict[str, Any], thru: date | None
              ) -> dict[str, Any]:
    """One GL export (SPEC 6.4: it creates no accounting batch, so it is a read, retried
    like one), with `thruDate` the latest selected date."""
    body = {"batchIdentifier": "portal-validate", **body}
    if thru:
        body["thruDate"] = f"{thru.isoformat()}T23:59:59Z"
    return cw.request("POST", "/finance/accounting/export", json=body,
                      idempotent=True).json() or {}


def _export_chunk(cw: ConnectWiseClient, ids: list[int], level: str,
                  thru: date | None) -> list[dict[str, Any]]:
    answer = gl_export(cw, {"exportInvoicesFlag": True, "includedInvoiceIds": ids,
                            "summarizeInvoices": level}, thru)
    return list(answer.get("transactions") or [])


def export(cw: ConnectWiseClient, invoice_ids: list[int], level: str = "Detailed",
           thru: date | None = None) -> dict[int, dict[str, Any]]:
    """GL export transactions by invoice id, 50 invoices per call, the calls in parallel."""
    chunks = list(_chunks(sorted(set(invoice_ids)), EXPORT_CHUNK))
    found: dict[int, dict[str, Any]] = {}
    if len(chunks) <= 1:
        answers = [_export_chunk(cw, chunk, level, thru) for chunk in chunks]
    else:
        with ThreadPoolExecutor(min(PARALLEL_READS, len(chunks)),
                                thread_name_prefix="cw-export") as pool:
            answers = list(pool.map(lambda c: _export_chunk(cw, c, level, thru), chunks))
    for transactions in answers:
        for tx in transactions:
            found[int(tx.get("id") or 0)] = tx
    return found


def by_ids(cw: ConnectWiseClient, path: str, ids: Iterable[int],
           fields: str | None = None) -> dict[int, dict[str, Any]]:
    """Records of `path` with `id in (…)`, 200 ids per call."""
    found: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids)), IN_CHUNK):
        for row in cw.iter_all(path, conditions=cond("id", "in", chunk), fields=fields):
            found[int(row["id"])] = row
    return found


def time_entries_of(transactions: Iterable[dict[str, Any]]) -> set[int]:
    return {int(line["timeEntry"]["id"]) for tx in transactions
            for line in tx.get("detail") or [] if (line.get("timeEntry") or {}).get("id")}


def tickets(cw: ConnectWiseClient, entries: Iterable[dict[str, Any]]) -> dict[int, dict]:
    """Service and project tickets the time entries were charged to."""
    service = {int(e["chargeToId"]) for e in entries
               if e.get("chargeToType") == "ServiceTicket" and e.get("chargeToId")}
    project = {int(e["chargeToId"]) for e in entries
               if e.get("chargeToType") == "ProjectTicket" and e.get("chargeToId")}
    found = by_ids(cw, "/service/tickets", service, "id,summary") if service else {}
    if project:
        found.update(by_ids(cw, "/project/tickets", project, "id,summary,project,phase"))
    return found


@dataclass
class InvoiceWindow:
    """ConnectWise's data for a window of invoices (SPEC 7.1)."""

    level: str
    transactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    time_entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)

    def source(self, record: Record) -> builder.Source | None:
        tx = self.transactions.get(record.cw_id or 0)
        if tx is None:
            return None
        return builder.Source(transaction=tx, invoice=self.invoices.get(record.cw_id or 0),
                              time_entries=self.time_entries, tickets=self.tickets)


# ---- the checks of one invoice (SPEC 5.6 checks 3-9) ---------------------------------------

def validate(transaction: dict[str, Any], mapping: MappingSet,
             company: CompanyFacts) -> list[Problem]:
    """Every reference and rule problem that stops this GL-export invoice (writes nothing)."""
    prefs = mapping.prefs
    number = str(transaction.get("documentNumber") or transaction.get("id"))
    record = f"invoice {number}"
    problems: list[Problem] = []
    if not str(transaction.get("glEntryIds") or "").strip():
        problems.append(Problem(record, "error",
                                f"Invoice {number} has no GL entries in ConnectWise; re-open "
                                "and re-close it.", "Re-close the invoice in ConnectWise."))
    doc_number = f"{prefs.doc_number_prefix}{number}"
    if len(doc_number) > builder.MAX_DOC_NUMBER:
        problems.append(Problem(record, "error",
                                f"DocNumber '{doc_number}' is {len(doc_number)} characters; "
                                "QuickBooks allows 21.", "Shorten the DocNumber prefix on "
                                                         "the Company tab."))
    company_ref = transaction.get("company") or {}
    resolutions: list[Resolution] = list(mapping.customer(
        str(company_ref.get("name") or ""), str(transaction.get("companyAccountNumber") or "")))
    header_account = transaction.get("accountNumber")
    if header_account:
        resolutions.append(mapping.account(str(header_account), f"invoice {number} header"))
    terms = transaction.get("billingTermsXref") or (transaction.get("billingTerms") or {}
                                                    ).get("name")
    if terms:
        resolutions.append(mapping.term(str(terms)))
    if prefs.use_locations:
        source = transaction.get("glClass") if prefs.location_source == "Class" else \
            transaction.get("salesTerritory")
        if source:
            resolutions.append(mapping.location(str(source)))
    classes = set()
    for position, line in enumerate(transaction.get("detail") or [], 1):
        account = line.get("accountNumber")
        if account:
            resolutions.append(mapping.account(str(account), f"invoice {number} line "
                                                             f"{position}"))
        item = (line.get("item") or {}).get("identifier")
        if item and line.get("glTypeId") != "ST":
            resolutions.append(mapping.item(str(item)))
        if prefs.use_classes and line.get("glClass") and line.get("glTypeId") != "ST":
            classes.add(str(line["glClass"]))
            resolutions.append(mapping.klass(str(line["glClass"])))
    currency = ((transaction.get("currency") or {}).get("currencyCode") or "").strip()
    if currency and currency != company.home_currency and not company.multicurrency:
        problems.append(Problem(
            record, "error",
            f"Invoice {number} is in {currency} but QuickBooks company {company.name} has "
            "multicurrency off.",
            "Turn on multicurrency in QuickBooks, or invoice this customer in "
            f"{company.home_currency}."))
    if prefs.item_account_mismatch == "Error":
        problems.extend(_item_bindings(record, transaction, mapping))
    if prefs.use_classes and company.class_tracking == "txn" and len(classes) > 1:
        names = sorted(classes)
        problems.append(Problem(
            record, "error",
            f"QuickBooks allows one class per transaction, but invoice {number} has lines in "
            f"classes {', '.join(names[:-1])} and {names[-1]}.",
            "Turn on class per line in QuickBooks or give the lines one class in ConnectWise."))
    seen: set[tuple[str, str]] = set()
    for resolution in resolutions:
        if resolution.blocking and (resolution.kind, resolution.cw_value) not in seen:
            seen.add((resolution.kind, resolution.cw_value))
            problems.append(Problem(record, "error",
                                    resolution.message or resolution.status, resolution.hint,
                                    resolution.kind, resolution.cw_value, resolution.status))
    return problems


def _item_bindings(record: str, transaction: dict[str, Any],
                   mapping: MappingSet) -> list[Problem]:
    """A QuickBooks item keeps the income account it was created with (SPEC 4.2,
    `item_account_mismatch` Error): a line posting it to another account is refused."""
    problems = []
    accounts = mapping.index("Account", mapping.prefs.gl_account_match == "Number")
    items = mapping.index("Item")
    for line in transaction.get("detail") or []:
        identifier = (line.get("item") or {}).get("identifier")
        if not identifier or line.get("glTypeId") == "ST":
            continue
        item = mapping.item(str(identifier))
        account = mapping.account(str(line.get("accountNumber") or ""))
        if item.qbo_id is None or account.qbo_id is None or item.status not in (
                "exact", "override"):
            continue
        bound = (items.by_id[item.qbo_id].extra or {}).get("IncomeAccountRef")
        if bound and bound != account.qbo_id:
            bound_ref = accounts.by_id.get(bound) or mapping.index("Account").by_id.get(bound)
            bound_name = (bound_ref.fully_qualified_name or bound_ref.name) if bound_ref \
                else bound
            problems.append(Problem(
                record, "error",
                f"Item '{identifier}' is bound to income account '{bound_name}' in QuickBooks, "
                f"but ConnectWise posts it to '{line.get('accountNumber')}'.",
                "Change the item's income account in QuickBooks, or set 'Item account "
                "mismatch' to Use item account on the Sales tab."))
    return problems


def _facts(company: CompanyFacts) -> builder.Facts:
    return builder.Facts(**{name: getattr(company, name)
                            for name in builder.Facts.__dataclass_fields__})


# ---- the record type ------------------------------------------------------------------------

class Invoices:
    """SPEC 7: ConnectWise invoices and credit memos to QuickBooks Invoices and CreditMemos."""

    kind = BatchType.INVOICE
    noun = "invoice"
    letter = "I"
    export_flag = "exportInvoicesFlag"
    entry_field = "invoice"
    sends_doc_numbers = True  # so QuickBooks must not number them itself (SPEC 3.8)

    def label(self, record: Record) -> str:
        return f"invoice {record.number}"

    def list_unposted(self, cw: ConnectWiseClient, filters: Filters) -> list[Record]:
        return unposted(cw, location_ids=filters.location_ids, date_from=filters.date_from,
                        date_to=filters.date_to)

    @staticmethod
    def level(ctx: Context) -> str:
        """The summary level: the batch's choice, forced to Detailed by the work role and
        work type item sources (SPEC 4.2)."""
        settings = ctx.settings
        if settings.service_item_source in WORK_SOURCES:
            return "Detailed"
        return ctx.options.get("summary") or settings.invoice_export_detail

    def read(self, cw: ConnectWiseClient, records: Sequence[Record],
             ctx: Context) -> InvoiceWindow:
        level = self.level(ctx)
        ids = [r.cw_id for r in records if r.cw_id]
        thru = max((r.day for r in records if r.day), default=None)
        window = InvoiceWindow(level, transactions=export(cw, ids, level, thru))
        window.invoices = by_ids(cw, "/finance/invoices", ids)
        if level != "Default":
            window.time_entries = by_ids(cw, "/time/entries",
                                         time_entries_of(window.transactions.values()))
            window.tickets = tickets(cw, window.time_entries.values())
        return window

    def gl_entry_ids(self, window: InvoiceWindow, record: Record) -> list[int] | None:
        tx = window.transactions.get(record.cw_id or 0)
        if tx is None:
            return None
        return [int(x) for x in str(tx.get("glEntryIds") or "").split(",")
                if x.strip().isdigit()]

    def evaluate(self, window: InvoiceWindow, record: Record, ctx: Context,
                 request_token: str) -> tuple[list[Problem], Built | None]:
        label = self.label(record)
        source = window.source(record)
        if source is None:
            return [Problem(label, "error",
                            f"Invoice {record.number} has no GL entries in ConnectWise; re-open "
                            "and re-close it.", "Re-close the invoice in ConnectWise (if it was "
                                                "posted meanwhile, refresh the list).")], None
        found = validate(source.transaction, ctx.mapping, ctx.company)
        day = record.day or _day(source.transaction.get("documentDate"))
        closed = period_problem(label, day, ctx)
        if closed is not None:
            found.append(closed)
        if found:
            return found, None
        try:  # what would stop the build once references exist: tax, lines, totals
            built = builder.preview(source, ctx.settings, _facts(ctx.company), ctx.mapping,
                                    summary_level=window.level, request_token=request_token)
        except builder.BuildError as exc:
            return [Problem(label, "error", exc.message, exc.hint)], None
        return [], self._built(built, ctx)

    def needs(self, window: InvoiceWindow, record: Record, ctx: Context) -> list[Need]:
        source = window.source(record)
        if source is None:
            return []
        return builder.needs(source, ctx.settings, _facts(ctx.company), ctx.mapping)

    @staticmethod
    def _built(built: builder.Built, ctx: Context) -> Built:
        signed = -built.cw_total if built.entity == "CreditMemo" else built.cw_total
        if built.zero and ctx.settings.skip_zero_invoices:
            return Built(entity=None, doc_number=built.doc_number, payload=None,
                         cw_total=built.cw_total, cw_tax=built.cw_tax,
                         warnings=[*built.warnings, "zero invoice, not posted"],
                         note="zero invoice: marked without a document", cw_signed=signed)
        return Built(entity=built.entity, doc_number=built.doc_number, payload=built.payload,
                     cw_total=built.cw_total, cw_tax=built.cw_tax,
                     warnings=list(built.warnings), cw_signed=signed)

    def planned(self, record: Record, ctx: Context, window: InvoiceWindow | None = None
                ) -> Planned | None:
        credit = record.kind == "CreditMemo" or record.total < 0
        return Planned("CreditMemo" if credit else "Invoice",
                       f"{ctx.settings.doc_number_prefix}{record.number}")

    def values(self, window: InvoiceWindow, record: Record, ctx: Context) -> list[Resolution]:
        source = window.source(record)
        return _values(source.transaction, ctx.mapping) if source is not None else []

    def identifier(self, record: Record, day: date) -> str:
        return f"{day.isoformat()}-I{record.number}"

    def entry_id(self, record: Record) -> Any:
        return record.cw_id


def _values(transaction: dict[str, Any], mapping: MappingSet) -> list[Resolution]:
    """Every resolution an invoice needs, blocking or not (the mapping editor's rows)."""
    prefs = mapping.prefs
    company_ref = transaction.get("company") or {}
    found = list(mapping.customer(str(company_ref.get("name") or ""),
                                  str(transaction.get("companyAccountNumber") or "")))
    if transaction.get("accountNumber"):
        found.append(mapping.account(str(transaction["accountNumber"])))
    terms = transaction.get("billingTermsXref") or (transaction.get("billingTerms") or {}
                                                    ).get("name")
    if terms:
        found.append(mapping.term(str(terms)))
    for line in transaction.get("detail") or []:
        if line.get("accountNumber"):
            found.append(mapping.account(str(line["accountNumber"])))
        item = (line.get("item") or {}).get("identifier")
        if item and line.get("glTypeId") != "ST":
            found.append(mapping.item(str(item)))
        if prefs.use_classes and line.get("glClass"):
            found.append(mapping.klass(str(line["glClass"])))
    return found


INVOICES = Invoices()
