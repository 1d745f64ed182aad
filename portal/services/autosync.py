"""AutoSync (SPEC 15): runs every enabled record type of a company on a schedule, with the
same engine, lock, pre-flight and colours as a manual batch, and stops itself before a
string of failures does harm.

The scheduler tick calls `tick`: it counts the results of finished AutoSync runs (failures,
auto-disable, the records left out), then, per company with AutoSync on, starts the first
due type in the order invoices, expenses, inventory, payments. The company lock (one active
run per company) makes the types run one after another, and a conditional update of
`next_run_at` makes two ticks that race start a type once.

The type list is data: a type can be scheduled once its record type exists
(`types.record_type`); a record type may bring its own starter, `autosync_start(session,
company, settings, trigger) -> Batch | None` (e.g. payments, which sync from a cursor rather
than a selection): it adds the batch and its run without committing, and AutoSync commits
and enqueues the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import (
    AutoSyncCompany,
    AutoSyncType,
    Batch,
    BatchItem,
    BatchStatus,
    BatchType,
    Company,
    CompanyStatus,
    ItemState,
    JobRun,
    MappingOverride,
    MappingScan,
    MappingValue,
    RunKind,
    StoredSettings,
)
from portal.models.job_run import ACTIVE
from portal.models.types import utcnow
from portal.services import audit
from portal.services import company_settings as cs

log = logging.getLogger(__name__)
TRIGGER = "autosync"
ATTENTION_LIMIT = 200
ISSUES_IN_MAIL = 20


@dataclass(frozen=True)
class AutoType:
    """One type AutoSync can run: its slug, batch type and switch on the AutoSync tab."""

    slug: str
    kind: BatchType
    setting: str

    @property
    def label(self) -> str:
        return self.kind.label


TYPES: tuple[AutoType, ...] = (
    AutoType("invoices", BatchType.INVOICE, "autosync_invoices"),
    AutoType("expenses", BatchType.EXPENSE, "autosync_expenses"),
    AutoType("inventory", BatchType.INVENTORY, "autosync_inventory"),
    AutoType("payments", BatchType.PAYMENT, "autosync_payments"))
BY_SETTING = {t.setting: t for t in TYPES}


class StartRefused(Exception):
    """A starter's plain reason for not starting a run now (the company is busy, …)."""


def record_type_of(auto: AutoType) -> Any | None:
    """The record type behind an AutoSync type, or None while it is not built. Payment
    sync selects nothing: its source only brings a starter."""
    from portal.services.batching.types import record_type

    if auto.kind is BatchType.PAYMENT:
        from portal.services.payments.sync import AUTOSYNC_SOURCE

        return AUTOSYNC_SOURCE
    try:
        return record_type(auto.kind)
    except KeyError:
        return None


def schedulable(auto: AutoType) -> bool:
    return record_type_of(auto) is not None


def not_built(setting_name: str) -> str | None:
    """Why a type switch cannot be turned on (its batches are not built), or None."""
    auto = BY_SETTING.get(setting_name)
    if auto is None or schedulable(auto):
        return None
    return (f"{auto.label} batches are not built yet, so AutoSync cannot run them; this "
            "switch stays off until they are.")


def enabled_types(values: Mapping[str, Any]) -> list[AutoType]:
    return [t for t in TYPES if values.get(t.setting) and schedulable(t)]


# ---- preconditions (SPEC 15.2) ----------------------------------------------------------

def _other_filters(session: Session, company: Company) -> list[tuple[str, set[int]]]:
    rows = session.execute(sa.select(Company, StoredSettings).join(
        StoredSettings, StoredSettings.company_id == Company.id)
        .where(Company.id != company.id))
    return [(c.qbo_name, set(r.values.get("default_location_ids") or []))
            for c, r in rows if r.values.get("autosync_enabled")]


def _good_manual_batch(session: Session, company: Company, kind: BatchType) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(Batch).where(
        Batch.company_id == company.id, Batch.type == kind,
        Batch.status == BatchStatus.FINISHED, Batch.colour.in_(["green", "yellow"]),
        Batch.trigger != TRIGGER)) > 0


