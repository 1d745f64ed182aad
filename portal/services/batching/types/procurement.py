"""Procurement (SPEC 9): item receipts to Bills or VendorCredits, inventory adjustments and
transfers to JournalEntries; what is procurement-specific, and nothing else.

ConnectWise is read as SPEC 9.1 says: the unposted procurement list for the grid, then per
window the GL export with `exportProductsFlag` (50 records per call; two receipts of one PO
never share a call, since the export names a receipt only by its PO number). Each unposted
procurement row is one GL record: its id is what the accounting batch takes. The pure
builder (`builders/procurement.py`) turns a record into its document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from portal.integrations.connectwise import ConnectWiseClient, all_of, cond
from portal.models import BatchType
from portal.services.batching.builders import inventory_journal as journal
from portal.services.batching.builders import procurement as builder
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
from portal.services.batching.types.invoices import _day, _money
from portal.services.mapping import Problem, Resolution

EXPORT_CHUNK = 50
MAX_SUFFIX = 20
UNPOSTED_FIELDS = ("id,unpostedProductId,procurementType,purchaseOrder,purchaseDate,"
                   "dateClosed,vendor,vendorAccountNumber,vendorInvoiceNumber,"
                   "vendorInvoiceDate,total,freightCost,currency,locationId,description")
PREFIX = {"Purchase": "rcv", "Adjustment": "adj", "Transfer": "xfr"}
KIND_OF = {"rcv": "Purchase", "adj": "Adjustment", "xfr": "Transfer"}
SKIPPED = "adjustments and transfers are set to Skip (Inventory tab)"  # the grid's flag


def kind_of(record: Record) -> str:
    """Purchase, Adjustment or Transfer, from the record key."""
    return KIND_OF[record.key.split(":", 1)[0]]


def record_of_row(row: dict[str, Any], settings: Any = None) -> Record | None:
    """One grid row from an UnpostedProcurement row (None: a kind portal does not post);
    with the company's settings, the document it will become, or why it is held back."""
    kind = str(row.get("procurementType") or "")
    if kind not in PREFIX or row.get("id") is None:
        return None
    own = str(row.get("unpostedProductId") or row["id"])
    total = _money(row.get("total"))
    day = _day(row.get("dateClosed")) or _day(row.get("purchaseDate"))
    location = row.get("locationId")
    if kind == "Purchase":
        po = row.get("purchaseOrder") or {}
        vendor = row.get("vendor") or {}
        number = str(po.get("name") or po.get("identifier") or "")
        return Record(
            key=f"rcv:{number}:{own}", cw_id=int(row["id"]), unposted_id=int(row["id"]),
            number=number, day=day, kind="Return" if total < 0 else "Purchase",
            party=str(vendor.get("name") or vendor.get("identifier") or ""), total=total,
            currency=str((row.get("currency") or {}).get("currencyCode") or ""),
            location_id=location, gl_entry_ids=(int(row["id"]),),
            source_refs=(str(row.get("vendorInvoiceNumber") or ""),
                         str(row.get("vendorAccountNumber") or ""), str(po.get("id") or ""),
                         own),
            target="Vendor credit" if total < 0 else "Bill")
    letter = "A" if kind == "Adjustment" else "T"
    mode = getattr(settings, "adjustments_and_transfers", "JournalEntry")
    return Record(key=f"{PREFIX[kind]}:{own}", cw_id=int(row["id"]), unposted_id=int(row["id"]),
                  number=f"{letter}{own}", day=day, kind=kind,
                  party=str(row.get("description") or ""), total=total,
                  location_id=location, gl_entry_ids=(int(row["id"]),),
                  source_refs=("", "", "", own),
                  target={"JournalEntry": "Journal entry", "MarkOnly": "Mark only",
                          "Skip": "Left unposted"}.get(mode, mode),
                  held=SKIPPED if mode == "Skip" else None)


def unposted(cw: ConnectWiseClient, filters: Filters) -> list[Record]:
    conditions = []
    if filters.location_ids:
        conditions.append(cond("locationId", "in", sorted(set(filters.location_ids))))
    if filters.date_from:
        conditions.append(cond("dateClosed", ">=", filters.date_from))
    if filters.date_to:
        conditions.append(cond("dateClosed", "<", filters.date_to.fromordinal(
            filters.date_to.toordinal() + 1)))
    rows = cw.iter_all("/finance/accounting/unpostedprocurement",
                       conditions=all_of(*conditions) or None, fields=UNPOSTED_FIELDS,
                       order_by="dateClosed asc, id asc")
    return [r for r in (record_of_row(row, filters.settings) for row in rows)
            if r is not None]


