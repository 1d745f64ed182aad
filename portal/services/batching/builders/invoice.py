"""Turn one ConnectWise invoice into the QuickBooks Invoice or CreditMemo body (SPEC 7).

Pure: no database, no HTTP. The invoice record type (`types/invoices.py`) runs it for the
engine: pre-flight calls `check()`, the engine creates what `needs()` lists, refreshes its
MappingSet, then calls `build()`. A reference that still does not
resolve raises BuildError, so a half-mapped document is never posted. Money is Decimal
throughout; it becomes float only in `_jsonable`, the last step of `build()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from portal.services.batching.types import base
from portal.services.batching.types.base import Need
from portal.services.company_settings import CompanySettings
from portal.services.mapping import MappingSet, Resolution

if TYPE_CHECKING:
    from portal.models import QboRef

CENT = Decimal("0.01")
QTY = Decimal("0.0001")
PRICE = Decimal("0.0000001")
MAX_DESCRIPTION = 4000
MAX_DOC_NUMBER = 21
POSTED_LINE_TYPES = frozenset({"RP"})  # SPEC 7.2 step 6: sales lines
SKIPPED_LINE_TYPES = frozenset({"ST", "AR"})  # tax lines; the header itself
WORK_SOURCES = frozenset({"WorkRoleWorkType", "WorkRole", "WorkType"})
RESOLVED = frozenset({"exact", "override"})
DASH = "\u2013"  # SPEC 7.3 writes "Ticket #ID – SUMMARY" with an en dash


class BuildError(base.BuildError):
    """An invoice that cannot be built as it stands; `hint` says what fixes it."""


# ---- inputs and outputs -------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the QuickBooks company is (SPEC 3.8), as far as an invoice depends on it (the
    record type copies it from `types.base.CompanyFacts`)."""

    is_us: bool
    ast_enabled: bool
    using_sales_tax: bool
    class_tracking: str  # none | line | txn
    multicurrency: bool
    home_currency: str
    name: str


@dataclass(frozen=True)
class Source:
    """One ConnectWise invoice as the engine fetched it (SPEC 7.1)."""

    transaction: dict[str, Any]  # one GL export "transactions" element
    invoice: dict[str, Any] | None  # /finance/invoices/{id}
    time_entries: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    tickets: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    bill_email: str | None = None


@dataclass
class Built:
    """The body to POST, with what the engine compares after posting (SPEC 7.2 step 8)."""

    entity: str  # Invoice | CreditMemo
    doc_number: str
    payload: dict[str, Any]
    cw_total: Decimal  # in the document's sign: positive for a credit memo
    cw_tax: Decimal
    warnings: list[str]
    zero: bool


# ---- numbers ------------------------------------------------------------------------


def _dec(value: Any) -> Decimal:
    """Decimal from JSON (float, int, str or None); str() keeps 0.1 from becoming 0.1000…1."""
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise BuildError(f"ConnectWise sent '{value}' where a number belongs.",
                         "Check the invoice in ConnectWise.") from None


def money(value: Any) -> Decimal:
    """Cents, rounded half up as ConnectWise rounds."""
    return _dec(value).quantize(CENT, ROUND_HALF_UP)


def _plain(value: Decimal, places: int = 0) -> str:
    """A number as people write it: no exponent, no trailing zeros past `places`."""
    text = format(value.normalize(), "f")
    decimals = len(text.partition(".")[2])
    return f"{value:.{places}f}" if decimals < places else text


def line_amounts(qty: Decimal, amount: Decimal, price: Decimal | None = None
                 ) -> tuple[Decimal, Decimal, Decimal, str]:
    """Qty, UnitPrice, Amount and a description prefix that QuickBooks accepts together.

    QuickBooks refuses a line whose round(Qty × UnitPrice, 2) is not Amount (error 6070).
    CW's own price goes through when it agrees; else UnitPrice = Amount / Qty to 7 places
    when that rounds back; else Qty 1 at Amount, and "QTY × PRICE " keeps the CW figures
    visible. Negative lines keep a positive Qty and a negative UnitPrice.
    """
    amount = amount.quantize(CENT, ROUND_HALF_UP)
    qty = abs(qty).quantize(QTY, ROUND_HALF_UP)
    if price is not None:
        price = abs(price) if amount >= 0 else -abs(price)
        price = price.quantize(PRICE, ROUND_HALF_UP)
        if _rounds_to(qty, price, amount):
            return qty, price, amount, ""
    if qty == 0 and amount == 0:
        return qty, price or Decimal(0), amount, ""
    if qty != 0:
        derived = (amount / qty).quantize(PRICE, ROUND_HALF_UP)
        if _rounds_to(qty, derived, amount):
            return qty, derived, amount, ""
    shown = price if price is not None else \
        (amount / qty).quantize(PRICE, ROUND_HALF_UP) if qty else amount
    return Decimal(1), amount, amount, f"{_plain(qty)} \u00d7 {_plain(shown, 2)} "