def _tax_problem(session: Session, company: Company) -> str | None:
    if company.ast_enabled:
        return None
    scan = session.scalar(sa.select(MappingScan).where(MappingScan.company_id == company.id)
                          .order_by(MappingScan.id.desc()).limit(1))
    if scan is None:
        return ("Tax mapping is not known to be complete: run the mapping check (Mappings › "
                "Check the backlog) first.")
    from portal.services.mapping import BLOCKING

    # tax codes resolve in the builders: their problems are record rows that name them
    bad = session.scalars(sa.select(MappingValue.cw_value).where(
        MappingValue.scan_id == scan.id, sa.or_(
            sa.and_(MappingValue.kind == "tax_code",
                    MappingValue.status.in_(sorted(BLOCKING))),
            sa.and_(MappingValue.kind == "record",
                    sa.func.lower(MappingValue.cw_value).contains("tax code"))))
        .order_by(MappingValue.id)).all()
    if bad:
        return (f"Tax mapping is incomplete: {bad[0]}" + (f" (and {len(bad) - 1} more)"
                                                          if len(bad) > 1 else "") +
                " Map the codes on the Taxes tab, then run the mapping check again.")
    return None


def _before_go_live(session: Session, company: Company, values: Mapping[str, Any],
                    types: list[AutoType]) -> str | None:
    go_live = values.get("go_live_date")
    if go_live is None:
        return None
    from portal import clients
    from portal.integrations import errors
    from portal.services.batching.types.base import Filters

    cw = clients.connectwise(session)
    if cw is None:
        return "Set up ConnectWise first."
    for auto in types:
        rtype = record_type_of(auto)
        if rtype is None or hasattr(rtype, "autosync_start"):
            continue
        try:
            rows = rtype.list_unposted(cw, Filters(tuple(values.get("default_location_ids")
                                                         or ()), None, go_live - timedelta(1)))
        except errors.IntegrationError as exc:
            return f"ConnectWise could not be read to check the go-live date: {exc.message}"
        old = [r for r in rows if r.day is not None and r.day < go_live]
        if old:
            return (f"{len(old)} unposted {auto.label.lower()} are dated before the go-live "
                    f"date {go_live} (e.g. {old[0].number}). Clear old transactions first.")
    return None


def preconditions(session: Session, company: Company, values: Mapping[str, Any]
                  ) -> list[str]:
    """Every failing precondition of SPEC 15.2, as a message that says how to fix it."""
    problems: list[str] = []
    if company.status is not CompanyStatus.CONNECTED:
        problems.append(f"Reconnect {company.qbo_name} to QuickBooks: AutoSync needs a "
                        "connected company.")
    types = enabled_types(values)
    if not types:
        problems.append("Choose at least one type that runs.")
    for auto in types:
        if not _good_manual_batch(session, company, auto.kind):
            problems.append(f"Run one {auto.label.lower()} batch by hand that finishes green "
                            f"or yellow for {company.qbo_name} first.")
    tax = _tax_problem(session, company)
    if tax:
        problems.append(tax)
    mine = set(values.get("default_location_ids") or [])
    for name, theirs in _other_filters(session, company):
        if not mine or not theirs or mine & theirs:
            problems.append(f"Companies {company.qbo_name} and {name} would both pick up the "
                            "same ConnectWise records; give each its own location filter.")
            break
    if not problems:  # the ConnectWise read last, and only when the rest passes
        old = _before_go_live(session, company, values, types)
        if old:
            problems.append(old)
    return problems


# ---- state rows -------------------------------------------------------------------------

def company_state(session: Session, company_id: int) -> AutoSyncCompany:
    row = session.get(AutoSyncCompany, company_id)
    if row is None:
        try:
            with session.begin_nested():
                row = AutoSyncCompany(company_id=company_id, consecutive_failures=0)
                session.add(row)
                session.flush()
        except IntegrityError:
            row = session.get(AutoSyncCompany, company_id)
    return row


def type_state(session: Session, company_id: int, slug: str) -> AutoSyncType:
    row = session.get(AutoSyncType, (company_id, slug))
    if row is None:
        try:
            with session.begin_nested():
                row = AutoSyncType(company_id=company_id, type=slug, attention=[],
                                   last_settled=True)
                session.add(row)
                session.flush()
        except IntegrityError:
            row = session.get(AutoSyncType, (company_id, slug))
    return row


