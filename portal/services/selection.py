"""The selection screen's state: what the form asked (in the URL), the unposted records of
one record type ConnectWise lists for it, their flags, and which are selected.

Every built record type gets the screen; what differs between them (the summary level, a
filter by member, the words) is one row of `SCREENS`, and the records come from the type.

The selection travels in the URL: the checked boxes of the page shown, plus one compact
field (`21-40,42`) for the other pages, so a large selection still fits a request line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from portal import clients
from portal.integrations.errors import IntegrationError
from portal.models import BatchType, Company, CompanyStatus, CwRef
from portal.services import batches, date_range, rebatch
from portal.services.batching.engine import prefs_of
from portal.services.batching.memory import StoredMemory
from portal.services.batching.preflight import (
    CacheState,
    Checked,
    Preflight,
    Report,
    cache_state,
    evaluate,
)
from portal.services.batching.preview import DocumentView, describe
from portal.services.batching.types import procurement, record_type
from portal.services.batching.types.base import CompanyFacts, Context, Filters, Record
from portal.services.company_settings import CompanySettings, get_settings, named
from portal.services.mapping import MappingSet
from portal.services.sorting import Sort

PER_PAGE = 100
LOCKED_SOURCES = {"WorkRoleWorkType": "Work role and work type",
                  "WorkRole": "Work role", "WorkType": "Work type"}


class UnknownCompany(LookupError):
    """The form names a company that is not connected."""


@dataclass(frozen=True)
class Screen:
    """What differs between the selection screens of the record types."""

    slug: str  # the URL's /batches/new/<slug>
    kind: BatchType
    title: str  # "Invoices"
    noun: str  # one record: "invoice", "expense group"
    nouns: str  # several: "invoices"
    party: str  # the grid's party column: Company, Member, Vendor
    date_label: str  # the date filter's label
    summary: bool = False  # the summary level filter (SPEC 6.1: invoices only)
    party_filter: bool = False  # filter by party (SPEC 8.1: expenses by member)
    target: bool = False  # show the document type each record becomes
    # records the type holds back, by flag: what the screen says about them
    held: dict[str, str] = field(default_factory=dict)
    help: str = ""  # a partial with what the person must know before posting, if any

    @property
    def element(self) -> str:
        """The id prefix of the screen's elements (#invoice-selection, #invoice-grid)."""
        return self.kind.value


SCREENS = {
    "invoices": Screen("invoices", BatchType.INVOICE, "Invoices", "invoice", "invoices",
                       "Company", "Invoice date", summary=True),
    "expenses": Screen("expenses", BatchType.EXPENSE, "Expenses", "expense group",
                       "expense groups", "Member", "Expense date", party_filter=True,
                       target=True, held={
                           "unapproved": "{n} expenses skipped: not approved. Approve them "
                                         "in ConnectWise, or turn on “Sync unapproved "
                                         "expenses” (Purchases tab).",
                           "personal, skipped": "{n} personal expenses skipped (“Personal "
                                                "expenses” is Skip on the Purchases tab)."}),
    "inventory": Screen("inventory", BatchType.INVENTORY, "Inventory", "procurement record",
                        "procurement records", "Vendor", "Date closed", target=True,
                        held={procurement.SKIPPED: "{n} adjustments and transfers left "
                                                 "unposted (“Adjustments and transfers” is "
                                                 "Skip on the Inventory tab)."},
                        help="batches/_inventory_help.html"),
}


def screen(slug: str) -> Screen | None:
    """The screen of a batch kind whose record type is built; None for the others."""
    found = SCREENS.get(slug)
    if found is None:
        return None
    try:
        record_type(found.kind)
    except KeyError:
        return None
    return found


@dataclass(frozen=True)
class Form:
    """What the person asked: filters, the selection, and the grid button pressed."""

    company_id: int | None = None
    filtered: bool = False
    locations: tuple[int, ...] = ()
    parties: tuple[str, ...] = ()
    summary: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    asked: frozenset[int] = frozenset()
    act: str = ""
    at: int = 1
    page: int | None = None
    date_errors: dict[str, str] = field(default_factory=dict)  # "from"/"to" -> message
    sort: str = ""  # the grid's order (sorting.Sort), kept by every button
    order: str = ""  # a header just clicked: this order, from page 1

    @classmethod
    def of(cls, values: MultiDict[str, str]) -> Form:
        """From the query string or POST body. A date that cannot be read, or an end
        before the start, is kept as a message for its field; other malformed values
        are ignored."""
        dates = date_range.parse(values.get("from"), values.get("to"))
        return cls(company_id=values.get("company", type=int),
                   filtered=bool(values.get("filtered")),
                   locations=tuple(values.getlist("location", type=int)),
                   parties=tuple(p for p in values.getlist("party") if p),
                   summary=values.get("summary"), date_from=dates.date_from,
                   date_to=dates.date_to, date_errors=dates.errors,
                   asked=frozenset(decode_ids(values.get("sel"))
                                   | set(values.getlist("record", type=int))),
                   act=values.get("act", ""), at=values.get("at", 1, type=int) or 1,
                   page=values.get("page", type=int), sort=values.get("sort", ""),
                   order=values.get("order", ""))


