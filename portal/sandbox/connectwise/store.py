"""The sandbox's state: tables of API-shaped records, id counters, indexes, and JSON persistence."""

from __future__ import annotations

import json
import os
import pickle
import threading
from typing import Any, Iterable

from .defaults import TABLE_SCHEMAS, complete_all

TABLES = (
    "locations", "members", "work_roles", "work_types", "companies", "sites", "contacts",
    "billing_terms", "billing_statuses", "tax_codes", "currencies", "gl_accounts",
    "product_types", "catalog", "products", "uoms", "expense_types", "expense_entries",
    "purchase_orders", "po_lines", "receipts", "adjustments", "transfers", "invoices",
    "payments", "batches", "gl_entries", "accounting_packages", "accounting_package_setup",
    "time_entries", "service_tickets", "project_tickets",
)


class Store:
    """All records, keyed by table and id, behind one re-entrant lock.

    Records are kept in the API's JSON shape; keys starting with `_` (other than `_info`) are
    internal and never rendered. Indexes keep lookups O(1) for the benchmark's 10,000 invoices.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.meta: dict[str, Any] = {}
        self.tables: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TABLES}
        self.counters: dict[str, int] = {}
        self.batch_by_identifier: dict[str, int] = {}
        self.payments_by_invoice: dict[int, list[int]] = {}
        self.invoice_by_number: dict[str, int] = {}
        self.unposted: dict[str, dict[int, dict[str, Any]]] = {
            "invoices": {}, "expenses": {}, "procurement": {}}

    def load(self, data: dict[str, Any]) -> None:
        """Replace the state with `data` (the shape `dump` returns and demo_data generates)."""
        copy = pickle.loads(pickle.dumps(data, pickle.HIGHEST_PROTOCOL))  # a fast deep copy
        with self.lock:
            self.meta = {k: v for k, v in copy.items() if k not in ("tables", "counters")}
            self.tables = {t: {} for t in TABLES}
            for name, rows in (copy.get("tables") or {}).items():
                table = self.tables.setdefault(name, {})
                for row in rows:
                    table[int(row["id"])] = row
            self.counters = {k: int(v) for k, v in (copy.get("counters") or {}).items()}
            for name, schema in TABLE_SCHEMAS.items():
                complete_all(self.tables.get(name, {}).values(), schema)
            self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookup indexes after a load."""
        self.batch_by_identifier = {b["batchIdentifier"].casefold(): b["id"]
                                    for b in self.tables["batches"].values()
                                    if b.get("batchIdentifier")}
        self.payments_by_invoice = {}
        for pay in self.tables["payments"].values():
            self.payments_by_invoice.setdefault(pay["invoice"]["id"], []).append(pay["id"])
        self.invoice_by_number = {i["invoiceNumber"]: i["id"]
                                  for i in self.tables["invoices"].values()}

    def dump(self) -> dict[str, Any]:
        """Everything, as plain JSON data (reloadable with `load`)."""
        with self.lock:
            out = json.loads(json.dumps(self.meta))
            out["tables"] = {name: list(rows.values()) for name, rows in self.tables.items()}
            out["counters"] = dict(self.counters)
            return json.loads(json.dumps(out))

    def batch_identifier_taken(self, identifier: str) -> bool:
        """CW refuses an identifier used before, even by a batch deleted since (SPEC §6.4)."""
        folded = identifier.casefold()
        return (folded in self.batch_by_identifier
                or folded in {i.casefold() for i in self.meta.get("retired_batch_identifiers", [])})

    def retire_identifier(self, identifier: str) -> None:
        """Forget a deleted batch's identifier for lookups but keep it reserved."""
        self.batch_by_identifier.pop(identifier.casefold(), None)
        self.meta.setdefault("retired_batch_identifiers", []).append(identifier)

    def next_id(self, table: str) -> int:
        """A fresh id for `table`, above every id already used (ids are never reused)."""
        with self.lock:
            current = self.counters.get(table)
            if current is None:
                current = max(self.tables.get(table, {}).keys(), default=0)
            current += 1
            self.counters[table] = current
            return current

    def table(self, name: str) -> dict[int, dict[str, Any]]:
        """A table by name, created empty when new."""
        return self.tables.setdefault(name, {})

    def get(self, name: str, record_id: int) -> dict[str, Any] | None:
        """One record by id, or None."""
        return self.tables.get(name, {}).get(record_id)

    def rows(self, name: str) -> Iterable[dict[str, Any]]:
        """All records of a table (a live view; hold the lock while iterating)."""
        return self.tables.get(name, {}).values()


class Saver:
    """Debounced JSON persistence: a write schedules a save a moment later, coalescing bursts."""

    def __init__(self, store: Store, path: str | os.PathLike[str] | None,
                 delay: float = 0.5) -> None:
        self.store = store
        self.path = os.fspath(path) if path else None
        self.delay = delay
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def load_if_present(self) -> bool:
        """Load the saved state when the file exists; True if it did."""
        if not self.path or not os.path.exists(self.path):
            return False
        with open(self.path, encoding="utf-8") as fh:
            self.store.load(json.load(fh))
        return True

    def touch(self) -> None:
        """Note a write; the file is rewritten after `delay` seconds without further writes."""
        if not self.path:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self.save_now)
            self._timer.daemon = True
            self._timer.start()

    def save_now(self) -> None:
        """Write the state atomically (temp file, then rename)."""
        if not self.path:
            return
        data = self.store.dump()
        tmp = f"{self.path}.tmp"
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.path)

    def cancel(self) -> None:
        """Drop a pending save (on shutdown, before the final save)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
