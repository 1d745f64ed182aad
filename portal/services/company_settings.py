"""Per-company QuickBooks setup settings: the one declaration of every setting, typed reads,
and validated tab saves that write an immutable version and the audit log.

A later feature reads a setting as `get_settings(session, company).invoice_export_detail`;
a batch records `current_version(session, company)` and `as_json(settings)` when it starts.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (
    Company,
    CurrencyMapping,
    CwConnection,
    CwRef,
    Role,
    SettingsVersion,
    StoredSettings,
    TaxCodeMapping,
    User,
)
from portal.models.settings import ItemTypeMapping
from portal.models.types import utcnow
from portal.services import audit, qbo_setup, reference
from portal.services.email_templates import DEFAULT_BODY, DEFAULT_SUBJECT

Choices = list[tuple[str, str]]


class Invalid(ValueError):
    """A submitted value that a setting refuses; the message is shown beside the field."""


@dataclass(frozen=True)
class SettingError:
    """One message for one field (`name` is the setting)."""

    name: str
    message: str


# ---- kinds: how a value is parsed from a form, stored as JSON and read back ---------------

@dataclass(frozen=True)
class Kind:
    """The base kind: a JSON-native value stored as it is."""

    widget = "text"

    def parse(self, raw: Any, choices: Choices) -> Any:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        return value

    def load(self, stored: Any) -> Any:
        return stored

    def show(self, value: Any) -> Any:
        """The value as a form field holds it."""
        return value


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, (list, tuple)):
        raw = raw[-1] if raw else ""
    return str(raw)


@dataclass(frozen=True)
class Bool(Kind):
    widget = "checkbox"

    def parse(self, raw: Any, choices: Choices) -> bool:
        if isinstance(raw, bool):
            return raw
        return _text(raw).strip().lower() in ("y", "yes", "on", "true", "1")


@dataclass(frozen=True)
class Int(Kind):
    low: int
    high: int
    too_low: str | None = None  # a message the SPEC words exactly
    widget = "number"

    def parse(self, raw: Any, choices: Choices) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            text = _text(raw).strip()
            if not re.fullmatch(r"-?\d{1,9}", text):
                raise Invalid(f"Enter a whole number from {self.low} to {self.high}.")
            value = int(text)
        if value < self.low:
            raise Invalid(self.too_low or f"Enter at least {self.low}.")
        if value > self.high:
            raise Invalid(f"Enter at most {self.high}.")
        return value

    def show(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Dec(Kind):
    """A non-negative amount with at most two decimals, stored as a string (exact)."""

    high: Decimal = Decimal("1000000")
    widget = "decimal"

    def parse(self, raw: Any, choices: Choices) -> Decimal:
        try:
            value = raw if isinstance(raw, Decimal) else Decimal(_text(raw).strip())
        except InvalidOperation:
            raise Invalid("Enter an amount such as 0.01.") from None
        if not value.is_finite() or value < 0 or value > self.high:
            raise Invalid(f"Enter an amount from 0 to {self.high}.")
        if value != value.quantize(Decimal("0.01")):
            raise Invalid("Use at most two decimal places.")
        return value.quantize(Decimal("0.01"))

    def dump(self, value: Any) -> str:
        return str(value)

    def load(self, stored: Any) -> Decimal:
        return Decimal(str(stored))

    def show(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Text(Kind):
    max_length: int
    required: bool = False
    strip: bool = True  # a suffix such as " ({code})" keeps its leading space
    qbo_name: bool = False  # goes into a name portal creates in QuickBooks (SPEC 5.1)
    hierarchy: bool = False  # an item name may be `Category:Item`

    def parse(self, raw: Any, choices: Choices) -> str:
        value = _text(raw)
        value = value.strip() if self.strip else value
        if any(ord(ch) < 32 for ch in value):
            raise Invalid("Remove the line breaks and tabs.")
        if self.required and not value.strip():
            raise Invalid("Enter a value.")
        if len(value) > self.max_length:
            raise Invalid(f"Use at most {self.max_length} characters (this has {len(value)}).")
        if not self.strip and value != value.rstrip():
            raise Invalid("Remove the trailing spaces: QuickBooks names cannot end in one.")
        if self.qbo_name:
            _check_name(value, self.hierarchy)
        return value


def _check_name(value: str, hierarchy: bool) -> None:
    """SPEC 5.1 for a name portal creates: no curly quotes or dashes (QuickBooks lookups
    fail on them), and ':' only between the levels of a `Category:Item` name."""
    from portal.services.matching import CURLY

    for position, char in enumerate(value, start=1):
        if char in CURLY:
            raise Invalid(f"Replace the curly quote or dash (U+{ord(char):04X}) at position "
                          f"{position} with a straight one: QuickBooks lookups fail on it.")
        if char == ":" and not hierarchy:
            raise Invalid(f"Remove the ':' at position {position}: QuickBooks reads it as "
                          "parent:child.")
    if hierarchy and any(not part or part != part.strip() for part in value.split(":")):
        raise Invalid("Write a category as Category:Item, with no empty level and no space "
                      "around ':'.")


@dataclass(frozen=True)
class Choice(Kind):
    options: tuple[tuple[str, str], ...]
    widget = "select"

    def parse(self, raw: Any, choices: Choices) -> str:
        value = _text(raw).strip()
        allowed = [v for v, _label in self.options]
        if value not in allowed:
            raise Invalid(f"Choose one of {', '.join(allowed)}.")
        return value


@dataclass(frozen=True)
class Multi(Kind):
    """Several values from a list: fixed options, or choices read at save time."""

    options: tuple[tuple[str, str], ...] = ()
    ints: bool = False  # ConnectWise and user ids are stored as numbers
    widget = "multi"

    def parse(self, raw: Any, choices: Choices) -> list[Any]:
        items = raw if isinstance(raw, (list, tuple, set, frozenset)) else \
            ([] if raw in (None, "") else [raw])
        given = {str(item).strip() for item in items if str(item).strip()}
        allowed = [v for v, _label in (self.options or tuple(choices))]
        unknown = given - set(allowed)
        if unknown:
            raise Invalid(f"Choose from the list ({', '.join(sorted(unknown))} is not in it).")
        ordered = [v for v in allowed if v in given]
        return [int(v) for v in ordered] if self.ints else ordered

    def load(self, stored: Any) -> list[Any]:
        return list(stored or [])

    def show(self, value: Any) -> list[str]:
        return [str(v) for v in value or []]


@dataclass(frozen=True)
class Day(Kind):
    required: bool = True
    widget = "date"

    def parse(self, raw: Any, choices: Choices) -> date | None:
        if isinstance(raw, date):
            return raw
        text = _text(raw).strip()
        if not text:
            if self.required:
                raise Invalid("Enter a date (YYYY-MM-DD).")
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise Invalid("Enter a date as YYYY-MM-DD.") from None

    def dump(self, value: Any) -> str | None:
        return value.isoformat() if value else None

    def load(self, stored: Any) -> date | None:
        return date.fromisoformat(stored) if stored else None

    def show(self, value: Any) -> str:
        return value.isoformat() if value else ""


@dataclass(frozen=True)
class QboObject(Kind):
    """A QuickBooks object id from the local reference cache, or None."""

    entity: str
    account_types: tuple[str, ...] = ()
    noun: str = "account"
    widget = "select"

    def parse(self, raw: Any, choices: Choices) -> str | None:
        value = _text(raw).strip()
        if not value:
            return None
        if value not in {v for v, _label in choices}:
            raise Invalid(f"Choose a QuickBooks {self.noun} from the list; refresh the "
                          "reference data if it is missing.")
        return value

    def show(self, value: Any) -> str:
        return value or ""


@dataclass(frozen=True)
class TimeZone(Kind):
    def parse(self, raw: Any, choices: Choices) -> str:
        value = _text(raw).strip()
        if value not in _time_zones():
            raise Invalid("Enter an IANA time zone such as America/New_York, Europe/London "
                          "or UTC.")
        return value


@dataclass(frozen=True)
class Lines(Kind):
    """A list of strings, typed one per line."""

    max_items: int = 500
    max_length: int = 100
    widget = "textarea"

    def split(self, raw: Any) -> list[str]:
        items = raw if isinstance(raw, (list, tuple)) else _text(raw).splitlines()
        result: list[str] = []
        for item in (str(i).strip() for i in items):
            if item and item not in result:
                result.append(item)
        return result

    def parse(self, raw: Any, choices: Choices) -> list[str]:
        items = self.split(raw)
        if len(items) > self.max_items:
            raise Invalid(f"Enter at most {self.max_items} lines.")
        long = [i for i in items if len(i) > self.max_length]
        if long:
            raise Invalid(f"'{long[0][:30]}' is longer than {self.max_length} characters.")
        return items

    def load(self, stored: Any) -> list[str]:
        return list(stored or [])

    def show(self, value: Any) -> str:
        return "\n".join(value or [])


EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


@dataclass(frozen=True)
class Emails(Lines):
    max_items: int = 20
    max_length: int = 254

    def split(self, raw: Any) -> list[str]:
        text = "\n".join(map(str, raw)) if isinstance(raw, (list, tuple)) else _text(raw)
        return super().split(re.split(r"[\s,;]+", text))

    def parse(self, raw: Any, choices: Choices) -> list[str]:
        items = super().parse(raw, choices)
        bad = [i for i in items if not EMAIL.match(i)]
        if bad:
            raise Invalid(f"'{bad[0][:60]}' is not an email address.")
        return items


@dataclass(frozen=True)
class Address(Kind):
    """One email address, or empty."""

    def parse(self, raw: Any, choices: Choices) -> str:
        value = _text(raw).strip()
        if value and (len(value) > 254 or not EMAIL.match(value)):
            raise Invalid(f"'{value[:60]}' is not an email address.")
        return value


@dataclass(frozen=True)
class LongText(Kind):
    """Several lines of text (a template), kept as typed."""

    max_length: int
    widget = "textarea"

    def parse(self, raw: Any, choices: Choices) -> str:
        value = _text(raw).replace("\r\n", "\n")
        if not value.strip():
            raise Invalid("Enter a template.")
        if len(value) > self.max_length:
            raise Invalid(f"Use at most {self.max_length} characters (this has {len(value)}).")
        return value


@dataclass(frozen=True)
class Rows(Kind):
    """Mapping rows kept in their own table (edited by the mapping editors, not here)."""

    widget = "rows"

    def dump(self, value: Any) -> list[dict[str, Any]]:
        return [asdict(row) for row in value]


@cache
def _time_zones() -> frozenset[str]:
    """IANA names known to this Python (tzdata), read once."""
    return frozenset(zoneinfo.available_timezones())


# ---- the declaration ------------------------------------------------------------------

Default = Any  # a value, or a callable (session, company) -> value


@dataclass(frozen=True)
class Setting:
    """One setting: its tab, kind, default, label and the short hint from the SPEC."""

    tab: str
    kind: Kind
    default: Default
    label: str
    hint: str = ""
    group: str | None = None
    editable: bool = True
    on_company: bool = False  # stored on Company, not in the settings JSON
    applies: Callable[[Company], bool] | None = None
    source: Callable[[Session, Company], Choices] | None = None  # dynamic choices
    name: str = ""

    def default_for(self, session: Session, company: Company) -> Any:
        value = self.default(session, company) if callable(self.default) else self.default
        return copy.deepcopy(value)  # a list default is never shared between companies

    def applies_to(self, company: Company) -> bool:
        return self.applies is None or self.applies(company)


def spec(tab: str, kind: Kind, default: Default, label: str, hint: str = "",
         **options: Any) -> Any:
    """Declare a CompanySettings field and its setting in one place."""
    return field(metadata={"setting": Setting(tab, kind, default, label, hint, **options)})


def _qbo_source(entity: str, account_types: tuple[str, ...] = ()
                ) -> Callable[[Session, Company], Choices]:
    def source(session: Session, company: Company) -> Choices:
        return reference.choices(session, company.id, entity, account_types or None)
    return source


def _cw_locations(session: Session, company: Company) -> Choices:
    rows = session.scalars(sa.select(CwRef).where(CwRef.entity == "location")
                           .order_by(CwRef.name))
    return [(str(r.cw_id), r.name or r.identifier or str(r.cw_id)) for r in rows]


def _recipients(session: Session, company: Company) -> Choices:
    rows = session.scalars(sa.select(User).where(
        User.active.is_(True), User.role.in_([Role.ADMIN, Role.ACCOUNTANT]))
        .order_by(User.email))
    return [(str(u.id), f"{u.name} <{u.email}>") for u in rows]


def _time_zone_default(session: Session, company: Company) -> str:
    cw = session.get(CwConnection, 1)
    zone = cw.server_time_zone if cw else None
    return zone if zone in _time_zones() else "UTC"


def _pairs(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple((v, v) for v in values)


def _qbo(entity: str, *types: str, noun: str = "account") -> QboObject:
    return QboObject(entity, types, noun)


TYPES = (("invoice", "Invoices"), ("expense", "Expenses"), ("inventory", "Inventory"),
         ("payment", "Payment sync"))


@dataclass(frozen=True)
class TaxCodeRow:
    cw_tax_code: str
    qbo_tax_code_id: str


@dataclass(frozen=True)
class CurrencyRow:
    cw_currency: str
    qbo_currency: str


@dataclass(frozen=True)
class ItemTypeRow:
    type_xref: str
    qbo_type: str  # Inventory | NonInventory | Service


@dataclass(frozen=True, kw_only=True)
class CompanySettings:
    """Every setting of one company, typed, defaults filled in (SPEC §4)."""

    # 4.1 Company
    label: str = spec("company", Text(60, required=True), lambda s, c: c.qbo_name[:60],
                      "Label", "The name portal shows for this company.")
    is_default: bool = spec("company", Bool(), False, "Default company",
                            "Preselected on every batch screen; exactly one company is the "
                            "default.", on_company=True)
    default_location_ids: list[int] = spec(
        "company", Multi(ints=True), [], "Default ConnectWise locations",
        "Preselected on selection screens and used by AutoSync. None chosen means all.",
        source=_cw_locations)
    time_zone: str = spec("company", TimeZone(), _time_zone_default, "Time zone",
                          "IANA name, e.g. America/New_York. Defines \"today\", the dates in "
                          "ConnectWise batch identifiers, and date display.")
    gl_account_match: str = spec("company", Choice(_pairs("Name", "Number")), "Name",
                                 "Match GL accounts by",
                                 "How ConnectWise GL account strings find QuickBooks "
                                 "accounts. Number needs account numbers on in QuickBooks.")
    enabled_types: list[str] = spec("company", Multi(TYPES), [v for v, _ in TYPES],
                                    "Enabled batch types",
                                    "Disabled types are hidden; the checklist treats them as "
                                    "done.")
    doc_number_prefix: str = spec("company", Text(6), "", "DocNumber prefix",
                                  "Put before invoice and credit memo numbers (at most 6 "
                                  "characters; 21 in total).")
    go_live_date: date | None = spec("company", Day(required=False), None, "Go-live date",
                                     "Set by clearing old transactions; older records are "
                                     "flagged and AutoSync skips them.", editable=False)
    unbatch_default_qbo_action: str = spec(
        "company", Choice((("Void", "Void (Delete where QuickBooks cannot void)"),
                           ("Delete", "Delete"), ("None", "None (leave the document)"))),
        "Void", "Unbatch: QuickBooks action",
        "What unbatching a posted record does to its QuickBooks document, unless chosen "
        "otherwise when unbatching.")
    reference_cache_max_age_minutes: int = spec(
        "company", Int(5, 1440), 60, "Reference data maximum age (minutes)",
        "A batch refreshes older reference data first (5–1440).")

    # 4.2 Sales
    invoice_export_detail: str = spec(
        "sales", Choice(_pairs("Default", "Condensed", "Detailed")), "Default",
        "Invoice export detail",
        "Default summary level on the invoice selection screen; shapes line descriptions.")
    service_item_source: str = spec(
        "sales", Choice((("WorkRoleWorkType", "Work role and work type"),
                         ("WorkRole", "Work role"), ("WorkType", "Work type"),
                         ("ServiceGLAccount", "Service GL account"),
                         ("GLAccount", "GL account"))), "ServiceGLAccount",
        "Service item source",
        "How lines without a ConnectWise product get a QuickBooks Service item. The work role "
        "and work type sources force the Detailed export.")
    fallback_item_name: str = spec("sales", Text(100, required=True, qbo_name=True,
                                                    hierarchy=True), "Down Payment",
                                   "Fallback item name",
                                   "Item for lines with neither a product nor a service item "
                                   "(e.g. down payments).")
    display_uom: bool = spec("sales", Bool(), False, "Show the unit of measure",
                             "Appends \" (UOM)\" to invoice line descriptions.")
    allow_epayments: bool = spec("sales", Bool(), False, "Allow online payments",
                                 "Master switch for the two flags below.")
    allow_card_payments: bool = spec("sales", Bool(), False, "Allow card payments",
                                     "Writes AllowOnlineCreditCardPayment.")
    allow_ach_payments: bool = spec("sales", Bool(), False, "Allow ACH payments",
                                    "Writes AllowOnlineACHPayment.")
    item_account_mismatch: str = spec(
        "sales", Choice((("Error", "Error"), ("UseItemAccount", "Use item account"))),
        "Error", "Item account mismatch",
        "When a line maps to another income account than its item's: block pre-flight, or "
        "post with a warning.")
    skip_zero_invoices: bool = spec("sales", Bool(), False, "Skip zero invoices",
                                    "Invoices totalling 0.00 are marked in ConnectWise "
                                    "without a QuickBooks document.")
    copy_customer_po: bool = spec("sales", Bool(), True, "Copy the customer PO",
                                  "Puts \"PO CUSTOMERPO\" in the customer memo.")
    total_tolerance: Decimal = spec("sales", Dec(), Decimal("0.01"), "Total tolerance",
                                    "Warn when the QuickBooks total differs by more.")
    credit_memo_multi_invoice: str = spec(
        "sales", Choice((("Error", "Error"), ("AllocateOldestFirst", "Allocate oldest first"),
                         ("AllocateProportionally", "Allocate proportionally"))), "Error",
        "Credit memo on several invoices",
        "When one QuickBooks payment applies a credit memo to several invoices.",
        group="Payment sync")
    cw_payment_authority: str = spec(
        "sales", Choice((("QuickBooks", "QuickBooks"), ("KeepManual", "Keep manual"))),
        "QuickBooks", "ConnectWise payment authority",
        "QuickBooks: CW payments portal did not write are removed (never WisePay ones). Keep "
        "manual: payments entered in CW are left alone.", group="Payment sync")
    unmapped_credit_as_payment: bool = spec(
        "sales", Bool(), False, "Count unmapped credits as payment",
        "A QuickBooks-only credit memo applied to an invoice counts as cash in ConnectWise.",
        group="Payment sync")
    match_invoices_by_docnumber: bool = spec(
        "sales", Bool(), True, "Match invoices by number",
        "Also sync QuickBooks invoices portal did not post when their number matches.",
        group="Payment sync")
    payment_sync_overlap_minutes: int = spec(
        "sales", Int(0, 60), 5, "Cursor overlap (minutes)",
        "Each run moves the cursor back by this much (0–60).", group="Payment sync")
    use_cdc: bool = spec("sales", Bool(), True, "Use Change Data Capture",
                         "When the window is 30 days or less.", group="Payment sync")

    # 4.3 Purchases
    purchase_display_uom: bool = spec("purchases", Bool(), False, "Show the unit of measure",
                                      "As on Sales, for bill lines.")
    reimbursable_expenses_as_bills: bool = spec(
        "purchases", Bool(), True, "Reimbursable expenses as bills",
        "A Bill to the member's vendor; off: a Purchase.")
    sync_unapproved_expenses: bool = spec("purchases", Bool(), False,
                                          "Sync unapproved expenses",
                                          "Off: they are listed greyed out and skipped.")
    vendor_invoice_date_source: str = spec(
        "purchases", Choice((("DocumentDate", "Document date"),
                             ("VendorInvoiceDate", "Vendor invoice date"),
                             ("PurchaseDate", "Purchase date"))), "VendorInvoiceDate",
        "Bill date from", "Bill date for item receipts; a blank vendor invoice date falls "
        "back to the document date.")
    non_reimbursable_grouping: str = spec(
        "purchases", Choice((("PerEntry", "Per expense entry"), ("PerReport", "Per report"))),
        "PerEntry", "Non-reimbursable grouping",
        "One Purchase per entry (easier card reconciliation) or per member report.")
    personal_expenses: str = spec(
        "purchases", Choice((("Skip", "Skip"), ("MarkOnly", "Mark only"))), "Skip",
        "Personal expenses", "Mark only: marked in ConnectWise without a QuickBooks document.")
    vin_uniqueness_scope: str = spec(
        "purchases", Choice((("AnyVendor", "Any vendor"), ("SameVendor", "Same vendor"))),
        "AnyVendor", "Vendor invoice number unique across",
        "A number already on a QuickBooks bill blocks the receipt.")
    partial_receipt_mode: str = spec(
        "purchases", Choice((("Refuse", "Refuse"), ("SuffixDocNumber", "Suffix the number"))),
        "Refuse", "Second receipt, same number",
        "Refuse it, or post it as VIN-2, VIN-3 …")
    purchase_tax_as_line_item: bool = spec(
        "purchases", Bool(), lambda s, c: bool(c.is_us), "Purchase tax as a line",
        "Posts purchase tax as an account line (US QuickBooks takes no tax codes on "
        "purchases).")
    purchase_tax_account: str | None = spec(
        "purchases", _qbo("Account", "Expense", "Other Expense", "Cost of Goods Sold",
                          "Other Current Liability"), None, "Purchase tax account",
        "Required when the line above is on and a record carries purchase tax.",
        source=_qbo_source("Account", ("Expense", "Other Expense", "Cost of Goods Sold",
                                       "Other Current Liability")))

    # 4.4 Inventory
    create_items: bool = spec("inventory", Bool(), True, "Create missing items",
                              "Off: a missing item is an error.")
    inventory_parts_as: str = spec(
        "inventory", Choice((("Inventory", "Inventory"), ("NonInventory", "Non-inventory"))),
        lambda s, c: "Inventory" if getattr(c, "track_inventory", None) else "NonInventory",
        "Inventory parts as", "QuickBooks type for products whose Type Xref is "
        "\"Inventory Part\".")
    inventory_asset_account: str | None = spec(
        "inventory", _qbo("Account", "Other Current Asset"), None, "Inventory asset account",
        "For new Inventory items when the line has no inventory account.",
        source=_qbo_source("Account", ("Other Current Asset",)))
    cogs_account: str | None = spec(
        "inventory", _qbo("Account", "Cost of Goods Sold"), None, "Cost of goods sold account",
        "For new items when the line has no cost account.",
        source=_qbo_source("Account", ("Cost of Goods Sold",)))
    inventory_start_date: date = spec("inventory", Day(), date(2000, 1, 1),
                                      "Inventory start date",
                                      "InvStartDate of new Inventory items (quantity 0).")
    freight_posting: str = spec(
        "inventory", Choice((("AccountLine", "Account line"), ("Item", "Item"))),
        "AccountLine", "Freight posting",
        "An account line to the freight GL account, or an item line.")
    freight_item_name: str = spec("inventory", Text(100, required=True, qbo_name=True,
                                                        hierarchy=True), "Freight",
                                  "Freight item name",
                                  "Created as a Service item when needed.")
    adjustments_and_transfers: str = spec(
        "inventory", Choice((("JournalEntry", "Journal entry"), ("MarkOnly", "Mark only"),
                             ("Skip", "Skip"))), "JournalEntry",
        "Adjustments and transfers", "How inventory adjustments and transfers are handled.")
    create_product_categories: bool = spec("inventory", Bool(), True,
                                           "Create product categories",
                                           "For Category:Item product ids.")
    item_types: tuple[ItemTypeRow, ...] = spec(
        "inventory", Rows(), (), "Item types",
        "ConnectWise product type Xref to the QuickBooks type of new items; Xrefs without a "
        "row use the defaults.", editable=False)

    # 4.5 Contacts
    append_account_name: bool = spec(
        "contacts", Bool(), True, "Append account name",
        "New customers and vendors get the ConnectWise account id in parentheses, avoiding "
        "name clashes. Turn off "
        "when QuickBooks already has customers named exactly like ConnectWise companies.")
    create_customers: bool = spec("contacts", Bool(), True, "Create customers",
                                  "Missing customers and sub-customers.")
    create_vendors: bool = spec("contacts", Bool(), True, "Create vendors",
                                "Missing vendors for item receipts.")
    create_member_vendors: bool = spec("contacts", Bool(), True, "Create member vendors",
                                       "Missing member vendors for expenses.")
    copy_contact_details: bool = spec("contacts", Bool(), True, "Copy contact details",
                                      "On create only: email, phone, billing and shipping "
                                      "address.")

    # 4.6 Taxes
    tax_code_mappings: tuple[TaxCodeRow, ...] = spec(
        "taxes", Rows(), (), "Tax code mappings",
        "ConnectWise tax code to QuickBooks tax code; each CW code once.", editable=False)
    exempt_tax_code: str | None = spec(
        "taxes", _qbo("TaxCode", noun="tax code"), None, "Exempt tax code",
        "Used on non-taxable sales and lines. None: the code of the CW transaction.",
        source=_qbo_source("TaxCode"))
    tax_exempt_items: list[str] = spec(
        "taxes", Lines(), [], "Tax-exempt items",
        "One ConnectWise product id or service item name per line; these lines always get "
        "the exempt tax code.", applies=lambda c: not c.is_us)
    unmapped_tax_codes: str = spec(
        "taxes", Choice((("UseCwXref", "Use the ConnectWise Xref"), ("Error", "Error"))),
        "UseCwXref", "Unmapped tax codes",
        "Fall back to the CW tax code Xref (must match a QuickBooks code exactly), or error.")
    tax_difference_tolerance: Decimal = spec(
        "taxes", Dec(), Decimal("0.02"), "Tax difference tolerance",
        "Warn when QuickBooks' tax differs from ConnectWise's by more.")

    # 4.7 Currency
    currency_mappings: tuple[CurrencyRow, ...] = spec(
        "currency", Rows(), (), "Currency mappings",
        "ConnectWise currency to QuickBooks currency; ISO codes map to themselves.",
        editable=False)
    per_currency_customer_suffix: str = spec(
        "currency", Text(40, strip=False, qbo_name=True), "", "Per-currency customer suffix",
        "E.g. \" ({code})\": a foreign-currency record goes to DISPLAYNAME + suffix. "
        "Empty: a currency mismatch is an error.")

    # 4.8 Categories
    use_classes: bool = spec("categories", Bool(), False, "Use classes",
                             "Each line gets the class matching its CW GL class. Needs class "
                             "tracking in QuickBooks.")
    create_classes: bool = spec("categories", Bool(), False, "Create classes",
                                "Missing classes, parents first.")
    use_locations: bool = spec("categories", Bool(), False, "Use {location}s",
                               "The header gets the {location} from the source below. Needs "
                               "{location} tracking in QuickBooks.")
    location_source: str = spec(
        "categories", Choice((("Class", "Class"), ("Territory", "Territory"))), "Class",
        "{location} source",
        "Class: the class of the header GL account. Territory: the CW invoice territory "
        "(invoices only).")
    create_locations: bool = spec("categories", Bool(), False, "Create {location}s",
                                  "Missing {location}s, parents first.")

    # 4.9 AutoSync
    autosync_enabled: bool = spec("autosync", Bool(), False, "AutoSync on",
                                  "Master switch; turning it on checks the preconditions.")
    autosync_interval_minutes: int = spec(
        "autosync", Int(15, 1440, too_low="The interval must be at least 15 minutes; 120 is "
                                          "recommended so a large batch can finish."),
        120, "Interval (minutes)", "Minutes between run starts (15–1440).")
    autosync_invoices: bool = spec("autosync", Bool(), False, "Invoices", group="Types")
    autosync_expenses: bool = spec("autosync", Bool(), False, "Expenses", group="Types")
    autosync_inventory: bool = spec("autosync", Bool(), False, "Inventory", group="Types")
    autosync_payments: bool = spec("autosync", Bool(), False, "Payments", group="Types")
    autosync_on_mapping_error: str = spec(
        "autosync", Choice((("BlockRun", "Block the run"), ("SkipRecords", "Skip records"))),
        "BlockRun", "On a mapping error",
        "Block: nothing is written and the run fails. Skip: records with errors are left out.")
    autosync_error_user_ids: list[int] = spec(
        "autosync", Multi(ints=True), [], "Failure email recipients",
        "Empty when turning AutoSync on: every admin and accountant.", source=_recipients)
    autosync_error_extra_emails: list[str] = spec(
        "autosync", Emails(), [], "Extra recipients", "Email addresses, one per line.")
    autosync_max_consecutive_failures: int = spec(
        "autosync", Int(1, 10), 3, "Failures before turning off",
        "After this many red runs in a row AutoSync turns itself off (1–10).")

    # 14.1 Email
    email_delivery: str = spec(
        "email", Choice((("Off", "Off"), ("QuickBooks", "QuickBooks"), ("Smtp", "SMTP"))),
        "Off", "Delivery",
        "QuickBooks: QuickBooks' own invoice email with its PDF and pay link. SMTP: portal's "
        "SMTP server, with the PDF attached.")
    send_mode: str = spec(
        "email", Choice((("Manual", "Manual"), ("AfterBatch", "After each batch"))), "Manual",
        "When to send", "After each batch: every invoice of a batch is emailed once it is "
        "done.")
    recipient_source: str = spec(
        "email", Choice((("CwBillingContact", "ConnectWise billing contact"),
                         ("QboCustomerEmail", "QuickBooks customer email"))),
        "CwBillingContact", "Recipient",
        "Where the To address comes from; the other is the fallback. Without an address the "
        "email is skipped.")
    from_address: str = spec("email", Address(), "", "From address",
                             "SMTP only. Empty: the SMTP server's address. QuickBooks sends "
                             "from the QuickBooks company settings.")
    from_name: str = spec("email", Text(100), "", "From name", "SMTP only.")
    reply_to: str = spec("email", Address(), "", "Reply-To", "SMTP only.")
    cc: list[str] = spec("email", Emails(), [], "Cc",
                         "Addresses, one per line. QuickBooks: BillEmailCc on the invoice.")
    bcc: list[str] = spec("email", Emails(), [], "Bcc",
                          "Addresses, one per line. QuickBooks: BillEmailBcc on the invoice.")
    subject_template: str = spec(
        "email", Text(200, required=True), DEFAULT_SUBJECT, "Subject",
        "SMTP only (QuickBooks uses its own template).")
    body_template: str = spec(
        "email", LongText(20000), DEFAULT_BODY, "Body",
        "SMTP only; sent as text and as HTML.")
    include_payment_link: bool = spec(
        "email", Bool(), True, "Include the payment link",
        "SMTP: adds QuickBooks' pay link when online payment is on for the invoice.")
    pdf_source: str = spec("email", Choice((("QuickBooks", "QuickBooks"),
                                            ("ConnectWise", "ConnectWise"))),
                           "QuickBooks", "PDF attachment", "SMTP: whose invoice PDF is "
                                                          "attached.")
    skip_zero_balance: bool = spec("email", Bool(), True, "Skip paid invoices",
                                   "Does not email invoices that are already paid.")
    send_credit_memos: bool = spec("email", Bool(), False, "Send credit memos",
                                   "Also emails credit memos.")

    def item_type_for(self, type_xref: str) -> str | None:
        """The QuickBooks item type saved for a product type Xref, or None (the default
        applies: services.item_types)."""
        for row in self.item_types:
            if row.type_xref == type_xref:
                return row.qbo_type
        return None

    def currency_for(self, cw_currency: str) -> str:
        """The QuickBooks currency of a ConnectWise one (identity when unmapped)."""
        for row in self.currency_mappings:
            if row.cw_currency == cw_currency:
                return row.qbo_currency
        return cw_currency


DEFINITIONS: tuple[Setting, ...] = tuple(replace(f.metadata["setting"], name=f.name)
                                         for f in fields(CompanySettings))
BY_NAME: dict[str, Setting] = {s.name: s for s in DEFINITIONS}


@dataclass(frozen=True)
class Tab:
    slug: str
    title: str


TABS: tuple[Tab, ...] = (Tab("company", "Company"), Tab("sales", "Sales"),
                         Tab("purchases", "Purchases"), Tab("inventory", "Inventory"),
                         Tab("contacts", "Contacts"), Tab("taxes", "Taxes"),
                         Tab("currency", "Currency"), Tab("categories", "Categories"),
                         Tab("autosync", "AutoSync"), Tab("email", "Email"))


def visible_tabs(company: Company) -> list[Tab]:
    """The tabs this company shows: Taxes is hidden under Automated Sales Tax."""
    return [t for t in TABS if not (t.slug == "taxes" and company.ast_enabled)]


def tab_for(company: Company, slug: str) -> Tab | None:
    """The visible tab named `slug`, or None (unknown, or hidden for this company)."""
    return next((t for t in visible_tabs(company) if t.slug == slug), None)


def settings_of(tab: str, company: Company, *, editable_only: bool = False) -> list[Setting]:
    """The settings a tab shows for this company, in declaration order."""
    return [s for s in DEFINITIONS if s.tab == tab and s.applies_to(company)
            and (s.editable or not editable_only)]


def named(name: str, company: Company | None = None) -> str:
    """A setting as a hint names it: its label exactly as its tab shows it, and the tab,
    e.g. `“Append account name” (Contacts tab)`; so a hint never uses other words."""
    setting = BY_NAME[name]
    label = label_of(setting, company) if company is not None else setting.label
    title = next(t.title for t in TABS if t.slug == setting.tab)
    return f"“{label}” ({title} tab)"


def label_of(setting: Setting, company: Company) -> str:
    """The label, with QuickBooks' own word for locations ("Department" …)."""
    return setting.label.replace("{location}", company.location_label or "Location")