def _rounds_to(qty: Decimal, price: Decimal, amount: Decimal) -> bool:
    return (qty * price).quantize(CENT, ROUND_HALF_UP) == amount


# ---- the document and its lines -----------------------------------------------------


@dataclass(frozen=True)
class _Doc:
    """The CW header in QuickBooks terms: which entity, and which way round the signs go."""

    number: str
    entity: str
    sign: int  # header amounts × sign; lines × -sign (GL lines carry the opposite sign)
    total: Decimal
    tax: Decimal
    taxable: bool


def _doc(source: Source) -> _Doc:
    tx = source.transaction
    raw_total = money(tx.get("total"))
    credit = raw_total < 0 or tx.get("billingType") == "CreditMemo" or \
        tx.get("documentType") == "CREDITMEMO" or \
        (source.invoice or {}).get("type") == "CreditMemo"
    sign = -1 if raw_total < 0 else 1  # a credit memo's amounts become positive (SPEC 7.5)
    tax = money(tx.get("salesTax")) * sign
    return _Doc(number=str(tx.get("documentNumber") or tx.get("id")),
                entity="CreditMemo" if credit else "Invoice", sign=sign,
                total=raw_total * sign, tax=tax,
                taxable=bool(tx.get("taxable")) or tax != 0)


def _posted(transaction: dict[str, Any], *, strict: bool = True
            ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(CW line number, line) of every sales line, in CW order."""
    for number, line in enumerate(transaction.get("detail") or [], 1):
        kind = line.get("glTypeId")
        if kind in POSTED_LINE_TYPES:
            yield number, line
        elif kind not in SKIPPED_LINE_TYPES and strict:
            raise BuildError(
                f"Invoice {transaction.get('documentNumber')} line {number} has GL type "
                f"'{kind}', which portal does not post.",
                "Check the ConnectWise GL mapping of this line, then re-open and re-close "
                "the invoice.")


def _lookup(table: Mapping[int, dict[str, Any]], key: Any) -> dict[str, Any] | None:
    """A record by id whether the caller keyed the mapping by int or by str."""
    if key is None or key == "":
        return None
    try:
        found = table.get(int(key))
    except (TypeError, ValueError):
        found = None
    return found if found is not None else table.get(key)


def _time_entry(source: Source, line: dict[str, Any]) -> dict[str, Any] | None:
    return _lookup(source.time_entries, (line.get("timeEntry") or {}).get("id"))


def _name_of(record: dict[str, Any] | None, key: str) -> str:
    return str(((record or {}).get(key) or {}).get("name") or "").strip()


@dataclass
class _Row:
    """One QuickBooks line: the CW lines it stands for and its amounts, before refs."""

    numbers: list[int]
    line: dict[str, Any]  # the first CW line: account, class, taxable flag, UOM
    entry: dict[str, Any] | None
    item: str
    qty: Decimal
    amount: Decimal
    price: Decimal | None


def _rows(source: Source, settings: CompanySettings, mapping: MappingSet, level: str,
          line_sign: int) -> list[_Row]:
    """The lines by summary level: Condensed merges a ticket's time lines (SPEC 7.3)."""
    rows: list[_Row] = []
    groups: dict[tuple[Any, ...], _Row] = {}
    for number, line in _posted(source.transaction):
        entry = _time_entry(source, line)
        item = item_name(line, entry, settings, mapping)
        qty = _dec(line.get("quantity")) * line_sign
        amount = money(line.get("total")) * line_sign
        if level == "Condensed" and entry is not None:
            key = (_ticket_key(entry), item, line.get("accountNumber"), line.get("glClass"),
                   bool(line.get("taxableFlag")))
            group = groups.get(key)
            if group is not None:
                group.numbers.append(number)
                group.qty += qty
                group.amount += amount
                continue
            groups[key] = row = _Row([number], line, entry, item, qty, amount, None)
        elif level == "Detailed" and entry is not None:
            hours = _dec(entry.get("hoursBilled")) if entry.get("hoursBilled") is not None \
                else qty
            rate = entry.get("hourlyRate")
            row = _Row([number], line, entry, item, hours.quantize(CENT, ROUND_HALF_UP),
                       amount, _dec(rate) if rate is not None else None)
        else:
            price = _dec(line["itemPrice"]) if line.get("itemPrice") is not None else None
            row = _Row([number], line, entry, item, qty, amount, price)
        rows.append(row)
    return rows


def _ticket_key(entry: dict[str, Any]) -> tuple[Any, Any]:
    ticket = entry.get("chargeToId") or (entry.get("ticket") or {}).get("id")
    return entry.get("chargeToType"), ticket


# ---- items --------------------------------------------------------------------------


def _product(line: dict[str, Any]) -> str | None:
    identifier = (line.get("item") or {}).get("identifier")
    return str(identifier) if identifier else None


def item_name(line: dict[str, Any], time_entry: dict[str, Any] | None,
              settings: CompanySettings, mapping: MappingSet) -> str:
    """The QuickBooks item of a line: its CW product, else the service item."""
    return _product(line) or service_item_name(line, time_entry, settings, mapping)


def service_item_name(line: dict[str, Any], time_entry: dict[str, Any] | None,
                      settings: CompanySettings, mapping: MappingSet) -> str:
    """Name the Service item of a line without a CW product (SPEC 7.2 table).

    The work role and type come from the time entry, so lines without one (agreements,
    down payments) take `fallback_item_name`. The GL sources use the leaf Name of the
    line's QuickBooks income account, which must resolve: the name depends on it.
    """
    source = settings.service_item_source
    if source in WORK_SOURCES:
        role = _name_of(time_entry, "workRole")
        kind = _name_of(time_entry, "workType")
        names = {"WorkRoleWorkType": f"{role}-{kind}" if role and kind else "",
                 "WorkRole": role, "WorkType": kind}
        return names[source] or settings.fallback_item_name
    account = str(line.get("accountNumber") or "")
    if not account:
        return settings.fallback_item_name
    leaf = _account(mapping, account).name
    return f"Service-{leaf}" if source == "ServiceGLAccount" else leaf


def _account(mapping: MappingSet, value: str) -> QboRef:
    found = mapping.account(value)
    if found.status not in RESOLVED or found.qbo_id is None:
        raise BuildError(found.message or f"GL account '{value}' does not resolve.",
                         found.hint)
    return mapping.index("Account").by_id[found.qbo_id]


def _product_fields(line: dict[str, Any], settings: CompanySettings) -> dict[str, Any]:
    """How a missing product is created (SPEC 5.2 item-type table)."""
    from portal.services import item_types

    xref = str(line.get("itemTypeXref") or "")
    kind, known_type = item_types.resolve(xref, settings)  # a saved row wins over defaults
    fields: dict[str, Any] = {
        "Type": kind, "income_account": line.get("accountNumber") or None,
        "cost_account": line.get("costAccountNumber") or None,
        "asset_account": line.get("inventoryAccountNumber") or None,
        "description": line.get("salesDescription")
        or (line.get("product") or {}).get("description") or line.get("description")}
    # SPEC 5.2 costing: without the line's account, the Inventory tab's (QuickBooks ids)
    if not fields["cost_account"] and settings.cogs_account:
        fields["cost_account_id"] = settings.cogs_account
    if not fields["asset_account"] and settings.inventory_asset_account:
        fields["asset_account_id"] = settings.inventory_asset_account
    if kind == "Inventory":
        fields["inventory_start_date"] = settings.inventory_start_date.isoformat()
    if not known_type:
        fields["warning"] = (f"Product type Xref '{xref}' of item '{_product(line)}' is "
                             "blank or unknown; it is created as NonInventory.")
    return fields


def _service_fields(line: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "Service", "income_account": line.get("accountNumber") or None,
            "cost_account": None, "asset_account": None, "description": None}


# ---- descriptions (SPEC 7.3) --------------------------------------------------------


def describe(line: dict[str, Any], settings: CompanySettings, *, level: str,
             time_entry: dict[str, Any] | None = None,
             tickets: Mapping[int, dict[str, Any]] | None = None, prefix: str = "") -> str:
    """The line Description: the text for the summary level, then " (UOM)", at most 4000.

    `prefix` is the "QTY × PRICE " of `line_amounts`, put before the text so the figures
    CW printed are not lost when QuickBooks gets Qty 1.
    """
    text = prefix + _body(line, level, time_entry, tickets or {})
    uom = _name_of(line, "unitOfMeasure")
    if settings.display_uom and uom:
        text += f" ({uom})"
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 1] + "\u2026"


