"""The record-type interface: everything the engine must know about one kind of ConnectWise
record (invoices; expenses and procurement next), and nothing about the run.

A type lists the unposted records, reads a window of them from ConnectWise, checks each,
says which QuickBooks references it needs, builds its document (or says there is nothing to
post), names the DocNumber to keep unique and how to find the document again, and names its
ConnectWise accounting batch. The engine (claim, windows, states, posting, lookups, marking,
colours, progress) imports this module and never a concrete type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from portal.models import BatchType
from portal.services.company_settings import CompanySettings
from portal.services.mapping import MappingSet, Problem


class BuildError(Exception):
    """A document that cannot be built as it stands; `hint` says what fixes it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Record:
    """One ConnectWise record: a row of the selection grid, or what a batch item holds."""

    key: str  # record_key: "inv:{invoice id}", "exp:{member}:{min GL entry id}", …
    cw_id: int | None  # the id the export, the links and the accounting entries use
    number: str  # what people call it: the invoice number, "E<id>", the PO number
    day: date | None
    kind: str  # Standard, CreditMemo, Reimbursable, Purchase, …
    party: str  # customer, member or vendor
    total: Decimal
    currency: str = ""
    unposted_id: int | None = None
    location_id: int | None = None
    location: str = ""
    generation: int = 1
    earlier_qbo_id: str | None = None  # the unbatched generation's document (SPEC 11.3)
    gl_entry_ids: tuple[int, ...] = ()
    source_refs: tuple[str, ...] = ()
    # shown on the selection screen only (never stored): the document the record will
    # become, the lines it groups, and why the type holds it back (greyed, not selectable)
    target: str = ""
    lines: tuple[str, ...] = ()
    held: str | None = None

    @property
    def record_key(self) -> str:
        return self.key