def export_calls(records: Sequence[Record]) -> list[list[Record]]:
    """Calls of at most 50 records in which no two receipts share a PO."""
    calls: list[list[Record]] = []
    for record in records:
        po = record.number if kind_of(record) == "Purchase" else None
        for call in calls:
            if len(call) < EXPORT_CHUNK and (po is None or all(
                    r.number != po or kind_of(r) != "Purchase" for r in call)):
                call.append(record)
                break
        else:
            calls.append([record])
    return calls


@dataclass
class ProcurementWindow:
    """ConnectWise's data for a window of procurement records, by record key."""

    purchases: dict[str, dict[str, Any]] = field(default_factory=dict)
    adjustments: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    vendors: dict[Any, dict[str, Any]] = field(default_factory=dict)
    first_closed: dict[str, date] = field(default_factory=dict)  # PO number -> day
    freight_account: str | None = None

    def receipt(self, record: Record) -> builder.Receipt | None:
        purchase = self.purchases.get(record.key)
        if purchase is None:
            return None
        vendor = self.vendors.get((purchase.get("company") or {}).get("id"))
        return builder.Receipt(purchase, vendor, self.first_closed.get(record.number),
                               self.freight_account)

    def found(self, record: Record) -> bool:
        return record.key in self.purchases or record.key in self.adjustments or \
            record.key in self.transfers


def _read_call(cw: ConnectWiseClient, call: list[Record], window: ProcurementWindow) -> None:
    body: dict[str, Any] = {"batchIdentifier": "portal-validate", "exportProductsFlag": True,
                            "includedProductIds": [str(r.cw_id) for r in call]}
    thru = max((r.day for r in call if r.day), default=None)
    if thru:
        body["thruDate"] = f"{thru.isoformat()}T23:59:59Z"
    # The export creates no accounting batch (SPEC 6.4): a read, retried like one.
    answer = cw.request("POST", "/finance/accounting/export", json=body,
                        idempotent=True).json() or {}
    for vendor in answer.get("vendors") or []:
        company = vendor.get("company") or vendor.get("vendor") or {}
        if company.get("id") is not None:
            window.vendors[company["id"]] = vendor
    by_po = {str(tx.get("documentNumber") or ""): tx
             for tx in answer.get("purchaseTransactions") or []}
    adjustments = {str(a.get("id") or ""): a for a in answer.get("adjustmentTransactions") or []}
    transfers = {str(t.get("id") or ""): t for t in answer.get("inventoryTransfers") or []}
    for record in call:
        own = record.source_refs[3] if len(record.source_refs) > 3 else ""
        kind = kind_of(record)
        if kind == "Purchase" and record.number in by_po:
            window.purchases[record.key] = by_po[record.number]
        elif kind == "Adjustment" and own in adjustments:
            window.adjustments[record.key] = adjustments[own]
        elif kind == "Transfer" and own in transfers:
            window.transfers[record.key] = transfers[own]


FIRST_CLOSED = "po-first-closed:"


def first_closed(cw: ConnectWiseClient, records: Sequence[Record], window: ProcurementWindow,
                 ctx: Context) -> dict[str, date]:
    """SPEC 9.2 DocumentDate: the day each PO was first closed, by PO number. ConnectWise
    moves a receipt's close date when the PO is re-opened and closed again, so the first
    day portal saw is kept (`ctx.memory`) and wins from then on. A PO not seen before takes
    the earliest close date of all its unposted receipts (not only those selected), so how
    receipts are batched does not change it."""
    receipts = [r for r in records if kind_of(r) == "Purchase"]
    key_of = {r.number: FIRST_CLOSED + (_po_id(r) or r.number) for r in receipts}
    kept = ctx.memory.recall(list(key_of.values()))
    seen: dict[str, list[date]] = {}
    for record in receipts:
        days = seen.setdefault(record.number, [])
        days += [d for d in (record.day, builder.day_of(
            (window.purchases.get(record.key) or {}).get("documentDate"))) if d]
    new = sorted({int(_po_id(r)) for r in receipts
                  if key_of[r.number] not in kept and _po_id(r).isdigit()})
    if new:
        rows = cw.iter_all("/finance/accounting/unpostedprocurement",
                           conditions=all_of(cond("procurementType", "=", "Purchase"),
                                             cond("purchaseOrder/id", "in", new)),
                           fields="id,purchaseOrder,dateClosed")
        for row in rows:
            number = str((row.get("purchaseOrder") or {}).get("name") or "")
            day = _day(row.get("dateClosed"))
            if number in seen and day:
                seen[number].append(day)
    out: dict[str, date] = {}
    for number, key in key_of.items():
        stored = kept.get(key)
        day = date.fromisoformat(stored) if stored else min(seen[number], default=None)
        if day is None:
            continue
        out[number] = day
        if not stored:
            ctx.memory.keep(key, day.isoformat())
    return out