def hint_of(setting: Setting, company: Company) -> str:
    """The short hint from the SPEC's Effect column, in QuickBooks' words."""
    return setting.hint.replace("{location}", (company.location_label or "location").lower())


def choices(session: Session, company: Company, setting: Setting) -> Choices:
    """The allowed (value, label) pairs of a list setting, as strings."""
    if setting.source is not None:
        return setting.source(session, company)
    options = getattr(setting.kind, "options", ())
    return [(str(v), str(label)) for v, label in options]


# ---- reading ----------------------------------------------------------------------------

def _facts(company: Company) -> dict[str, Any]:
    return {"is_us": company.is_us, "ast_enabled": company.ast_enabled,
            "using_sales_tax": company.using_sales_tax,
            "class_tracking": company.class_tracking,
            "track_locations": company.track_locations,
            "multicurrency": company.multicurrency, "home_currency": company.home_currency,
            "account_numbers": company.account_numbers,
            "custom_txn_numbers": company.custom_txn_numbers,
            "epayments_available": company.epayments_available,
            "book_close_date": company.book_close_date.isoformat()
            if company.book_close_date else None}


def _stored(setting: Setting) -> bool:
    return not setting.on_company and not isinstance(setting.kind, Rows)


def _rows(session: Session, company: Company) -> dict[str, Any]:
    taxes = session.scalars(sa.select(TaxCodeMapping).where(
        TaxCodeMapping.company_id == company.id).order_by(TaxCodeMapping.cw_tax_code))
    currencies = session.scalars(sa.select(CurrencyMapping).where(
        CurrencyMapping.company_id == company.id).order_by(CurrencyMapping.cw_currency))
    item_types = session.scalars(sa.select(ItemTypeMapping).where(
        ItemTypeMapping.company_id == company.id).order_by(ItemTypeMapping.type_xref))
    return {"tax_code_mappings": tuple(TaxCodeRow(r.cw_tax_code, r.qbo_tax_code_id)
                                       for r in taxes),
            "currency_mappings": tuple(CurrencyRow(r.cw_currency, r.qbo_currency)
                                       for r in currencies),
            "item_types": tuple(ItemTypeRow(r.type_xref, r.qbo_type) for r in item_types)}