def _body(line: dict[str, Any], level: str, entry: dict[str, Any] | None,
          tickets: Mapping[int, dict[str, Any]]) -> str:
    if _product(line):
        text = str(line.get("salesDescription")
                   or (line.get("product") or {}).get("description")
                   or line.get("description") or "")
        serials = line.get("serialNumbers")
        if isinstance(serials, (list, tuple)):
            serials = ", ".join(str(s) for s in serials if s)
        if level == "Detailed" and serials:
            text += f"\nSerial numbers: {serials}"
        return text
    if entry is not None and level == "Condensed":
        return _ticket_title(entry, tickets)
    if entry is not None and level == "Detailed":
        return _entry_text(entry, tickets)
    return str(line.get("description") or line.get("memo") or "")


def _ticket_of(entry: dict[str, Any], tickets: Mapping[int, dict[str, Any]]
               ) -> tuple[Any, dict[str, Any]]:
    ticket_id = entry.get("chargeToId") or (entry.get("ticket") or {}).get("id")
    return ticket_id, _lookup(tickets, ticket_id) or entry.get("ticket") or {}


def _ticket_title(entry: dict[str, Any], tickets: Mapping[int, dict[str, Any]]) -> str:
    """`Ticket #ID – SUMMARY`, or `Project NAME – PHASE` for project tickets."""
    ticket_id, ticket = _ticket_of(entry, tickets)
    project = _name_of(ticket, "project")
    if project:
        phase = _name_of(ticket, "phase")
        return f"Project {project} {DASH} {phase}" if phase else f"Project {project}"
    summary = str(ticket.get("summary") or (entry.get("ticket") or {}).get("summary") or "")
    return f"Ticket #{ticket_id} {DASH} {summary}" if summary else f"Ticket #{ticket_id}"