def _po_id(record: Record) -> str:
    return record.source_refs[2] if len(record.source_refs) > 2 else ""


def freight_account(cw: ConnectWiseClient) -> str | None:
    """ConnectWise's freight GL account: the GL account mapping of type FT."""
    rows = cw.get("/finance/glAccounts", conditions=cond("glType", "=", "FT"), pageSize=1)
    return str(rows[0].get("segment1") or "") or None if rows else None


def _facts(company: CompanyFacts) -> builder.Facts:
    return builder.Facts(is_us=company.is_us, class_tracking=company.class_tracking,
                         multicurrency=company.multicurrency,
                         home_currency=company.home_currency)


def _vin_of(record: Record) -> str:
    return record.source_refs[0] if record.source_refs else ""


class Procurement:
    """SPEC 9: ConnectWise procurement to QuickBooks Bills, VendorCredits and journals."""

    kind = BatchType.INVENTORY
    noun = "receipt of PO"  # what labels start with: the backlog check's near-miss flags
    letter = "P"
    export_flag = "exportProductsFlag"
    entry_field = "purchaseOrder"
    marks_by_entry_ids = True  # two receipts of one PO share the PO reference
    sends_doc_numbers = False  # bills carry the vendor's number, not QuickBooks' sequence

    def label(self, record: Record) -> str:
        kind = kind_of(record)
        if kind == "Purchase":
            return f"{'return' if record.kind == 'Return' else 'receipt'} of PO {record.number}"
        return f"{kind.lower()} {record.number}"

    def list_unposted(self, cw: ConnectWiseClient, filters: Filters) -> list[Record]:
        return unposted(cw, filters)

    def read(self, cw: ConnectWiseClient, records: Sequence[Record],
             ctx: Context) -> ProcurementWindow:
        window = ProcurementWindow()
        for call in export_calls(records):
            _read_call(cw, call, window)
        window.first_closed = first_closed(cw, records, window, ctx)
        if any(builder._freight(p) for p in window.purchases.values()):
            window.freight_account = freight_account(cw)
        return window

    def gl_entry_ids(self, window: ProcurementWindow, record: Record) -> list[int] | None:
        return list(record.gl_entry_ids) if window.found(record) else None

    def _legs(self, window: ProcurementWindow, record: Record) -> list[journal.Leg] | None:
        if kind_of(record) == "Adjustment":
            data = window.adjustments.get(record.key)
            return journal.adjustment_legs(data) if data is not None else None
        data = window.transfers.get(record.key)
        return journal.transfer_legs(data) if data is not None else None

    def evaluate(self, window: ProcurementWindow, record: Record, ctx: Context,
                 request_token: str) -> tuple[list[Problem], Built | None]:
        label = self.label(record)
        if not window.found(record):
            return [Problem(label, "error",
                            f"ConnectWise's GL export does not hold {label}; it may have been "
                            "posted meanwhile.", "Refresh the list and select it again.")], None
        settings = ctx.settings
        if kind_of(record) == "Purchase":
            receipt = window.receipt(record)
            assert receipt is not None
            problems = builder.check_receipt(receipt, settings, _facts(ctx.company),
                                             ctx.mapping, label)
            day, _warn = builder.txn_date(receipt, settings)
            closed = period_problem(label, day, ctx)
            if closed is not None:
                problems.append(closed)
            if problems:
                return problems, None
            try:
                built = builder.build_receipt(receipt, settings, _facts(ctx.company),
                                              _stand_ins(ctx), request_token=request_token,
                                              doc_number=builder.vin(receipt.purchase) or None)
            except builder.BuildError as exc:
                return [Problem(label, "error", exc.message, exc.hint)], None
            return [], _built(built)
        mode = settings.adjustments_and_transfers
        what = label
        if mode == "Skip":
            return [], Built(None, None, None, abs(record.total), None,
                             note=None, skip="Skipped: adjustments and transfers are set to "
                                             "Skip; left unposted in ConnectWise.")
        if mode == "MarkOnly":
            return [], Built(None, None, None, abs(record.total), None,
                             note="adjustments and transfers are set to Mark only: marked "
                                  "without a document", cw_signed=record.total)
        legs = self._legs(window, record) or []
        problems = journal.check_journal(legs, settings, ctx.mapping, label)
        closed = period_problem(label, record.day, ctx)
        if closed is not None:
            problems.append(closed)
        if problems:
            return problems, None
        try:
            built = journal.build_journal(legs, settings, _facts(ctx.company), _stand_ins(ctx),
                                          doc_number=record.number, day=record.day, what=what,
                                          request_token=request_token)
        except builder.BuildError as exc:
            return [Problem(label, "error", exc.message, exc.hint)], None
        return [], _built(built)

    def needs(self, window: ProcurementWindow, record: Record, ctx: Context) -> list[Need]:
        if kind_of(record) == "Purchase":
            receipt = window.receipt(record)
            return builder.receipt_needs(receipt, ctx.settings, ctx.mapping) if receipt else []
        if ctx.settings.adjustments_and_transfers != "JournalEntry":
            return []
        return journal.journal_needs(self._legs(window, record) or [], ctx.settings,
                                     ctx.mapping)

    def values(self, window: ProcurementWindow, record: Record,
               ctx: Context) -> list[Resolution]:
        if kind_of(record) == "Purchase":
            receipt = window.receipt(record)
            return builder.receipt_values(receipt, ctx.settings, ctx.mapping) if receipt \
                else []
        return journal.journal_values(self._legs(window, record) or [], ctx.settings,
                                      ctx.mapping)

    def planned(self, record: Record, ctx: Context, window: ProcurementWindow | None = None
                ) -> Planned | None:
        """The vendor invoice number, kept unique per SPEC 9.2 (see `judge_numbers`); an
        adjustment's or transfer's `A<id>` / `T<id>` as a journal's number."""
        if kind_of(record) == "Purchase":
            number = _vin_of(record)
            if not number.strip():
                return None  # a blank vendor invoice number sends no DocNumber
            entity = "VendorCredit" if record.total < 0 else "Bill"
            suffixes = range(2, MAX_SUFFIX + 1) \
                if ctx.settings.partial_receipt_mode == "SuffixDocNumber" else ()
            return Planned(entity, number, tuple(builder.suffixed(number, n) for n in suffixes))
        if ctx.settings.adjustments_and_transfers != "JournalEntry":
            return None
        return Planned("JournalEntry", record.number)

    def judge_numbers(self, order: Sequence[str], plans: dict[str, Planned],
                      holders: dict[tuple[str, str], list[dict[str, Any]]],
                      earlier: dict[str, str | None], labels: dict[str, str],
                      records: dict[str, Record], ctx: Context
                      ) -> tuple[dict[str, str], dict[str, Problem]]:
        return judge_numbers(order, plans, holders, earlier, labels, records, ctx)

    def identifier(self, record: Record, day: date) -> str:
        kind = kind_of(record)
        letter = {"Purchase": "P", "Adjustment": "A", "Transfer": "T"}[kind]
        own = record.number if kind == "Purchase" else record.number[1:]
        return f"{day.isoformat()}-{letter}{own}"

    def entry_id(self, record: Record) -> Any:
        if kind_of(record) == "Purchase":
            return record.source_refs[2] if len(record.source_refs) > 2 else None
        return record.source_refs[3] if len(record.source_refs) > 3 else record.number[1:]

    def entry_field_of(self, record: Record) -> str:
        return {"Purchase": "purchaseOrder", "Adjustment": "adjustmentDetail",
                "Transfer": "transfer"}[kind_of(record)]

    def unbatch_record(self, cw: ConnectWiseClient, record: Record) -> bool:
        """SPEC 11.2: a receipt whose accounting batch also holds other records leaves it
        through the per-PO unbatch (CW-REF §20); adjustments and transfers have none. True
        once ConnectWise lists the receipt as unposted again (read back; an earlier attempt
        that got that far is not repeated)."""
        po_id = _po_id(record)
        if kind_of(record) != "Purchase" or not po_id.isdigit():
            return False
        if _unposted_again(cw, record, int(po_id)):
            return True
        cw.unbatch_purchase_order(int(po_id))
        return _unposted_again(cw, record, int(po_id))