def _values(session: Session, company: Company, row: StoredSettings) -> dict[str, Any]:
    """Every setting's Python value: stored, else the default (a setting added later)."""
    values: dict[str, Any] = {}
    for s in DEFINITIONS:
        if s.on_company:
            values[s.name] = getattr(company, s.name)
        elif _stored(s):
            values[s.name] = s.kind.load(row.values[s.name]) if s.name in row.values \
                else s.default_for(session, company)
    values.update(_rows(session, company))
    return values


def _dump(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: BY_NAME[name].kind.dump(value) for name, value in values.items()}


def _add_version(session: Session, company: Company, tab: str | None,
                 values: Mapping[str, Any], by: User | None) -> SettingsVersion:
    number = (session.scalar(sa.select(sa.func.max(SettingsVersion.number)).where(
        SettingsVersion.company_id == company.id)) or 0) + 1
    version = SettingsVersion(company_id=company.id, number=number, tab=tab,
                              values=_dump(values), facts=_facts(company),
                              author=by.email if by else "system",
                              author_id=by.id if by else None)
    session.add(version)
    session.flush()
    return version


def _ensure_row(session: Session, company: Company) -> StoredSettings:
    """The company's settings row, created with its defaults (and version 1) when missing.

    Defaults that depend on the company (label, time zone, purchase tax line, inventory
    parts) are computed now and stored, so later changes of those facts move nothing.
    """
    row = session.get(StoredSettings, company.id)
    if row is not None:
        return row
    values = {s.name: s.default_for(session, company) for s in DEFINITIONS if _stored(s)}
    try:
        with session.begin_nested():
            row = StoredSettings(company_id=company.id, values=_dump(values))
            session.add(row)
            session.flush()
            _add_version(session, company, None, _values(session, company, row), None)
    except IntegrityError:  # another request created them first
        existing = session.get(StoredSettings, company.id)
        if existing is None:
            raise
        return existing
    return row