def _entry_text(entry: dict[str, Any], tickets: Mapping[int, dict[str, Any]]) -> str:
    ticket_id, ticket = _ticket_of(entry, tickets)
    member = entry.get("member") or {}
    resource = member.get("name") or " ".join(
        filter(None, [member.get("firstName"), member.get("lastName")]))
    labelled = (("Ticket #", ticket_id), ("Work role: ", _name_of(entry, "workRole")),
                ("Work type: ", _name_of(entry, "workType")), ("Resource: ", resource))
    parts = [f"{label}{value}" for label, value in labelled if value]
    parts += [str(ticket.get("summary") or "").strip(), str(entry.get("notes") or "").strip()]
    return "\n".join(part for part in parts if part)


# ---- references ---------------------------------------------------------------------


def _resolved(found: Resolution, what: str) -> str:
    """The QuickBooks id of a resolution, or the BuildError the engine shows."""
    if found.status in RESOLVED and found.qbo_id is not None:
        return found.qbo_id
    if found.status == "will_create":
        raise BuildError(f"{what} '{found.cw_value}' is not in QuickBooks yet.",
                         "Run the batch again; pre-flight creates missing references "
                         "first.")
    raise BuildError(found.message or f"{what} '{found.cw_value}' does not resolve.",
                     found.hint)


def _cw_currency(source: Source, facts: Facts) -> str:
    code = (source.transaction.get("currency") or {}).get("currencyCode")
    return str(code or facts.home_currency).strip()


def _customer_chain(source: Source, settings: CompanySettings, facts: Facts,
                    mapping: MappingSet) -> list[Resolution]:
    """Parents, then the leaf; a foreign-currency record may go to a suffixed twin
    (SPEC 4.7 `per_currency_customer_suffix`)."""
    tx = source.transaction
    chain = mapping.customer(str((tx.get("company") or {}).get("name") or ""),
                             str(tx.get("companyAccountNumber") or ""))
    leaf = chain[-1]
    currency = settings.currency_for(_cw_currency(source, facts))
    suffix = settings.per_currency_customer_suffix
    if facts.multicurrency and suffix and leaf.status in RESOLVED and \
            _customer_currency(mapping, leaf) not in (None, currency):
        twin = leaf.cw_value + suffix.replace("{code}", currency)
        chain = [*chain[:-1], mapping.resolve(
            "customer", twin, creatable=mapping.prefs.create_customers)]
    return chain


def _customer_currency(mapping: MappingSet, found: Resolution) -> str | None:
    ref = mapping.index("Customer").by_id.get(found.qbo_id or "")
    return ref.currency if ref is not None else None


def _terms(transaction: dict[str, Any]) -> str | None:
    value = transaction.get("billingTermsXref") or \
        (transaction.get("billingTerms") or {}).get("name")
    return str(value) if value else None


def _location_value(transaction: dict[str, Any], settings: CompanySettings) -> str | None:
    key = "glClass" if settings.location_source == "Class" else "salesTerritory"
    value = transaction.get(key)
    return str(value) if value else None


def _levels(value: str) -> list[str]:
    """`A:B:C` as `A`, `A:B`, `A:B:C`: parents are created first."""
    parts = value.split(":")
    return [":".join(parts[:n]) for n in range(1, len(parts) + 1)]


def needs(source: Source, settings: CompanySettings, facts: Facts,
          mapping: MappingSet) -> list[Need]:
    """The references to create before `build()` can succeed, parents first, each once.

    Only values resolving as "will_create" are listed; blocking problems (near-misses,
    missing GL accounts, parents that are never created) are pre-flight's to report.
    """
    found: dict[tuple[str, str], Need] = {}

    def add(kind: str, resolution: Resolution, fields: dict[str, Any]) -> None:
        if resolution.status == "will_create":
            found.setdefault((kind, resolution.cw_value),
                             Need(kind, resolution.cw_value, fields))

    tx = source.transaction
    leaf = _customer_chain(source, settings, facts, mapping)[-1]
    add("customer", leaf, _customer_fields(source, settings, facts, leaf.cw_value))
    terms = _terms(tx)
    if terms:
        add("term", mapping.term(terms), {"DueDays": _due_days(tx.get("dueDays"))})
    if settings.use_locations and _location_value(tx, settings):
        for value in _levels(str(_location_value(tx, settings))):
            add("location", mapping.location(value), {"parent": _parent(value)})
    lines = [line for _, line in _posted(tx, strict=False)]
    if settings.use_classes:
        for name in dict.fromkeys(str(ln["glClass"]) for ln in lines if ln.get("glClass")):
            for value in _levels(name):
                add("class", mapping.klass(value), {"parent": _parent(value)})
    for line in lines:
        _line_needs(source, line, settings, mapping, add)
    return list(found.values())