@dataclass(frozen=True)
class Filters:
    """What the selection screen (or AutoSync) asks ConnectWise for."""

    location_ids: tuple[int, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    settings: CompanySettings | None = None  # for types whose records depend on them
    mapping: MappingSet | None = None  # to say what each record becomes (shown only)


@dataclass(frozen=True)
class CompanyFacts:
    """What the QuickBooks company is (SPEC 3.8), copied off the Company row, so checks and
    builders read no database."""

    id: int
    name: str
    is_us: bool
    ast_enabled: bool
    using_sales_tax: bool
    class_tracking: str  # none | line | txn
    multicurrency: bool
    home_currency: str
    custom_txn_numbers: bool
    book_close_date: date | None
    track_locations: bool

    @classmethod
    def of(cls, company: Any) -> CompanyFacts:
        return cls(id=company.id, name=company.qbo_name, is_us=bool(company.is_us),
                   ast_enabled=bool(company.ast_enabled),
                   using_sales_tax=bool(company.using_sales_tax),
                   class_tracking=company.class_tracking or "none",
                   multicurrency=bool(company.multicurrency),
                   home_currency=company.home_currency or "USD",
                   custom_txn_numbers=bool(company.custom_txn_numbers),
                   book_close_date=company.book_close_date,
                   track_locations=bool(company.track_locations))


class Memory:
    """Facts a record type keeps about ConnectWise records once it has seen them (the first
    value kept stays). This default remembers nothing, so a type that asks gets None and
    works from what ConnectWise says now."""

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        return {}

    def keep(self, key: str, value: str) -> None:
        return None

    def save(self, session: Any) -> None:
        """Write what was kept, with the run's own commit."""
        return None


@dataclass
class Context:
    """What every check and build of one run reads: no I/O behind it (`memory` is read
    once per window and written with the run's own commit)."""

    company: CompanyFacts
    settings: CompanySettings
    mapping: MappingSet
    options: dict[str, Any] = field(default_factory=dict)  # the batch's options (summary…)
    memory: Memory = field(default_factory=Memory)


@dataclass(frozen=True)
class Need:
    """A QuickBooks reference to create before a document is posted."""

    kind: str  # customer | vendor | item | term | class | location
    name: str  # the exact name or FullyQualifiedName the MappingSet resolves
    fields: dict[str, Any]


@dataclass
class Built:
    """A record's QuickBooks document, or nothing to post (`entity` None: mark only)."""

    entity: str | None  # Invoice, CreditMemo, Bill, … ; None: marked without a document
    doc_number: str | None
    payload: dict[str, Any] | None
    cw_total: Decimal  # in the document's sign (a credit memo's is positive)
    cw_tax: Decimal | None
    warnings: list[str] = field(default_factory=list)
    note: str | None = None  # why nothing is posted ("zero invoice, not posted")
    cw_signed: Decimal | None = None  # ConnectWise's own total, sign included (shown)
    skip: str | None = None  # deliberately not processed (left unposted), with the reason


@dataclass(frozen=True)
class Planned:
    """The document a record will become, as far as DocNumber uniqueness goes."""

    entity: str  # QuickBooks checks numbers per transaction type
    doc_number: str
    candidates: tuple[str, ...] = ()  # further numbers the type may settle on (its
    # `judge_numbers` chooses among them; without that method only `doc_number` counts)


class Window(Protocol):
    """A type's ConnectWise data for some records (opaque to the engine)."""


class RecordType(Protocol):
    kind: BatchType
    noun: str  # "invoice": used in messages ("invoice 10042")
    letter: str  # accounting batch identifier letter (SPEC 6.4)
    export_flag: str  # exportInvoicesFlag, exportExpensesFlag, exportProductsFlag
    entry_field: str  # the field of an accounting batch entry naming the record

    def label(self, record: Record) -> str: ...

    def list_unposted(self, cw: Any, filters: Filters) -> list[Record]: ...

    def read(self, cw: Any, records: Sequence[Record], ctx: Context) -> Window: ...

    def gl_entry_ids(self, window: Window, record: Record) -> list[int] | None:
        """The record's GL entry ids, or None when the export does not hold it."""
        ...

    def evaluate(self, window: Window, record: Record, ctx: Context,
                 request_token: str) -> tuple[list[Problem], Built | None]:
        """Every problem that stops this record (SPEC 5.6 checks 3-9), writing nothing;
        without problems, its document built on `stand_ins(ctx.mapping)` (references
        pre-flight would create stand in as `new:<kind>:<name>`, see `fill_in`)."""
        ...

    def needs(self, window: Window, record: Record, ctx: Context) -> list[Need]: ...

    def values(self, window: Window, record: Record, ctx: Context) -> list[Any]:
        """Every mapping resolution the record uses, blocking or not (the editor's rows)."""
        ...


    def planned(self, record: Record, ctx: Context, window: Window | None = None
                ) -> Planned | None:
        """The DocNumber to keep unique, from the listing when it is known there (so the
        check can run before ConnectWise is read), else from the window; None: none.
        A type may also offer `candidates(record, ctx) -> list[Planned]`: the documents a
        record not planned from the listing may become, asked about in the same round."""
        ...

    def identifier(self, record: Record, day: date) -> str:
        """The accounting batch identifier without the -r<g> and -N suffixes."""
        ...

    def entry_id(self, record: Record) -> Any:
        """The id every entry of the record's accounting batch references (a frozenset
        for a record grouping several: each entry references one of them)."""
        ...

    # Optional, with defaults the engine and pre-flight apply when a type lacks them:
    #   entry_field_of(record) -> str: the entry field naming this record (default
    #     `entry_field`), for types whose records are of several kinds;
    #   marks_by_entry_ids: bool: a batch is the record's only when its entries are
    #     exactly the record's GL entries (records that share a reference, default False);
    #   judge_numbers(order, plans, holders, earlier, labels, records, ctx) ->
    #     (chosen numbers, problems) by record key: the type's own DocNumber rule in place
    #     of "any other holder is an error".
    #
    # Optional (looked up with getattr; a type without it gets the default):
    #
    # def unbatch_record(self, cw, record: Record) -> bool:
    #     Take this one record out of a ConnectWise accounting batch that also holds other
    #     records (SPEC 11.2; procurement: POST /procurement/purchaseorders/{id}/unbatch),
    #     True when done. Without it, unbatching such a batch is refused ("also holds other
    #     records; unbatch it in ConnectWise").
    #
    # Unbatch, re-batch, clearing and validation (services/unbatch.py, rebatch.py,
    # clearing.py, validation.py) need nothing else: QuickBooks' void/delete rules are per
    # entity (unbatch.RULES: Invoice, CreditMemo, Bill, VendorCredit, Purchase,
    # JournalEntry), the accounting batch is the one marking made (`entry_field`,
    # `entry_id`), clearing lists with `list_unposted`, reads GL entry ids with `read` and
    # `gl_entry_ids`, and names its batches with `letter` and `export_flag`.


def period_problem(label: str, day: date | None, ctx: Context) -> Problem | None:
    """SPEC 5.6 check 6: nothing is posted on or before QuickBooks' closing date."""
    closed = ctx.company.book_close_date
    if closed and day and day <= closed:
        return Problem(label, "error",
                       f"QuickBooks books are closed through {closed}; {label} is dated "
                       f"{day}. Move the closing date in QuickBooks or change the date in "
                       "ConnectWise.", "Move the closing date or the ConnectWise date.")
    return None


# ---- references that do not exist yet ---------------------------------------------------------

STAND_IN = "new:"


class _StandIns(MappingSet):
    """The mapping as it will be once pre-flight has created the missing references."""

    def resolve(self, kind: str, value: str, **options: Any) -> Any:
        found = super().resolve(kind, value, **options)
        if found.status == "will_create":
            return replace(found, status="exact", qbo_id=f"{STAND_IN}{kind}:{value}")
        return found


def stand_ins(mapping: MappingSet) -> MappingSet:
    """`mapping`, where a reference that would be created resolves to `new:<kind>:<name>`:
    a document built on it is the document as it will be, and `fill_in` completes it once
    the references exist, without reading ConnectWise again."""
    standing = _StandIns.__new__(_StandIns)
    standing.__dict__.update(mapping.__dict__)
    return standing


class Unfilled(BuildError):
    """A stand-in whose reference does not exist in QuickBooks (yet)."""


def fill_in(value: Any, mapping: MappingSet) -> Any:
    """A copy of `value` (a payload) with every `new:<kind>:<name>` replaced by the id the
    reference has now; Unfilled names one that still does not resolve."""
    if isinstance(value, dict):
        return {key: fill_in(item, mapping) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_in(item, mapping) for item in value]
    if isinstance(value, str) and value.startswith(STAND_IN):
        kind, _, name = value[len(STAND_IN):].partition(":")
        found = mapping.resolve(kind, name)
        if found.status not in ("exact", "override") or found.qbo_id is None:
            raise Unfilled(f"The {kind} '{name}' was not created in QuickBooks.",
                           "Retry the batch: it creates missing references first.")
        return found.qbo_id
    return value