def ensure_settings(session: Session, company: Company) -> None:
    """Store the company's settings row and version 1 (author "system") when it has none:
    done when a company connects, and before a batch records its version; the caller
    commits. Pages only read (GET never writes)."""
    _ensure_row(session, company)


def get_settings(session: Session, company: Company) -> CompanySettings:
    """Every setting of `company`, typed and with defaults; writes nothing (a company that
    has no settings row yet reads the defaults it would get)."""
    row = session.get(StoredSettings, company.id)
    if row is None:
        row = StoredSettings(company_id=company.id, values=_dump(
            {s.name: s.default_for(session, company) for s in DEFINITIONS if _stored(s)}))
    return CompanySettings(**_values(session, company, row))


def as_json(settings: CompanySettings) -> dict[str, Any]:
    """All settings as JSON values (Decimal and dates as strings), for batch snapshots."""
    return _dump({s.name: getattr(settings, s.name) for s in DEFINITIONS})


ROW_TYPES: dict[str, type] = {"tax_code_mappings": TaxCodeRow,
                              "currency_mappings": CurrencyRow, "item_types": ItemTypeRow}


def from_json(data: Mapping[str, Any]) -> CompanySettings:
    """The settings of a batch snapshot (`as_json`), so a resumed batch keeps its version.

    A snapshot taken before a rows setting existed reads it as no rows (the defaults).
    """
    values: dict[str, Any] = {}
    for s in DEFINITIONS:
        if isinstance(s.kind, Rows):
            values[s.name] = tuple(ROW_TYPES[s.name](**row) for row in data.get(s.name, ()))
            continue
        values[s.name] = s.kind.load(data[s.name])
    return CompanySettings(**values)