_Add = Callable[[str, Resolution, dict[str, Any]], None]


def _line_needs(source: Source, line: dict[str, Any], settings: CompanySettings,
                mapping: MappingSet, add: _Add) -> None:
    """The product (and its categories) or the service item of one line."""
    product = _product(line)
    if product:
        parents = _levels(product)[:-1] if settings.create_product_categories else []
        for value in parents:
            add("item", mapping.item(value), {"Type": "Category", "parent": _parent(value)})
        add("item", mapping.item(product), _product_fields(line, settings))
        return
    try:
        name = service_item_name(line, _time_entry(source, line), settings, mapping)
    except BuildError:
        return  # the GL account is missing: pre-flight reports it
    add("item", mapping.item(name), _service_fields(line))


def _parent(value: str) -> str | None:
    return value.rpartition(":")[0] or None


def _due_days(value: Any) -> Any:
    """Whole due days as int; anything else as CW sent it, for pre-flight to refuse."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value
    return int(number) if number == number.to_integral_value() else value


def _customer_fields(source: Source, settings: CompanySettings, facts: Facts,
                     full_name: str) -> dict[str, Any]:
    """What a new customer gets (SPEC 7.2 step 2); contact details are the engine's."""
    tx = source.transaction
    company = tx.get("company") or {}
    name = str(company.get("name") or "")
    account_id = str(tx.get("companyAccountNumber") or "")
    currency = settings.currency_for(_cw_currency(source, facts))
    return {"DisplayName": full_name.split(":")[-1],
            "CompanyName": account_id if settings.append_account_name else
            name.split(":")[-1],
            "currency": currency if currency != facts.home_currency else None,
            "term": _terms(tx), "cw_company_id": company.get("id"),
            "cw_identifier": company.get("identifier"), "parent": _parent(name)}


# ---- build context ------------------------------------------------------------------


@dataclass
class _Ctx:
    """Everything one build reads, and the warnings it collects."""

    source: Source
    settings: CompanySettings
    facts: Facts
    mapping: MappingSet
    doc: _Doc
    level: str
    warnings: list[str] = field(default_factory=list)

    @property
    def tx(self) -> dict[str, Any]:
        return self.source.transaction


# ---- tax (SPEC 7.4) -----------------------------------------------------------------


@dataclass(frozen=True)
class _Tax:
    """How lines and header carry tax for this company and invoice."""

    mode: str  # off | us | non_us
    header: dict[str, Any] | None = None  # TxnTaxDetail
    taxable_code: str | None = None  # non-US line codes
    exempt_code: str | None = None


def _tax(ctx: _Ctx) -> _Tax:
    """SPEC 7.4's table, row by row: sales tax off, US AST, US manual, non-US."""
    doc, facts = ctx.doc, ctx.facts
    if not facts.using_sales_tax:
        if doc.tax != 0:
            raise BuildError(f"ConnectWise charged tax on invoice {doc.number}, but sales "
                             "tax is off in QuickBooks.",
                             "Turn on sales tax in QuickBooks, or remove the tax in "
                             "ConnectWise.")
        return _Tax("off")
    if facts.is_us and facts.ast_enabled:
        if doc.tax != 0 and _address(ctx.source.invoice, "shippingSite") is None:
            ctx.warnings.append(f"No ship-to address: QuickBooks will tax invoice "
                                f"{doc.number} at your business address.")
        return _Tax("us", {"TotalTax": doc.tax})
    if facts.is_us:
        code = _us_code(ctx)
        header: dict[str, Any] = {"TxnTaxCodeRef": {"value": code}} if code else {}
        return _Tax("us", {**header, "TotalTax": doc.tax})
    return _non_us_tax(ctx)


def _us_code(ctx: _Ctx) -> str | None:
    """The taxable invoice's mapped code; else the exempt code; else the CW one if any."""
    if ctx.doc.taxable:
        return _require_tax_code(ctx).qbo_id
    if ctx.settings.exempt_tax_code:
        return ctx.settings.exempt_tax_code
    found = _find_tax_code(ctx)
    return found.qbo_id if found is not None else None


def _non_us_tax(ctx: _Ctx) -> _Tax:
    """Every line names a code; CW's levels become the code's rates, in order."""
    doc = ctx.doc
    code = _require_tax_code(ctx) if doc.taxable else _find_tax_code(ctx)
    exempt = ctx.settings.exempt_tax_code or (
        code.qbo_id if code is not None and not doc.taxable else None)
    header: dict[str, Any] = {"TotalTax": doc.tax}
    if doc.taxable and code is not None:
        header["TaxLine"] = _tax_lines(ctx, code)
    return _Tax("non_us", header, code.qbo_id if code and doc.taxable else None, exempt)


def _cw_tax_code(ctx: _Ctx) -> str:
    return str((ctx.tx.get("taxCode") or {}).get("name") or "")