def encode_ids(ids: Iterable[int]) -> str:
    """`21-40,42,50-51`: a selection short enough for a URL even when it is large."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    start = end = None
    for value in ordered + [None]:  # type: ignore[list-item]
        if start is not None and value == end + 1:  # type: ignore[operator]
            end = value
            continue
        if start is not None:
            parts.append(str(start) if start == end else f"{start}-{end}")
        start = end = value
    return ",".join(parts)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def decode_ids(text: str | None) -> set[int]:
    found: set[int] = set()
    for part in (text or "").split(","):
        low, _, high = part.strip().partition("-")
        if not _digits(low) or (high and not _digits(high)):
            continue  # "²" is a digit to str.isdigit, not to int()
        first, last = int(low), int(high or low)
        if 0 <= last - first <= 100_000:
            found.update(range(first, last + 1))
    return found


@dataclass
class GridRow:
    record: Record
    flags: list[tuple[str, int | None]]  # (label, batch id to link)
    selectable: bool
    checked: bool


@dataclass
class Selection:
    """What the selection form asked for, and what ConnectWise answered."""

    screen: Screen
    companies: list[Company]
    company: Company | None = None
    settings: CompanySettings | None = None
    not_ready: str | None = None  # "connectwise" | "quickbooks" | "disabled"
    error: tuple[str, str | None] | None = None
    locations: list[int] = field(default_factory=list)
    location_choices: list[tuple[int, str]] = field(default_factory=list)
    parties: list[str] = field(default_factory=list)
    party_choices: list[str] = field(default_factory=list)
    summary: str = "Default"
    locked_reason: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    date_errors: dict[str, str] = field(default_factory=dict)
    rows: list[Record] = field(default_factory=list)
    selectable: set[int] = field(default_factory=set)
    flags: dict[int, list[tuple[str, int | None]]] = field(default_factory=dict)
    live_earlier: set[int] = field(default_factory=set)  # re-batch: update or adopt (11.3)
    selected: set[int] = field(default_factory=set)
    dropped: int = 0
    cw: Any = None
    form: Form = field(default_factory=lambda: Form())

    @property
    def held_notes(self) -> list[str]:
        """What the screen says about the records the type holds back (greyed)."""
        counts: dict[str, int] = {}
        for row in self.rows:
            if row.held:
                counts[row.held] = counts.get(row.held, 0) + 1
        return [self.screen.held.get(flag, "{n} held back: " + flag).format(n=n)
                for flag, n in sorted(counts.items())]

    @property
    def chosen(self) -> list[Record]:
        return [r for r in self.rows if r.cw_id in self.selected]

    def filter_args(self) -> dict[str, Any]:
        """The filters as URL parameters (for links that keep them)."""
        args = {"company": self.company.id if self.company else None,
                "location": self.locations,
                "from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else "", "filtered": 1,
                "sort": self.form.order or self.form.sort}
        if self.screen.summary:
            args["summary"] = self.summary
        if self.screen.party_filter:
            args["party"] = self.parties
        return args

    def options(self) -> dict[str, Any]:
        """The batch's options: what the selection was made with (the batch page shows
        them, and the type reads them)."""
        options: dict[str, Any] = {
            "locations": self.locations,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None}
        if self.screen.summary:
            options["summary"] = self.summary
        if self.screen.party_filter and self.parties:
            options["parties"] = self.parties
        return options


def _companies(session: Session) -> list[Company]:
    return list(session.scalars(sa.select(Company).where(
        Company.status != CompanyStatus.DISCONNECTED).order_by(
        Company.is_default.desc(), Company.qbo_name)))


def _today(settings: CompanySettings) -> date:
    try:
        return datetime.now(ZoneInfo(settings.time_zone)).date()
    except (KeyError, ValueError):
        return date.today()


def _location_choices(session: Session, rows: list[Record], wanted: list[int]
                      ) -> list[tuple[int, str]]:
    """Cached ConnectWise locations, plus any the unposted rows or the URL name."""
    choices = {r.cw_id: (r.name or r.identifier or str(r.cw_id)) for r in session.scalars(
        sa.select(CwRef).where(CwRef.entity == "location"))}
    for row in rows:
        if row.location_id is not None:
            choices.setdefault(int(row.location_id), row.location or str(row.location_id))
    for wanted_id in wanted:
        choices.setdefault(wanted_id, f"Location {wanted_id}")
    return sorted(choices.items(), key=lambda pair: pair[1].lower())


def select(session: Session, form: Form, kind: str) -> Selection:
    """What the form asked for, and the unposted records of `kind` (a SCREENS slug) it
    filters, flagged."""
    screen = SCREENS[kind]
    sel = Selection(screen=screen, companies=_companies(session), form=form)
    if form.company_id is not None:
        sel.company = next((c for c in sel.companies if c.id == form.company_id), None)
        if sel.company is None:
            raise UnknownCompany(form.company_id)
    elif sel.companies:
        sel.company = sel.companies[0]
    if sel.company is None:
        sel.not_ready = "quickbooks"
        return sel
    sel.cw = clients.connectwise(session)
    if sel.cw is None:
        sel.not_ready = "connectwise"
        return sel
    settings = sel.settings = get_settings(session, sel.company)  # the caller commits
    if screen.kind.value not in settings.enabled_types:
        sel.not_ready = "disabled"
        return sel
    filtered = form.filtered
    sel.locations = sorted(set(form.locations)) if filtered else \
        list(settings.default_location_ids)
    if screen.summary:
        _summary(sel, settings, form.summary if filtered else None)
    sel.date_from = form.date_from if filtered else None
    sel.date_to = form.date_to if filtered else _today(settings)
    sel.date_errors = dict(form.date_errors) if filtered else {}
    rtype = record_type(screen.kind)
    try:
        if not sel.date_errors:  # a list for dates the person did not mean would mislead
            mapping = MappingSet.load(session, sel.company, prefs_of(settings)) \
                if screen.target else None
            sel.rows = rtype.list_unposted(sel.cw, Filters(
                location_ids=tuple(sel.locations), date_from=sel.date_from,
                date_to=sel.date_to, settings=settings, mapping=mapping))
    except IntegrationError as exc:
        sel.error = (exc.message, exc.hint)
    if screen.party_filter:
        sel.parties = sorted(set(form.parties)) if filtered else []
        sel.party_choices = sorted({r.party for r in sel.rows} | set(sel.parties),
                                   key=str.casefold)
        if sel.parties:
            sel.rows = [r for r in sel.rows if r.party in sel.parties]
    sel.location_choices = _location_choices(session, sel.rows, sel.locations)
    live = batches.live_items(session, [r.record_key for r in sel.rows])
    sources = batches.live_sources(session, screen.kind,
                                   [ref for r in sel.rows for ref in r.source_refs])
    near = batches.near_miss_records(session, sel.company)
    unbatched = rebatch.unbatched_keys(session, [r.record_key for r in sel.rows])
    go_live = settings.go_live_date
    for row in sel.rows:
        flags: list[tuple[str, int | None]] = []
        if row.held:
            flags.append((row.held, None))
        if go_live and row.day and row.day < go_live:
            flags.append((f"before go-live ({go_live.isoformat()})", None))
        if rtype.label(row) in near:
            flags.append(("near-miss", None))
        own = live.get(row.record_key)
        item = own or next((sources[ref] for ref in row.source_refs if ref in sources), None)
        if rebatch.changed_in_connectwise(own):  # unposted again: selectable (SPEC 6.3)
            flags.append(("changed in ConnectWise", own.batch_id))  # type: ignore[union-attr]
            sel.selectable.add(row.cw_id)
            sel.live_earlier.add(row.cw_id)
        elif item is not None:
            flags.append((batches.live_label(item), item.batch_id))
        elif not row.held:
            sel.selectable.add(row.cw_id)  # a live or held record cannot be picked
        if row.record_key in unbatched:
            generation, still_live = unbatched[row.record_key]
            flags.append((f"unbatched (generation {generation})", None))
            if still_live:
                sel.live_earlier.add(row.cw_id)
        sel.flags[row.cw_id] = flags
    # with dates to correct nothing was listed: keep the selection as asked until it is
    sel.selected = set(form.asked) if sel.date_errors else form.asked & sel.selectable
    sel.dropped = len(form.asked - sel.selected) if not (sel.error or sel.date_errors) else 0
    return sel


def _summary(sel: Selection, settings: CompanySettings, asked: str | None) -> None:
    """The invoice summary level: asked, or the Sales tab's; locked to Detailed by the
    work role and work type item sources (SPEC 4.2)."""
    if settings.service_item_source in LOCKED_SOURCES:
        sel.summary = "Detailed"
        sel.locked_reason = (f"{named('service_item_source')} is "
                             f"“{LOCKED_SOURCES[settings.service_item_source]}”, which needs "
                             "the Detailed export.")
    else:
        sel.summary = asked if asked in batches.SUMMARY_LEVELS else \
            settings.invoice_export_detail


GRID_SORTS: dict[str, Callable[[Record], Any]] = {
    "date": lambda r: r.day or date.min,
    "number": lambda r: (not r.number.isdigit(), int(r.number) if r.number.isdigit() else 0,
                         r.number.casefold()),
    "party": lambda r: r.party.casefold(),
    "kind": lambda r: r.kind.casefold(),
    "total": lambda r: r.total,
    "currency": lambda r: r.currency,
    "location": lambda r: r.location.casefold(),
}


def ordered(rows: list[Record], sort: Sort) -> list[Record]:
    """The grid's rows in the asked order; ties, and the default, keep ConnectWise's."""
    if not sort.key:
        return rows
    return sorted(rows, key=GRID_SORTS[sort.key], reverse=sort.descending)


def grid(sel: Selection) -> dict[str, Any]:
    """Apply the grid's buttons (page, select page/all/none, confirm, a sorted header) and
    lay the page out. The grid is ConnectWise's whole unposted list in memory, so any
    column sorts before paging."""
    form = sel.form
    act = form.act
    sort = Sort.parse(form.order or form.sort, GRID_SORTS)
    rows = ordered(sel.rows, sort)
    pages = max(1, -(-len(rows) // PER_PAGE))
    at = min(max(1, form.at), pages)
    on_page = {r.cw_id for r in rows[(at - 1) * PER_PAGE:at * PER_PAGE]}
    if act == "select_page":
        sel.selected |= on_page & sel.selectable
    elif act == "deselect_page":
        sel.selected -= on_page
    elif act == "select_all":
        sel.selected = set(sel.selectable)
    elif act == "select_none":
        sel.selected = set()
    page = 1 if form.order else min(max(1, form.page or at), pages)
    shown = rows[(page - 1) * PER_PAGE:page * PER_PAGE]
    grid = [GridRow(r, sel.flags.get(r.cw_id, []), r.cw_id in sel.selectable,
                    r.cw_id in sel.selected) for r in shown]
    home = (sel.company.home_currency if sel.company else None) or "USD"
    chosen = sel.chosen
    carried = sel.selected - {r.cw_id for r in shown}
    return {"sel": sel, "grid": grid, "page": page, "pages": pages,
            "carried": encode_ids(carried), "carried_count": len(carried),
            "confirm": act == "confirm" and bool(chosen), "asked_confirm": act == "confirm",
            "chosen_count": len(chosen), "totals": batches.totals_of(chosen, home),
            "rebatch_choice": bool(sel.selected & sel.live_earlier),
            "all_ids": encode_ids(sel.selected), "levels": batches.SUMMARY_LEVELS,
            "sort": sort}


# ---- "Validate only" ------------------------------------------------------------------------

MAX_PREVIEWS = 200


@dataclass
class Validation:
    """What "Validate only" found: the batch's own pre-flight, and the document each record
    that passes would become (built by the batch's builder)."""

    checked: int = 0
    report: Report | None = None
    groups: list[dict[str, Any]] = field(default_factory=list)
    documents: list[tuple[Record, DocumentView]] = field(default_factory=list)
    cache: CacheState | None = None
    error: tuple[str, str | None] | None = None

    @property
    def failing(self) -> int:
        return len(self.report.failing()) if self.report else 0


def validate(session: Session, sel: Selection) -> Validation:
    """Run the engine's pre-flight (`batching.preflight`) over the selection, with the same
    reference cache a batch would use, writing nothing anywhere. A cache that was never
    loaded, or is older than the company's limit, is not judged against: the result says
    so and the page offers the refresh."""
    chosen = sel.chosen
    result = Validation(checked=len(chosen))
    if not chosen or sel.company is None or sel.settings is None:
        return result
    company, settings = sel.company, sel.settings
    result.cache = cache_state(session, company, settings.reference_cache_max_age_minutes)
    if not result.cache.fresh:
        return result
    rtype = record_type(sel.screen.kind)
    ctx = Context(CompanyFacts.of(company), settings,
                  MappingSet.load(session, company, prefs_of(settings)), sel.options(),
                  StoredMemory(session, company.id, read_only=True))
    previews: dict[str, tuple[Record, DocumentView]] = {}

    def preview(_window: Any, checked: list[Checked]) -> None:
        for done in checked:
            if len(previews) < MAX_PREVIEWS and done.built is not None:
                previews[done.record.key] = (done.record, describe(
                    done.built.entity, done.built.payload, ctx.mapping, done.built.note))

    check = Preflight(rtype, ctx)
    report = check.report
    try:
        qbo = clients.quickbooks(session, company)
        evaluate(check, sel.cw, chosen, qbo.batch, on_window=preview)
    except IntegrationError as exc:
        result.error = (exc.message, exc.hint)
        return result
    result.report = report
    result.groups = report.groups()
    result.documents = [previews[r.key] for r in chosen
                        if r.key in previews and not report.problems.get(r.key)]
    return result