def current_version(session: Session, company: Company) -> SettingsVersion:
    """The newest settings version (created with the defaults when there is none): what a
    batch records when it starts; the caller commits."""
    _ensure_row(session, company)
    version = _newest_version(session, company)
    assert version is not None
    return version


def shown_version(session: Session, company: Company) -> SettingsVersion:
    """The newest settings version, for pages: writes nothing. A company connected before
    settings existed has none yet and shows its defaults as an unsaved version 0; its first
    save or batch stores them (GET never writes)."""
    version = _newest_version(session, company)
    if version is not None:
        return version
    return SettingsVersion(company_id=company.id, number=0, tab=None, values={},
                           facts=_facts(company), author="defaults, not saved yet",
                           created_at=utcnow())


def _newest_version(session: Session, company: Company) -> SettingsVersion | None:
    return session.scalar(sa.select(SettingsVersion).where(
        SettingsVersion.company_id == company.id).order_by(SettingsVersion.number.desc())
        .limit(1))


def changed_facts(session: Session, company: Company) -> dict[str, tuple[Any, Any]]:
    """QuickBooks preferences that changed since the last save: {fact: (then, now)}.

    The dashboard checklist names them (SPEC §3.8), because a setting chosen under the
    old preferences (classes, locations, account numbers …) may no longer fit.
    """
    then = shown_version(session, company).facts
    now = _facts(company)
    return {k: (then.get(k), v) for k, v in now.items() if k in then and then[k] != v}