def _find_tax_code(ctx: _Ctx) -> QboRef | None:
    """The QuickBooks TaxCode of the CW code: the mapping row, else its level-1 Xref."""
    cw_code = _cw_tax_code(ctx)
    codes = ctx.mapping.index("TaxCode")
    for row in ctx.settings.tax_code_mappings:
        if row.cw_tax_code == cw_code:
            ref = codes.by_id.get(row.qbo_tax_code_id)
            if ref is None or not ref.active:
                raise BuildError(f"Tax mapping {cw_code} points to QuickBooks tax code Id "
                                 f"{row.qbo_tax_code_id}, which is inactive or not in the "
                                 "reference data.",
                                 "Refresh the reference data, or choose another code in "
                                 "Taxes › Tax code mappings.")
            return ref
    xref = _level_one_xref(ctx.tx)
    if ctx.settings.unmapped_tax_codes == "UseCwXref" and xref:
        return codes.exact.get(xref)
    return None


def _require_tax_code(ctx: _Ctx) -> QboRef:
    found = _find_tax_code(ctx)
    if found is not None:
        return found
    raise BuildError(f"ConnectWise tax code '{_cw_tax_code(ctx)}' on invoice "
                     f"{ctx.doc.number} is not mapped, and its Xref "
                     f"'{_level_one_xref(ctx.tx)}' matches no QuickBooks tax code.",
                     "Add a row in Taxes › Tax code mappings.")


def _ordered_levels(transaction: dict[str, Any]) -> list[dict[str, Any]]:
    levels = transaction.get("taxLevels") or []
    return sorted(levels, key=lambda level: int(level.get("taxLevel") or 0))


def _level_one_xref(transaction: dict[str, Any]) -> str:
    levels = _ordered_levels(transaction)
    return str(levels[0].get("taxCodeXref") or "") if levels else ""


def _tax_lines(ctx: _Ctx, code: QboRef) -> list[dict[str, Any]]:
    """CW level i → the i-th sales rate of the mapped code, with CW's amounts (4.6)."""
    cw_code = _cw_tax_code(ctx)
    levels = _ordered_levels(ctx.tx)
    rate_ids = [str(r) for r in (code.extra or {}).get("sales_rate_ids") or []]
    if len(levels) != len(rate_ids):
        raise BuildError(f"Tax mapping {cw_code} → {code.name}: ConnectWise code {cw_code} "
                         f"has {len(levels)} levels but QuickBooks code {code.name} has "
                         f"{len(rate_ids)} rates.",
                         "Make the level counts agree (edit the CW tax code or choose "
                         "another QuickBooks code), and set each CW level's Agency Xref.")
    rates = ctx.mapping.index("TaxRate").by_id
    lines = []
    for level, rate_id in zip(levels, rate_ids, strict=True):
        detail: dict[str, Any] = {
            "TaxRateRef": {"value": rate_id}, "PercentBased": True,
            "NetAmountTaxable": money(level.get("taxableAmount")) * ctx.doc.sign}
        rate = rates.get(rate_id)
        percent = (rate.extra or {}).get("rate") if rate is not None else None
        if percent not in (None, ""):
            detail["TaxPercent"] = _dec(percent)
        lines.append({"DetailType": "TaxLineDetail",
                      "Amount": money(level.get("taxAmount")) * ctx.doc.sign,
                      "TaxLineDetail": detail})
    return lines


def _line_tax_code(ctx: _Ctx, tax: _Tax, row: _Row) -> dict[str, str] | None:
    """US: TAX or NON from the CW flag. Non-US: the code, or the exempt one."""
    taxable = bool(row.line.get("taxableFlag"))
    if tax.mode == "us":
        return {"value": "TAX" if taxable else "NON"}
    if tax.mode != "non_us":
        return None
    exempt_items = set(ctx.settings.tax_exempt_items)
    product_id = str((row.line.get("item") or {}).get("id") or "")
    exempt = not (taxable and ctx.doc.taxable) or row.item in exempt_items or \
        product_id in exempt_items
    code = tax.exempt_code if exempt else tax.taxable_code
    if code is None:
        raise BuildError(f"Invoice {ctx.doc.number} line {row.numbers[0]} is not taxable, "
                         "but no exempt tax code is set.",
                         "Choose the exempt tax code on the Taxes tab.")
    return {"value": code}


# ---- the header ---------------------------------------------------------------------

ADDRESS_FIELDS = (("Line1", "AddressLine1"), ("Line2", "AddressLine2"), ("City", "City"),
                  ("CountrySubDivisionCode", "State"), ("PostalCode", "Zip"),
                  ("Country", "Country"))


def _address(invoice: dict[str, Any] | None, prefix: str) -> dict[str, str] | None:
    """BillAddr or ShipAddr from the CW invoice's site fields (None when all blank)."""
    found: dict[str, str] = {}
    for qbo, cw in ADDRESS_FIELDS:
        value = (invoice or {}).get(prefix + cw)
        if isinstance(value, dict):  # a reference rather than text
            value = value.get("identifier") or value.get("name")
        if value not in (None, ""):
            found[qbo] = str(value)
    return found or None