def on_enable(session: Session, company: Company) -> None:
    """AutoSync turned on by a person: failures start from zero, the banner goes, and every
    enabled type is due at once."""
    state = company_state(session, company.id)
    state.consecutive_failures = 0
    state.disabled_reason = None
    state.disabled_at = None
    for auto in TYPES:
        type_state(session, company.id, auto.slug).next_run_at = None


# ---- choosing the records ---------------------------------------------------------------

def _mapping_stamp(session: Session, company: Company) -> str:
    """Changes when the settings or the overrides change: a record left out for a mapping
    problem is tried again once someone has fixed something."""
    version = cs.shown_version(session, company).number
    count, newest = session.execute(sa.select(sa.func.count(), sa.func.max(MappingOverride.id))
                                    .where(MappingOverride.company_id == company.id)).one()
    return f"{version}:{count}:{newest or 0}"


def fingerprint(record: Any, stamp: str) -> str:
    """What the record is in ConnectWise (and the mapping it met): unchanged means the same
    problem again."""
    data = [record.key, record.number, str(record.day), str(record.total), record.currency,
            list(record.gl_entry_ids), record.party, record.location_id, record.kind, stamp]
    return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()[:20]


@dataclass
class Choice:
    records: list[Any]
    left_out: list[dict[str, Any]]
    fingerprints: dict[str, str]


def choose(session: Session, company: Company, settings: cs.CompanySettings, rtype: Any,
           cw: Any, state: AutoSyncType) -> Choice:
    """SPEC 15.3: every unposted record in the default locations from the go-live date to
    today, minus records live in another batch and those whose earlier problem stands."""
    from portal.services import batches, selection
    from portal.services.batching.types.base import Filters

    rows = rtype.list_unposted(cw, Filters(tuple(settings.default_location_ids),
                                           settings.go_live_date, selection._today(settings)))
    live = batches.live_items(session, [r.key for r in rows])
    stamp = _mapping_stamp(session, company)
    earlier = {a["key"]: a for a in state.attention or []}
    records, left_out, prints = [], [], {}
    for record in rows:
        if record.key in live:
            continue
        mark = fingerprint(record, stamp)
        before = earlier.get(record.key)
        if before is not None and before.get("fingerprint") == mark:
            left_out.append(before)
            continue
        prints[record.key] = mark
        records.append(record)
    return Choice(records, left_out, prints)


# ---- the tick ---------------------------------------------------------------------------

@dataclass
class Started:
    company_id: int
    type: str
    batch_id: int | None
    note: str


def _now() -> datetime:
    return utcnow()


def _busy(session: Session, company_id: int) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(JobRun).where(
        JobRun.company_id == company_id, ACTIVE)) > 0


def _claim(session: Session, row: AutoSyncType, now: datetime, interval: int) -> bool:
    """Move `next_run_at` on only if nobody else did since it was read: one start per due
    time, however many ticks race."""
    old = row.next_run_at
    condition = AutoSyncType.next_run_at.is_(None) if old is None else \
        AutoSyncType.next_run_at == old
    done = session.execute(sa.update(AutoSyncType).where(
        AutoSyncType.company_id == row.company_id, AutoSyncType.type == row.type, condition)
        .values(next_run_at=now + timedelta(minutes=interval), last_started_at=now)
        .execution_options(synchronize_session=False))
    session.commit()
    session.refresh(row)
    return done.rowcount == 1


def _enabled_companies(session: Session) -> list[tuple[Company, cs.CompanySettings]]:
    result = []
    for company, row in session.execute(sa.select(Company, StoredSettings).join(
            StoredSettings, StoredSettings.company_id == Company.id).order_by(Company.id)):
        if row.values.get("autosync_enabled"):
            result.append((company, cs.get_settings(session, company)))
    return result