def form_values(settings: CompanySettings, tab: str, company: Company) -> dict[str, Any]:
    """The tab's current values as form fields hold them (strings, lists, bools)."""
    return {s.name: s.kind.show(getattr(settings, s.name))
            for s in settings_of(tab, company, editable_only=True)}


# ---- saving -----------------------------------------------------------------------------

# A cross-field rule: (session, company, values before, values after) -> errors.
Rule = Callable[[Session, Company, Mapping[str, Any], Mapping[str, Any]],
                Iterable[SettingError]]


def _rule_company(session: Session, company: Company, old: Mapping[str, Any],
                  new: Mapping[str, Any]) -> Iterable[SettingError]:
    if new["gl_account_match"] == "Number" and not company.account_numbers:
        yield SettingError("gl_account_match", "Number needs account numbers turned on in "
                           "QuickBooks (Settings › Advanced › Chart of accounts), then "
                           "Refresh company info. Otherwise match by Name.")
    if old["is_default"] and not new["is_default"]:
        yield SettingError("is_default", "Exactly one company is the default: make another "
                           "company the default instead.")


def _rule_categories(session: Session, company: Company, old: Mapping[str, Any],
                     new: Mapping[str, Any]) -> Iterable[SettingError]:
    if new["use_classes"] and company.class_tracking == "none":
        yield SettingError("use_classes", "QuickBooks has class tracking off. Turn it on in "
                           "QuickBooks (Settings › Advanced › Categories), then Refresh "
                           "company info.")
    if new["use_locations"] and not company.track_locations:
        word = (company.location_label or "location").lower()
        yield SettingError("use_locations", f"QuickBooks has {word} tracking off. Turn it on "
                           "in QuickBooks (Settings › Advanced › Categories), then Refresh "
                           "company info.")