def _header(ctx: _Ctx, request_token: str) -> dict[str, Any]:
    """DocNumber, dates, customer, terms, note and currency (SPEC 7.2 steps 2-5)."""
    doc, tx = ctx.doc, ctx.tx
    doc_number = ctx.settings.doc_number_prefix + doc.number
    if len(doc_number) > MAX_DOC_NUMBER:
        raise BuildError(f"DocNumber '{doc_number}' is {len(doc_number)} characters; "
                         "QuickBooks allows 21.", "Shorten the DocNumber prefix.")
    chain = _customer_chain(ctx.source, ctx.settings, ctx.facts, ctx.mapping)
    customer = [_resolved(found, "Customer") for found in chain][-1]
    header: dict[str, Any] = {
        "DocNumber": doc_number, "CustomerRef": {"value": customer},
        "PrivateNote": f"ConnectWise invoice {doc.number} \u00b7 portal:{request_token}"}
    if tx.get("documentDate"):
        header["TxnDate"] = str(tx["documentDate"])[:10]
    if doc.entity == "Invoice" and tx.get("dueDate"):
        header["DueDate"] = str(tx["dueDate"])[:10]
    terms = _terms(tx)
    if terms:
        header["SalesTermRef"] = {"value": _resolved(ctx.mapping.term(terms), "Sales term")}
    header.update(_currency(ctx, customer))
    return header


def _currency(ctx: _Ctx, customer_id: str) -> dict[str, Any]:
    """CurrencyRef under multicurrency; a foreign record without it is refused (4.7)."""
    facts = ctx.facts
    cw = _cw_currency(ctx.source, facts)
    currency = ctx.settings.currency_for(cw) if facts.multicurrency else cw
    if not facts.multicurrency:  # mapping rows apply only with multicurrency on (4.7)
        if currency != facts.home_currency:
            raise BuildError(f"Invoice {ctx.doc.number} is in {cw} but QuickBooks company "
                             f"{facts.name} has multicurrency off.",
                             "Turn on multicurrency in QuickBooks, or invoice this customer "
                             f"in {facts.home_currency}.")
        return {}
    ref = ctx.mapping.index("Customer").by_id.get(customer_id)
    if ref is not None and ref.currency and ref.currency != currency:
        raise BuildError(f"Customer '{ref.fully_qualified_name or ref.name}' uses "
                         f"{ref.currency} in QuickBooks; invoice {ctx.doc.number} is in "
                         f"{currency}.",
                         "Set the per-currency customer suffix, or fix the CW currency.")
    return {"CurrencyRef": {"value": currency}}


def _extras(ctx: _Ctx) -> dict[str, Any]:
    """Location, addresses, memo, e-payment flags and email (SPEC 7.2 step 7)."""
    settings, invoice = ctx.settings, ctx.source.invoice
    out: dict[str, Any] = {}
    location = _location_value(ctx.tx, settings)
    if settings.use_locations and location:
        out["DepartmentRef"] = {"value": _resolved(ctx.mapping.location(location),
                                                   "Location")}
    for key, prefix in (("BillAddr", "billingSite"), ("ShipAddr", "shippingSite")):
        address = _address(invoice, prefix)
        if address:
            out[key] = address
    po = (invoice or {}).get("customerPO")
    if settings.copy_customer_po and po:
        out["CustomerMemo"] = {"value": f"PO {po}"}
    if settings.allow_epayments and ctx.doc.entity == "Invoice":
        out["AllowOnlineCreditCardPayment"] = bool(settings.allow_card_payments)
        out["AllowOnlineACHPayment"] = bool(settings.allow_ach_payments)
    if ctx.source.bill_email:
        out["BillEmail"] = {"Address": ctx.source.bill_email}
    return out


# ---- lines --------------------------------------------------------------------------


def _classes(ctx: _Ctx, rows: list[_Row]) -> tuple[list[str | None], str | None]:
    """Per-line class ids, or the one header class when QuickBooks tracks per txn."""
    if not ctx.settings.use_classes:
        return [None] * len(rows), None
    names = [str(row.line.get("glClass") or "") or None for row in rows]
    if ctx.facts.class_tracking == "txn":
        distinct = sorted({name for name in names if name})
        if len(distinct) > 1:
            raise BuildError(
                f"QuickBooks allows one class per transaction, but invoice "
                f"{ctx.doc.number} has lines in classes {', '.join(distinct[:-1])} and "
                f"{distinct[-1]}.",
                "Turn on class per line in QuickBooks or give the lines one class in "
                "ConnectWise.")
        header = _resolved(ctx.mapping.klass(distinct[0]), "Class") if distinct else None
        return [None] * len(rows), header
    ids = {name: _resolved(ctx.mapping.klass(name), "Class") for name in set(names)
           if name}
    return [ids[name] if name else None for name in names], None


