"""Per-company state of the sandbox: objects by type and Id, and the dict indexes over them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

PEOPLE = ("Customer", "Vendor", "Employee")
NAMED = ("Item", "Account", "Class", "Department", "Term", "TaxCode", "TaxRate")
ITEM_NAMES = "Item.Name"  # Item names are unique whatever their parent (README §7)
VENDOR_NUMBERED = ("Bill", "VendorCredit")  # DocNumber is unique per vendor, not per company


def name_key(text: Any) -> str:
    """Names compare case-insensitively."""
    return str(text or "").casefold()


@dataclass
class Event:
    """One change, queued for webhooks once the request has finished."""

    realm_id: str
    entity: str
    entity_id: str
    operation: str  # Create | Update | Delete | Void | Emailed
    at: float


class Realm:
    """One sandbox company. Every lookup the API needs is a dict lookup (benchmarks push 10k docs)."""

    def __init__(self, realm_id: str, settings: dict[str, Any]) -> None:
        self.realm_id = realm_id
        self.settings = settings
        self.objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.updated: dict[tuple[str, str], float] = {}
        self.tombstones: dict[str, dict[str, float]] = defaultdict(dict)
        self.next_id = 1
        self.people_names: dict[str, tuple[str, str]] = {}
        self.unique_names: dict[str, dict[str, str]] = defaultdict(dict)
        # DocNumber -> every Id holding it (duplicates exist: allowduplicatedocnum, voids)
        self.doc_numbers: dict[str, dict[str, list[str]]] = defaultdict(dict)
        self.doc_seq: dict[str, int] = defaultdict(lambda: 1000)
        self.payment_links: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        self.deposited: dict[str, str] = {}  # Payment Id -> the Deposit holding it
        self.customer_txns: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.next_address_id = 1000
        self.emails_sent: dict[str, int] = defaultdict(int)
        self.opening_balances: dict[str, float] = {}
        self.company_info: dict[str, Any] = {}
        self.preferences: dict[str, Any] = {}

    # ids -------------------------------------------------------------------------------------
    def new_id(self) -> str:
        """The next Id of this company, as a string."""
        value = self.next_id
        self.next_id += 1
        return str(value)

    def reserve_id(self, given: str) -> None:
        """Seeded Ids are kept; new ones start above the largest numeric one."""
        if str(given).isdigit():
            self.next_id = max(self.next_id, int(given) + 1)

    def address_id(self) -> str:
        """Addresses carry their own Ids in QBO answers."""
        self.next_address_id += 1
        return str(self.next_address_id)

    # objects ---------------------------------------------------------------------------------
    def get(self, entity: str, entity_id: Any) -> dict[str, Any] | None:
        """An object by type and Id, or None."""
        return self.objects[entity].get(str(entity_id))

    def all(self, entity: str) -> Iterator[dict[str, Any]]:
        """A snapshot of the objects of one type (safe to iterate while writing)."""
        return iter(list(self.objects[entity].values()))

    def count(self, entity: str) -> int:
        """How many objects of one type exist."""
        return len(self.objects[entity])

    def put(self, entity: str, obj: dict[str, Any], at: float) -> None:
        """Store an object and refresh its index entries and change time."""
        old = self.objects[entity].get(obj["Id"])
        if old is not None:
            self._unindex(entity, old)
        self.objects[entity][obj["Id"]] = obj
        self.updated[(entity, obj["Id"])] = at
        self.tombstones[entity].pop(obj["Id"], None)
        self._index(entity, obj)

    def remove(self, entity: str, entity_id: str, at: float) -> dict[str, Any] | None:
        """Delete an object, keeping a tombstone for CDC."""
        old = self.objects[entity].pop(entity_id, None)
        if old is not None:
            self._unindex(entity, old)
            self.updated.pop((entity, entity_id), None)
            self.tombstones[entity][entity_id] = at
        return old

    # indexes ---------------------------------------------------------------------------------
    def _index(self, entity: str, obj: dict[str, Any]) -> None:
        if entity in PEOPLE and obj.get("DisplayName"):
            self.people_names[name_key(obj["DisplayName"])] = (entity, obj["Id"])
        elif entity in NAMED:
            key = obj.get("FullyQualifiedName") or obj.get("Name")
            if key:
                self.unique_names[entity][name_key(key)] = obj["Id"]
            if entity == "Item" and obj.get("Name"):
                self.unique_names[ITEM_NAMES][name_key(obj["Name"])] = obj["Id"]
        doc = obj.get("DocNumber")
        if doc:
            holders = self.doc_numbers[entity].setdefault(self.doc_key(entity, obj, doc), [])
            if obj["Id"] not in holders:
                holders.append(obj["Id"])
        customer = (obj.get("CustomerRef") or {}).get("value")
        if customer and entity in ("Invoice", "CreditMemo", "Payment", "SalesReceipt"):
            self.customer_txns[str(customer)].add((entity, obj["Id"]))

    def _unindex(self, entity: str, obj: dict[str, Any]) -> None:
        if entity in PEOPLE and obj.get("DisplayName"):
            key = name_key(obj["DisplayName"])
            if self.people_names.get(key) == (entity, obj["Id"]):
                del self.people_names[key]
        elif entity in NAMED:
            key = name_key(obj.get("FullyQualifiedName") or obj.get("Name"))
            if self.unique_names[entity].get(key) == obj["Id"]:
                del self.unique_names[entity][key]
            plain = name_key(obj.get("Name"))
            if entity == "Item" and self.unique_names[ITEM_NAMES].get(plain) == obj["Id"]:
                del self.unique_names[ITEM_NAMES][plain]
        doc = obj.get("DocNumber")
        if doc:
            key = self.doc_key(entity, obj, doc)
            holders = self.doc_numbers[entity].get(key, [])
            if obj["Id"] in holders:
                holders.remove(obj["Id"])
            if not holders:
                self.doc_numbers[entity].pop(key, None)
        customer = (obj.get("CustomerRef") or {}).get("value")
        if customer:
            self.customer_txns[str(customer)].discard((entity, obj["Id"]))

    @staticmethod
    def doc_key(entity: str, obj: dict[str, Any], doc: Any) -> str:
        """Bills and vendor credits are numbered per vendor; other documents per type."""
        if entity in VENDOR_NUMBERED:
            return f"{(obj.get('VendorRef') or {}).get('value')}|{doc}"
        return str(doc)

    def find_person(self, display_name: str) -> tuple[str, str] | None:
        """Who holds a display name among customers, vendors and employees."""
        return self.people_names.get(name_key(display_name))

    def find_named(self, entity: str, name: str) -> str | None:
        """The Id holding a (fully qualified) name in a name list."""
        return self.unique_names[entity].get(name_key(name))

    def find_doc(self, entity: str, obj: dict[str, Any], doc: Any) -> str | None:
        """An Id holding a DocNumber for this document type (the first, when several do)."""
        holders = self.doc_numbers[entity].get(self.doc_key(entity, obj, doc))
        return holders[0] if holders else None

    def find_by_doc_number(self, entity: str, doc: str) -> list[str]:
        """Query helper: every Id with this DocNumber (Bills may hold one per vendor, and
        a number allowed twice is held twice)."""
        if entity not in VENDOR_NUMBERED:
            return list(self.doc_numbers[entity].get(str(doc), []))
        return [i for k, ids in self.doc_numbers[entity].items()
                if k.split("|", 1)[1] == str(doc) for i in ids]


@dataclass
class OAuthState:
    """Registered apps, consent codes and tokens (shared by all companies)."""

    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