def _unposted_again(cw: ConnectWiseClient, record: Record, po_id: int) -> bool:
    """Whether ConnectWise's unposted procurement list holds this receipt."""
    own = record.source_refs[3] if len(record.source_refs) > 3 else ""
    rows = cw.iter_all("/finance/accounting/unpostedprocurement",
                       conditions=all_of(cond("procurementType", "=", "Purchase"),
                                         cond("purchaseOrder/id", "=", po_id)),
                       fields="id,unpostedProductId")
    return any(str(r.get("id")) == str(record.unposted_id or record.cw_id) or
               (own and str(r.get("unpostedProductId") or "") == own) for r in rows)


def _stand_ins(ctx: Context) -> Any:
    from portal.services.batching.types.base import stand_ins

    return stand_ins(ctx.mapping)


def _built(built: builder.Built) -> Built:
    return Built(entity=built.entity, doc_number=built.doc_number, payload=built.payload,
                 cw_total=built.cw_total, cw_tax=built.cw_tax, warnings=list(built.warnings),
                 note=built.note, cw_signed=built.cw_signed)


def judge_numbers(order: Sequence[str], plans: dict[str, Planned],
                  holders: dict[tuple[str, str], list[dict[str, Any]]],
                  earlier: dict[str, str | None], labels: dict[str, str],
                  records: dict[str, Record], ctx: Context
                  ) -> tuple[dict[str, str], dict[str, Problem]]:
    """SPEC 9.2: a vendor invoice number already on a QuickBooks bill (of any vendor, or of
    the same vendor, per `vin_uniqueness_scope`) blocks the receipt; with
    `partial_receipt_mode = SuffixDocNumber` the receipt takes the first free `VIN-2`,
    `VIN-3` … instead. Receipts of the selection count as holders in their order (the
    second receipt of a PO is the one refused or suffixed). Returns the chosen numbers and
    the problems, by record key."""
    settings = ctx.settings
    same_vendor = settings.vin_uniqueness_scope == "SameVendor"
    chosen: dict[str, str] = {}
    problems: dict[str, Problem] = {}
    taken: dict[tuple[str, str], list[tuple[str, str]]] = {}  # in this selection: (vendor, key)
    for key in order:
        plan = plans.get(key)
        if plan is None:
            continue
        record = records.get(key)
        vendor = _vendor_key(record, ctx)
        label = labels.get(key, key)
        first_block: str | None = None
        for number in (plan.doc_number, *plan.candidates):
            if len(number) > builder.MAX_DOC_NUMBER:
                break
            found = [o for o in holders.get((plan.entity, number), [])
                     if str(o.get("Id")) != (earlier.get(key) or "")]
            mine = taken.get((plan.entity, number), [])
            if same_vendor:
                found = [o for o in found if _holder_vendor(o, ctx) == vendor]
                mine = [m for m in mine if m[0] == vendor]
            if not found and not mine:
                chosen[key] = number
                taken.setdefault((plan.entity, number), []).append((vendor, key))
                break
            if first_block is None:
                if found:
                    holder = found[0]
                    name = (holder.get("VendorRef") or {}).get("name") or \
                        (holder.get("VendorRef") or {}).get("value")
                    what = "bill" if plan.entity == "Bill" else "vendor credit"
                    first_block = f"on QuickBooks {what} Id {holder.get('Id')} (vendor {name})"
                else:
                    first_block = f"used by {labels.get(mine[0][1], mine[0][1])} in this " \
                                  "selection"
        if key in chosen:
            continue
        if plan.entity != "JournalEntry":
            problems[key] = Problem(
                label, "error",
                f"Vendor invoice number {plan.doc_number} is already {first_block}. Check "
                "whether this receipt was entered by hand; if it is a second partial receipt, "
                "batch the PO after it is fully received or change `partial_receipt_mode`.",
                "Batch the PO after its last receipt, or set “Second receipt, same number” "
                "(Purchases tab) to Suffix the number.")
        else:
            problems[key] = Problem(
                label, "error", f"DocNumber {plan.doc_number} is already "
                                f"{first_block}.",
                "Renumber or delete that journal entry in QuickBooks, or Adopt it when it is "
                "this record posted outside portal.")
    return chosen, problems


def _vendor_key(record: Record | None, ctx: Context) -> str:
    """The QuickBooks vendor a receipt will post to (its id, or the name to create)."""
    if record is None:
        return ""
    found = ctx.mapping.vendor(record.party, record.source_refs[1] if len(
        record.source_refs) > 1 else "")
    return found.qbo_id or f"new:{found.cw_value}"


def _holder_vendor(obj: dict[str, Any], ctx: Context) -> str:
    return str((obj.get("VendorRef") or {}).get("value") or "")


PROCUREMENT = Procurement()