def _check_binding(ctx: _Ctx, row: _Row, item_id: str) -> None:
    """A QuickBooks item keeps its income account (SPEC 4.2 `item_account_mismatch`)."""
    item = ctx.mapping.index("Item").by_id.get(item_id)
    bound = (item.extra or {}).get("IncomeAccountRef") if item is not None else None
    account = str(row.line.get("accountNumber") or "")
    if not bound or not account:
        return
    found = ctx.mapping.account(account)
    if found.status not in RESOLVED or found.qbo_id == bound:
        return
    bound_ref = ctx.mapping.index("Account").by_id.get(bound)
    bound_name = (bound_ref.fully_qualified_name or bound_ref.name) if bound_ref else bound
    message = (f"Item '{row.item}' posts to '{bound_name}' in QuickBooks, but invoice "
               f"{ctx.doc.number} line {row.numbers[0]} maps to '{account}'.")
    if ctx.settings.item_account_mismatch == "UseItemAccount":
        ctx.warnings.append(message)
        return
    raise BuildError(message, "Map each product to one GL account in ConnectWise, change "
                              "the item's account in QuickBooks, or set Item account "
                              "mismatch to Use the item's account.")


def _line(ctx: _Ctx, tax: _Tax, row: _Row, class_id: str | None) -> dict[str, Any]:
    item_id = _resolved(ctx.mapping.item(row.item), "Item")
    _check_binding(ctx, row, item_id)
    qty, price, amount, prefix = line_amounts(row.qty, row.amount, row.price)
    detail: dict[str, Any] = {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": price}
    code = _line_tax_code(ctx, tax, row)
    if code is not None:
        detail["TaxCodeRef"] = code
    if class_id is not None:
        detail["ClassRef"] = {"value": class_id}
    text = describe(row.line, ctx.settings, level=ctx.level, time_entry=row.entry,
                    tickets=ctx.source.tickets, prefix=prefix)
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "Description": text,
            "SalesItemLineDetail": detail}


# ---- build --------------------------------------------------------------------------


def build(source: Source, settings: CompanySettings, facts: Facts, mapping: MappingSet,
          *, request_token: str, summary_level: str) -> Built:
    """Build the QuickBooks body of one CW invoice (SPEC 7.2-7.5).

    Raises BuildError when a reference does not resolve or a rule refuses the document;
    pre-flight reports the same problems first, so here it is a safety net. The work
    role and work type item sources force Detailed, as the selection screen does.
    """
    level = "Detailed" if settings.service_item_source in WORK_SOURCES else summary_level
    ctx = _Ctx(source, settings, facts, mapping, _doc(source), level)
    payload = _header(ctx, request_token)
    rows = _rows(source, settings, mapping, level, -ctx.doc.sign)
    if not rows:  # QuickBooks needs at least one line
        raise BuildError(f"Invoice {ctx.doc.number} has no sales lines in its GL entries.",
                         "Re-open and re-close the invoice in ConnectWise so it rebuilds "
                         "its GL entries.")
    tax = _tax(ctx)
    class_ids, header_class = _classes(ctx, rows)
    lines = [_line(ctx, tax, row, class_id)
             for row, class_id in zip(rows, class_ids, strict=True)]
    payload["Line"] = lines
    if header_class is not None:
        payload["ClassRef"] = {"value": header_class}
    if tax.header is not None:
        payload["TxnTaxDetail"] = tax.header
    if tax.mode == "non_us":
        payload["GlobalTaxCalculation"] = "TaxExcluded"
    payload.update(_extras(ctx))
    _check_total(ctx, lines)
    return Built(entity=ctx.doc.entity, doc_number=payload["DocNumber"],
                 payload=_jsonable(payload), cw_total=ctx.doc.total, cw_tax=ctx.doc.tax,
                 warnings=ctx.warnings, zero=ctx.doc.total == 0)


def _check_total(ctx: _Ctx, lines: list[dict[str, Any]]) -> None:
    """SPEC 5.6 check 9 again: QuickBooks adds lines and tax, which must give CW's total."""
    subtotal = sum((line["Amount"] for line in lines), Decimal(0))
    if subtotal + ctx.doc.tax != ctx.doc.total:
        ctx.warnings.append(f"Invoice {ctx.doc.number}: lines {subtotal} plus tax "
                            f"{ctx.doc.tax} do not make the ConnectWise total "
                            f"{ctx.doc.total}.")


def _jsonable(value: Any) -> Any:
    """The one place Decimal becomes float, so the payload goes through json.dumps."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


# ---- pre-flight ---------------------------------------------------------------------


def preview(source: Source, settings: CompanySettings, facts: Facts, mapping: MappingSet,
            *, summary_level: str, request_token: str = "0" * 32) -> Built:
    """The document as it will be once pre-flight has created the missing references
    (they stand in as `new:<kind>:<name>`, see `types.base.fill_in`)."""
    return build(source, settings, facts, base.stand_ins(mapping),
                 request_token=request_token, summary_level=summary_level)