def tick(app: Flask, session: Session, now: datetime | None = None) -> list[Started]:
    """Count finished runs, then start what is due (one run per company per tick)."""
    settle(app, session)
    now = now or _now()
    started: list[Started] = []
    for company, settings in _enabled_companies(session):
        values = {name: getattr(settings, name) for name in cs.BY_NAME}
        for auto in TYPES:
            if not values.get(auto.setting) or not schedulable(auto):
                continue
            row = type_state(session, company.id, auto.slug)
            session.commit()
            if row.next_run_at is not None and row.next_run_at > now:
                continue
            if not row.last_settled or _busy(session, company.id):
                break  # AutoSync skips a tick while the company is busy (not a failure)
            if not _claim(session, row, now, settings.autosync_interval_minutes):
                break
            started.append(_start(app, session, company, settings, values, auto, row))
            break  # one type at a time: the next one is due at the next tick
    return started


def _start(app: Flask, session: Session, company: Company, settings: cs.CompanySettings,
           values: Mapping[str, Any], auto: AutoType, row: AutoSyncType) -> Started:
    from portal import clients
    from portal.integrations import errors

    problems = preconditions(session, company, values)
    if problems:
        _precondition_failed(app, session, company, settings, auto, row, problems)
        return Started(company.id, auto.slug, None, "; ".join(problems))
    rtype = record_type_of(auto)
    starter = getattr(rtype, "autosync_start", None)
    try:
        if starter is not None:
            batch = starter(session, company, settings, TRIGGER)
            note = "started" if batch else "nothing to do"
        else:
            batch, note = _start_selection(session, company, settings, rtype,
                                           clients.connectwise(session), row)
    except errors.IntegrationError as exc:
        batch, note = None, f"ConnectWise could not be read: {exc.message}"
    except StartRefused as refused:
        session.rollback()
        batch, note = None, str(refused)
    except Exception as exc:  # noqa: BLE001 - the tick goes on; the next due time retries
        log.exception("AutoSync could not start %s for company %s", auto.slug, company.id)
        session.rollback()
        batch, note = None, f"Could not start ({exc.__class__.__name__})."
    row = type_state(session, company.id, auto.slug)
    if batch is None:
        row.last_result = note.capitalize()
        row.last_colour = None
        session.commit()
        return Started(company.id, auto.slug, None, note)
    row.last_batch_id = batch.id
    row.last_settled = False
    row.last_result = "Running"
    row.last_colour = None
    run = session.get(JobRun, batch.run_id)
    session.commit()
    from portal.jobs.registry import enqueue_run

    with app.app_context():
        enqueue_run(run.kind if run else RunKind.BATCH, batch.run_id)
    return Started(company.id, auto.slug, batch.id, note)


def _start_selection(session: Session, company: Company, settings: cs.CompanySettings,
                     rtype: Any, cw: Any, row: AutoSyncType) -> tuple[Batch | None, str]:
    from portal.services import batches

    if cw is None:
        return None, "Set up ConnectWise first."
    chosen = choose(session, company, settings, rtype, cw, row)
    row.attention = chosen.left_out[:ATTENTION_LIMIT]
    if not chosen.records:
        left = f" ({len(chosen.left_out)} left out until they change)" if chosen.left_out \
            else ""
        return None, f"nothing to do{left}"
    options = {"summary": "Default", "skip_problems":
               settings.autosync_on_mapping_error == "SkipRecords",
               "fingerprints": chosen.fingerprints,
               "left_out": [a["key"] for a in chosen.left_out]}
    try:
        batch = batches.submit(session, company, chosen.records, user=None, options=options,
                               trigger=TRIGGER, batch_type=rtype.kind)
    except batches.BatchRefused as exc:
        session.rollback()
        return None, f"not started: {exc}"
    return batch, f"started with {len(chosen.records)} record(s)"


# ---- results (SPEC 15.4) ----------------------------------------------------------------

def _recipients(session: Session, settings: cs.CompanySettings) -> list[str]:
    from portal.services.email_invoices import notification_recipients

    return notification_recipients(session, settings)


def _problems_of(session: Session, batch: Batch) -> list[BatchItem]:
    return list(session.scalars(sa.select(BatchItem).where(
        BatchItem.batch_id == batch.id, sa.or_(
            BatchItem.state.in_([ItemState.FAILED, ItemState.UNCERTAIN]),
            sa.and_(BatchItem.state == ItemState.SKIPPED, BatchItem.skip_reason == "problem"),
            sa.and_(BatchItem.state == ItemState.POSTED, BatchItem.message.is_not(None))))
        .order_by(BatchItem.position)))