def unavailable(setting: Setting) -> str | None:
    """Why a setting cannot be changed in this release, or None: an AutoSync type whose
    batches are not built stays off, with the reason shown."""
    from portal.services import autosync

    return autosync.not_built(setting.name)


def _rule_autosync(session: Session, company: Company, old: Mapping[str, Any],
                   new: Mapping[str, Any]) -> Iterable[SettingError]:
    from portal.services import autosync

    for auto in autosync.TYPES:
        reason = autosync.not_built(auto.setting)
        if new.get(auto.setting) and reason:
            yield SettingError(auto.setting, reason)
    if not new["autosync_enabled"] or old["autosync_enabled"]:
        return
    # SPEC 15.2: checked when enabling; AutoSync stays off and says why.
    for problem in autosync.preconditions(session, company, new):
        yield SettingError("autosync_enabled", problem)


def switch_off_autosync(session: Session, company: Company, reason: str) -> SettingsVersion:
    """AutoSync turned off by itself (SPEC 15.4): a new settings version by "system"; the
    caller audits `autosync.auto_disable` and commits."""
    row = _ensure_row(session, company)
    row.values = {**row.values, "autosync_enabled": False}
    session.flush()
    return _add_version(session, company, "autosync", _values(session, company, row), None)


def _rule_email(session: Session, company: Company, old: Mapping[str, Any],
                new: Mapping[str, Any]) -> Iterable[SettingError]:
    """Both templates render with the sample data (errors beside the field), and SMTP
    delivery needs the SMTP server."""
    from portal.services import email_templates, mailer

    for problem in email_templates.problems(new["subject_template"], new["body_template"]):
        yield SettingError(problem.field, problem.message)
    if new["email_delivery"] == "Smtp" and mailer.current(session) is None:
        yield SettingError("email_delivery", "Set up the SMTP server first (Email › SMTP "
                                             "server), or choose QuickBooks.")


