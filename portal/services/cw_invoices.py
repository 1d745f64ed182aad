"""Read what an invoice batch needs from ConnectWise (SPEC 7.1), in as few calls as it can.

The unposted list feeds the selection grid; the GL export (50 invoices per call), the
invoices, time entries and tickets (200 ids per call) feed the builder. Marking creates one
accounting batch per record, after looking up the identifier so a retry never marks twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient, all_of, cond

EXPORT_CHUNK = 50
IN_CHUNK = 200
UNPOSTED_FIELDS = ("id,billingLogId,invoiceNumber,invoiceDate,invoiceType,company,"
                   "accountNumber,locationId,location,total,currency,salesTax")


@dataclass(frozen=True)
class Unposted:
    """One row of the selection grid."""

    unposted_id: int
    invoice_id: int
    number: str
    day: date | None
    kind: str
    company: str
    total: str
    currency: str
    location_id: int | None
    location: str

    @property
    def record_key(self) -> str:
        return f"inv:{self.invoice_id}"


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def unposted(cw: ConnectWiseClient, *, location_ids: Iterable[int] = (),
             date_from: date | None = None, date_to: date | None = None) -> list[Unposted]:
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
        rows.append(Unposted(
            unposted_id=int(row["id"]), invoice_id=int(row["billingLogId"]),
            number=str(row.get("invoiceNumber") or ""), day=_day(row.get("invoiceDate")),
            kind=str(row.get("invoiceType") or "Standard"),
            company=str((row.get("company") or {}).get("name") or ""),
            total=f"{float(row.get('total') or 0):.2f}",
            currency=str((row.get("currency") or {}).get("currencyCode") or ""),
            location_id=row.get("locationId"),
            location=str((row.get("location") or {}).get("name") or "")))
    return rows


def exported(cw: ConnectWiseClient, invoice_ids: list[int], level: str = "Detailed",
             thru: date | None = None) -> Iterator[dict[str, Any]]:
    """GL export transactions of the invoices, 50 per call; the export is read-only (no
    accounting batch is made)."""
    for chunk in _chunks(sorted(invoice_ids), EXPORT_CHUNK):
        body: dict[str, Any] = {"batchIdentifier": "portal-validate", "exportInvoicesFlag": True,
                                "includedInvoiceIds": chunk, "summarizeInvoices": level}
        if thru:
            body["thruDate"] = f"{thru.isoformat()}T23:59:59Z"
        answer = cw.request("POST", "/finance/accounting/export", json=body).json() or {}
        yield from answer.get("transactions") or []


def export(cw: ConnectWiseClient, invoice_ids: list[int], level: str,
           thru: date | None = None) -> dict[int, dict[str, Any]]:
    """The same, by invoice id."""
    return {int(tx.get("id") or 0): tx for tx in exported(cw, invoice_ids, level, thru)}


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


# ---- marking ------------------------------------------------------------------------------

class IdentifierTaken(Exception):
    """The identifier belongs to an accounting batch of other records."""


def find_batch(cw: ConnectWiseClient, identifier: str) -> dict[str, Any] | None:
    rows = cw.get("/finance/accounting/batches",
                  conditions=cond("batchIdentifier", "=", identifier), pageSize=1)
    return rows[0] if rows else None


def batch_holds(cw: ConnectWiseClient, batch_id: int, invoice_id: int) -> bool:
    """Whether every entry of the accounting batch references this invoice."""
    entries = list(cw.iter_all(f"/finance/accounting/batches/{batch_id}/entries"))
    return bool(entries) and all((e.get("invoice") or {}).get("id") == invoice_id
                                 for e in entries)


def mark(cw: ConnectWiseClient, identifier: str, gl_entry_ids: list[int], invoice_id: int,
         *, look_first: bool) -> int | None:
    """Create the record's accounting batch; an existing one of ours counts as done.

    Returns the batch id when it is known (an existing batch found by the lookup).
    """
    if look_first:
        existing = find_batch(cw, identifier)
        if existing is not None:
            if batch_holds(cw, int(existing["id"]), invoice_id):
                return int(existing["id"])
            raise IdentifierTaken(identifier)
    try:
        cw.request("POST", "/finance/accounting/batches", json={
            "batchIdentifier": identifier, "exportInvoicesFlag": True,
            "processedRecordIds": gl_entry_ids})
    except errors.Invalid as exc:
        if "already exists" not in str(exc) and "already in a batch" not in str(exc):
            raise
        existing = find_batch(cw, identifier)
        if existing is not None and batch_holds(cw, int(existing["id"]), invoice_id):
            return int(existing["id"])
        raise IdentifierTaken(identifier) from None
    return None