def settle(app: Flask, session: Session) -> int:
    """Count every finished AutoSync run once: failures, auto-disable, left-out records."""
    count = 0
    rows = session.scalars(sa.select(AutoSyncType).where(
        AutoSyncType.last_settled.is_(False), AutoSyncType.last_batch_id.is_not(None))).all()
    for row in rows:
        batch = session.get(Batch, row.last_batch_id)
        if batch is not None and batch.status in (BatchStatus.QUEUED, BatchStatus.RUNNING,
                                                  BatchStatus.PAUSED):
            continue
        done = session.execute(sa.update(AutoSyncType).where(
            AutoSyncType.company_id == row.company_id, AutoSyncType.type == row.type,
            AutoSyncType.last_settled.is_(False)).values(last_settled=True)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            session.rollback()
            continue
        session.refresh(row)
        if batch is not None:
            _account(app, session, row, batch)
        session.commit()
        count += 1
    return count


def _account(app: Flask, session: Session, row: AutoSyncType, batch: Batch) -> None:
    company = session.get(Company, batch.company_id)
    settings = cs.get_settings(session, company)
    state = company_state(session, company.id)
    problems = _problems_of(session, batch)
    prints = (batch.options or {}).get("fingerprints") or {}
    attention = [a for a in row.attention or [] if a["key"] in
                 set((batch.options or {}).get("left_out") or [])]
    for item in problems:
        if item.state in (ItemState.FAILED, ItemState.SKIPPED) and item.record_key in prints:
            attention.append({"key": item.record_key, "number": item.cw_number,
                              "message": item.message or "", "hint": item.fix_hint or "",
                              "batch_id": batch.id, "fingerprint": prints[item.record_key]})
    row.attention = attention[:ATTENTION_LIMIT]
    row.last_colour = batch.colour
    row.last_result = batch.message or batch.colour
    if batch.colour in ("green", "yellow"):
        state.consecutive_failures = 0
        return
    if batch.colour != "red":
        return
    failure(app, session, company, settings, state,
            subject=f"AutoSync {batch.type.label.lower()} run #{batch.id} for "
                    f"{company.qbo_name} is red",
            body=_red_body(batch, problems), link=_link(app, "batches.show",
                                                          batch_id=batch.id),
            rerun=_link(app, "autosync.rerun", company_id=company.id, batch_id=batch.id))


def _red_body(batch: Batch, problems: list[BatchItem]) -> str:
    lines = [batch.message or "The run finished red.", ""]
    for item in problems[:ISSUES_IN_MAIL]:
        hint = f" Fix: {item.fix_hint}" if item.fix_hint else ""
        lines.append(f"- {item.cw_number}: {item.message or item.state.value}.{hint}")
    if len(problems) > ISSUES_IN_MAIL:
        lines.append(f"… and {len(problems) - ISSUES_IN_MAIL} more on the batch page.")
    return "\n".join(lines)


def _link(app: Flask, endpoint: str, **values: Any) -> str:
    from flask import url_for

    base = (app.config.get("BASE_URL") or "http://127.0.0.1:5000/").rstrip("/")
    with app.test_request_context(base_url=base):
        return base + url_for(endpoint, **values)


def _precondition_failed(app: Flask, session: Session, company: Company,
                         settings: cs.CompanySettings, auto: AutoType, row: AutoSyncType,
                         problems: list[str]) -> None:
    row.last_result = "Skipped: " + " ".join(problems)
    row.last_colour = "red"
    state = company_state(session, company.id)
    failure(app, session, company, settings, state,
            subject=f"AutoSync skipped {auto.label.lower()} for {company.qbo_name}",
            body="A precondition failed, so nothing ran:\n" +
                 "\n".join(f"- {p}" for p in problems),
            link=_link(app, "settings.tab", company_id=company.id, tab="autosync"))
    session.commit()


def failure(app: Flask, session: Session, company: Company, settings: cs.CompanySettings,
            state: AutoSyncCompany, *, subject: str, body: str, link: str,
            rerun: str | None = None) -> None:
    """One red run or skipped run: mail it, count it, and switch AutoSync off at the limit."""
    from portal.services import notify

    state.consecutive_failures += 1
    state.last_failure = subject
    recipients = _recipients(session, settings)
    text = body + (f"\n\nRe-run: {rerun}" if rerun else "")
    notify.event(session, "autosync_failure", company.id, subject, text, link, recipients)
    if state.consecutive_failures < settings.autosync_max_consecutive_failures:
        return
    reason = (f"Turned off after {state.consecutive_failures} failed runs in a row; the last: "
              f"{subject}.")
    cs.switch_off_autosync(session, company, reason)
    state.disabled_reason = reason
    state.disabled_at = utcnow()
    audit.record(session, "autosync.auto_disable", target=company, company_id=company.id,
                 before={"autosync_enabled": True}, after={"autosync_enabled": False,
                                                            "reason": reason},
                 actor="system")
    notify.event(session, "autosync_disabled", company.id,
                 f"AutoSync was turned off for {company.qbo_name}", reason + "\n\nAn admin "
                 "turns it on again on the AutoSync tab.",
                 _link(app, "settings.tab", company_id=company.id, tab="autosync"),
                 recipients)


# ---- what the dashboard shows -----------------------------------------------------------

@dataclass
class TypeView:
    label: str
    enabled: bool
    reason: str | None
    next_run_at: datetime | None
    last_started_at: datetime | None
    last_result: str | None
    last_colour: str | None
    last_batch_id: int | None
    attention: list[dict[str, Any]]


@dataclass
class CompanyView:
    company: Company
    enabled: bool
    failures: int
    disabled_reason: str | None
    types: list[TypeView]


def overview(session: Session) -> list[CompanyView]:
    views = []
    companies = session.scalars(sa.select(Company).order_by(Company.qbo_name)).all()
    states = {s.company_id: s for s in session.scalars(sa.select(AutoSyncCompany))}
    rows = {(r.company_id, r.type): r for r in session.scalars(sa.select(AutoSyncType))}
    for company in companies:
        settings = cs.get_settings(session, company)
        state = states.get(company.id)
        types = []
        for auto in TYPES:
            row = rows.get((company.id, auto.slug))
            on = bool(getattr(settings, auto.setting)) and schedulable(auto)
            if not on and row is None:
                continue
            types.append(TypeView(auto.label, on, not_built(auto.setting),
                                  row.next_run_at if row and settings.autosync_enabled
                                  else None,
                                  row.last_started_at if row else None,
                                  row.last_result if row else None,
                                  row.last_colour if row else None,
                                  row.last_batch_id if row else None,
                                  list(row.attention or []) if row else []))
        views.append(CompanyView(company, settings.autosync_enabled,
                                 state.consecutive_failures if state else 0,
                                 state.disabled_reason if state else None, types))
    return views


# ---- the re-run link ----------------------------------------------------------------------

class RerunRefused(Exception):
    """The same selection cannot start now (busy, nothing left, ConnectWise unreachable)."""


def rerun_records(session: Session, batch: Batch) -> list[Any]:
    """The records of `batch` still unposted in ConnectWise and not live elsewhere."""
    from portal import clients
    from portal.integrations import errors
    from portal.services import batches
    from portal.services.batching.types import record_type
    from portal.services.batching.types.base import Filters

    keys = set(session.scalars(sa.select(BatchItem.record_key).where(
        BatchItem.batch_id == batch.id)))
    cw = clients.connectwise(session)
    if cw is None:
        return []
    try:
        rows = record_type(batch.type).list_unposted(cw, Filters())
    except (KeyError, errors.IntegrationError):
        return []
    live = batches.live_items(session, [r.key for r in rows if r.key in keys])
    return [r for r in rows if r.key in keys and r.key not in live]


def rerun(session: Session, company: Company, batch: Batch, user: Any) -> Batch:
    from portal.services import batches

    records = rerun_records(session, batch)
    if not records:
        raise RerunRefused("Nothing is left to re-run.")
    options = {k: v for k, v in (batch.options or {}).items()
               if k in ("summary", "skip_problems")}
    try:
        return batches.submit(session, company, records, user=user, options=options,
                              batch_type=batch.type)
    except batches.BatchRefused as exc:
        raise RerunRefused(str(exc)) from None