RULES: dict[str, tuple[Rule, ...]] = {
    "company": (_rule_company,), "categories": (_rule_categories,),
    "autosync": (_rule_autosync,), "email": (_rule_email,)}


class UnknownTab(LookupError):
    """The tab does not exist, or is hidden for this company (Taxes under AST)."""


def validate_tab(session: Session, company: Company, tab: str, data: Mapping[str, Any],
                 current: Mapping[str, Any]) -> tuple[dict[str, Any], list[SettingError]]:
    """Parse the submitted values of one tab; returns (all values after the save, errors).

    Keys missing from `data` keep their current value, so a caller may save one setting.
    """
    if tab_for(company, tab) is None:
        raise UnknownTab(tab)
    parsed: dict[str, Any] = {}
    errors: list[SettingError] = []
    for s in settings_of(tab, company, editable_only=True):
        if s.name not in data:
            continue
        try:
            parsed[s.name] = s.kind.parse(data[s.name], choices(session, company, s))
        except Invalid as exc:
            errors.append(SettingError(s.name, str(exc)))
    new = {**current, **parsed}
    failed = {e.name for e in errors}
    for rule in RULES.get(tab, ()):
        errors += [e for e in rule(session, company, current, new) if e.name not in failed]
    return new, errors


def _on_enable(session: Session, company: Company, old: Mapping[str, Any],
               new: dict[str, Any]) -> None:
    if new.get("autosync_enabled") and not old["autosync_enabled"] \
            and not new["autosync_error_user_ids"]:
        new["autosync_error_user_ids"] = [int(v) for v, _ in _recipients(session, company)]


def save_tab(session: Session, company: Company, tab: str, data: Mapping[str, Any],
             by: User | None) -> list[SettingError] | SettingsVersion:
    """Validate and save one tab: errors (nothing written), or the new version.

    A valid save stores the values, adds an immutable `settings_version` with every tab's
    values, and audits `settings.<tab>.update` with the changed keys only. Raises
    UnknownTab for a hidden or unknown tab. The caller commits (or rolls back on errors).
    """
    row = _ensure_row(session, company)
    session.refresh(row, with_for_update=True)  # serialise concurrent saves (PostgreSQL)
    current = _values(session, company, row)
    new, errors = validate_tab(session, company, tab, data, current)
    if errors:
        return errors
    _on_enable(session, company, current, new)
    if new.get("autosync_enabled") and not current["autosync_enabled"]:
        from portal.services import autosync

        autosync.on_enable(session, company)
    changed = [s.name for s in settings_of(tab, company, editable_only=True)
               if new[s.name] != current[s.name]]
    if new["is_default"] and not current["is_default"]:
        qbo_setup.set_default(session, company)
    row.values = {**row.values, **_dump({k: v for k, v in new.items()
                                         if _stored(BY_NAME[k])})}
    session.flush()
    version = _add_version(session, company, tab, new, by)
    audit.record(session, f"settings.{tab}.update", target=version, company_id=company.id,
                 before=_dump({k: current[k] for k in changed}),
                 after=_dump({k: new[k] for k in changed}))
    return version


def set_value(session: Session, company: Company, name: str, value: Any,
              by: User | None) -> SettingsVersion:
    """Store one setting that no tab edits (e.g. `go_live_date`, set by clearing), with a
    new settings version and an audit entry. The caller commits."""
    row = _ensure_row(session, company)
    session.refresh(row, with_for_update=True)
    current = _values(session, company, row)
    new = {**current, name: value}
    row.values = {**row.values, **_dump({name: value})}
    session.flush()
    version = _add_version(session, company, None, new, by)
    audit.record(session, "settings.value.update", target=version, company_id=company.id,
                 before=_dump({name: current[name]}), after=_dump({name: value}),
                 actor=by.email if by else "system")
    return version


__all__ = ["BY_NAME", "DEFINITIONS", "ROW_TYPES", "TABS", "CompanySettings", "CurrencyRow",
           "Invalid", "ItemTypeRow", "Setting", "SettingError", "SettingsVersion", "Tab",
           "TaxCodeRow", "UnknownTab", "as_json", "changed_facts", "choices",
           "current_version", "form_values", "get_settings", "hint_of", "label_of", "named",
           "save_tab", "settings_of", "shown_version", "switch_off_autosync", "tab_for",
           "unavailable",
           "validate_tab", "visible_tabs"]
