"""The selection screen's state: what the form asked (in the URL), the unposted invoices
ConnectWise lists for it, their flags, and which are selected.

The selection travels in the URL: the checked boxes of the page shown, plus one compact
field (`21-40,42`) for the other pages, so a large selection still fits a request line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from portal import clients
from portal.integrations.errors import IntegrationError
from portal.models import Company, CompanyStatus, CwRef
from portal.services import batches
from portal.services.company_settings import CompanySettings, get_settings
from portal.services.cw_invoices import Unposted, unposted

PER_PAGE = 100
LOCKED_SOURCES = {"WorkRoleWorkType": "Work role and work type",
                  "WorkRole": "Work role", "WorkType": "Work type"}


class UnknownCompany(LookupError):
    """The form names a company that is not connected."""


@dataclass(frozen=True)
class Form:
    """What the person asked: filters, the selection, and the grid button pressed."""

    company_id: int | None = None
    filtered: bool = False
    locations: tuple[int, ...] = ()
    summary: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    asked: frozenset[int] = frozenset()
    act: str = ""
    at: int = 1
    page: int | None = None

    @classmethod
    def of(cls, values: MultiDict[str, str]) -> Form:
        """From the query string or POST body; anything malformed is ignored."""
        return cls(company_id=values.get("company", type=int),
                   filtered=bool(values.get("filtered")),
                   locations=tuple(values.getlist("location", type=int)),
                   summary=values.get("summary"), date_from=parse_day(values.get("from")),
                   date_to=parse_day(values.get("to")),
                   asked=frozenset(decode_ids(values.get("sel"))
                                   | set(values.getlist("record", type=int))),
                   act=values.get("act", ""), at=values.get("at", 1, type=int) or 1,
                   page=values.get("page", type=int))


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


def decode_ids(text: str | None) -> set[int]:
    found: set[int] = set()
    for part in (text or "").split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        first, last = int(low), int(high or low)
        if 0 <= last - first <= 100_000:
            found.update(range(first, last + 1))
    return found


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass
class GridRow:
    record: Unposted
    flags: list[tuple[str, int | None]]  # (label, batch id to link)
    selectable: bool
    checked: bool


@dataclass
class Selection:
    """What the selection form asked for, and what ConnectWise answered."""

    kind: str
    companies: list[Company]
    company: Company | None = None
    settings: CompanySettings | None = None
    not_ready: str | None = None  # "connectwise" | "quickbooks" | "disabled"
    error: tuple[str, str | None] | None = None
    locations: list[int] = field(default_factory=list)
    location_choices: list[tuple[int, str]] = field(default_factory=list)
    summary: str = "Default"
    locked_reason: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    rows: list[Unposted] = field(default_factory=list)
    selectable: set[int] = field(default_factory=set)
    flags: dict[int, list[tuple[str, int | None]]] = field(default_factory=dict)
    selected: set[int] = field(default_factory=set)
    dropped: int = 0
    cw: Any = None
    form: Form = field(default_factory=lambda: Form())

    @property
    def chosen(self) -> list[Unposted]:
        return [r for r in self.rows if r.invoice_id in self.selected]

    def filter_args(self) -> dict[str, Any]:
        """The filters as URL parameters (for links that keep them)."""
        return {"company": self.company.id if self.company else None,
                "location": self.locations, "summary": self.summary,
                "from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else "", "filtered": 1}


def _companies(session: Session) -> list[Company]:
    return list(session.scalars(sa.select(Company).where(
        Company.status != CompanyStatus.DISCONNECTED).order_by(
        Company.is_default.desc(), Company.qbo_name)))


def _today(settings: CompanySettings) -> date:
    try:
        return datetime.now(ZoneInfo(settings.time_zone)).date()
    except (KeyError, ValueError):
        return date.today()


def _location_choices(session: Session, rows: list[Unposted], wanted: list[int]
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
    """What the form asked for, and the unposted invoices it filters, flagged."""
    sel = Selection(kind=kind, companies=_companies(session), form=form)
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
    if "invoice" not in settings.enabled_types:
        sel.not_ready = "disabled"
        return sel
    filtered = form.filtered
    sel.locations = sorted(set(form.locations)) if filtered else \
        list(settings.default_location_ids)
    if settings.service_item_source in LOCKED_SOURCES:
        sel.summary = "Detailed"
        sel.locked_reason = (f"The service item source is "
                             f"“{LOCKED_SOURCES[settings.service_item_source]}” (Sales tab), "
                             "which needs the Detailed export.")
    else:
        asked = form.summary if filtered else None
        sel.summary = asked if asked in batches.SUMMARY_LEVELS else \
            settings.invoice_export_detail
    sel.date_from = form.date_from if filtered else None
    sel.date_to = form.date_to if filtered else _today(settings)
    try:
        sel.rows = unposted(sel.cw, location_ids=sel.locations, date_from=sel.date_from,
                            date_to=sel.date_to)
    except IntegrationError as exc:
        sel.error = (exc.message, exc.hint)
    sel.location_choices = _location_choices(session, sel.rows, sel.locations)
    live = batches.live_items(session, [r.record_key for r in sel.rows])
    near = batches.near_miss_records(session, sel.company)
    go_live = settings.go_live_date
    for row in sel.rows:
        flags: list[tuple[str, int | None]] = []
        if go_live and row.day and row.day < go_live:
            flags.append((f"before go-live ({go_live.isoformat()})", None))
        if row.number in near:
            flags.append(("near-miss", None))
        item = live.get(row.record_key)
        if item is not None:
            flags.append((batches.live_label(item), item.batch_id))
        else:
            sel.selectable.add(row.invoice_id)  # only a live record cannot be picked
        sel.flags[row.invoice_id] = flags
    sel.selected = form.asked & sel.selectable
    sel.dropped = len(form.asked - sel.selected) if not sel.error else 0
    return sel


def grid(sel: Selection) -> dict[str, Any]:
    """Apply the grid's buttons (page, select page/all/none, confirm) and lay the page out."""
    form = sel.form
    act = form.act
    pages = max(1, -(-len(sel.rows) // PER_PAGE))
    at = min(max(1, form.at), pages)
    on_page = {r.invoice_id for r in sel.rows[(at - 1) * PER_PAGE:at * PER_PAGE]}
    if act == "select_page":
        sel.selected |= on_page & sel.selectable
    elif act == "deselect_page":
        sel.selected -= on_page
    elif act == "select_all":
        sel.selected = set(sel.selectable)
    elif act == "select_none":
        sel.selected = set()
    page = min(max(1, form.page or at), pages)
    shown = sel.rows[(page - 1) * PER_PAGE:page * PER_PAGE]
    grid = [GridRow(r, sel.flags.get(r.invoice_id, []), r.invoice_id in sel.selectable,
                    r.invoice_id in sel.selected) for r in shown]
    home = (sel.company.home_currency if sel.company else None) or "USD"
    chosen = sel.chosen
    return {"sel": sel, "grid": grid, "page": page, "pages": pages,
            "carried": encode_ids(sel.selected - {r.invoice_id for r in shown}),
            "confirm": act == "confirm" and bool(chosen), "asked_confirm": act == "confirm",
            "chosen_count": len(chosen), "totals": batches.totals_of(chosen, home),
            "all_ids": encode_ids(sel.selected), "levels": batches.SUMMARY_LEVELS}
