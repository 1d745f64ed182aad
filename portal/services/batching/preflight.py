"""The one pre-flight (SPEC 5.6): what blocks a record from posting, decided in one place.

"Validate only" on the selection screen, "Check the backlog" in Mappings and the batch
engine all run `Preflight` over the same record type's checks, with the same reference
cache, so a screen that says "valid" runs the code the batch runs. It writes nothing to
either system. Checks that need QuickBooks (its preferences, DocNumbers already used) go in
`/batch` queries, 30 per request; one query that fails is asked again alone, so a single
fault never fails the whole check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.quickbooks import escape
from portal.models import Company, RefFetch
from portal.models.types import utcnow
from portal.services import reference
from portal.services.batching.types.base import (
    Built,
    CompanyFacts,
    Context,
    Need,
    Planned,
    Record,
    RecordType,
    Window,
)
from portal.services.mapping import Problem

log = logging.getLogger(__name__)
PER_QUERY = 100
PER_BATCH = 30
QUERY_TRIES = 5
WINDOW = 200

Send = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]  # one /batch request


# ---- QuickBooks queries in /batch, one fault at a time -------------------------------------

def run_queries(send: Send, queries: Sequence[str], *, tries: int = QUERY_TRIES,
                sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any] | None]:
    """Answer every query (its QueryResponse), 30 per /batch request.

    A query answered with a SystemFault, or lost with its whole request (Transient), is
    asked again, alone with the others still open, with backoff, up to `tries` times; its
    answer is None when it never came. A ValidationFault is a bug in the query: raised.
    """
    answers: list[dict[str, Any] | None] = [None] * len(queries)
    pending = list(range(len(queries)))
    for attempt in range(tries):
        for start in range(0, len(pending), PER_BATCH):
            chunk = pending[start:start + PER_BATCH]
            try:
                response = send([{"bId": f"q{i}", "Query": queries[i]} for i in chunk])
            except errors.Transient as exc:
                log.warning("query /batch failed (try %s of %s): %s", attempt + 1, tries, exc)
                continue
            for answer in response:
                index = int(str(answer.get("bId", "q-1"))[1:])
                fault = answer.get("Fault")
                if fault is None:
                    answers[index] = answer.get("QueryResponse") or {}
                elif str(fault.get("type", "")).lower() == "validationfault":
                    detail = (fault.get("Error") or [{}])[0]
                    raise errors.Invalid(f"QuickBooks refused a query: {detail.get('Message')}"
                                         f" ({detail.get('Detail')})", code=detail.get("code"))
        pending = [i for i in pending if answers[i] is None]
        if not pending:
            break
        if attempt + 1 < tries:
            sleep(min(8.0, 0.5 * 2 ** attempt))
    return answers


@dataclass(frozen=True)
class Holder:
    """A QuickBooks document holding a DocNumber."""

    entity: str
    qbo_id: str
    txn_date: str


def doc_number_queries(planned: Iterable[Planned]) -> list[tuple[str, list[str]]]:
    """(entity, numbers) per query: `DocNumber IN (…)` of 100 numbers, per transaction type
    (QuickBooks keeps numbers unique per type, so an invoice's number held by a credit memo
    does not block the invoice)."""
    by_entity: dict[str, list[str]] = {}
    for plan in planned:
        numbers = by_entity.setdefault(plan.entity, [])
        for number in (plan.doc_number, *plan.candidates):
            if number not in numbers:
                numbers.append(number)
    return [(entity, numbers[start:start + PER_QUERY]) for entity, numbers in by_entity.items()
            for start in range(0, len(numbers), PER_QUERY)]


def doc_number_query(entity: str, numbers: list[str]) -> str:
    return (f"SELECT * FROM {entity} WHERE DocNumber IN "
            f"({', '.join(escape(n) for n in numbers)}) MAXRESULTS 1000")


COMPANY_QUERIES = ("SELECT * FROM CompanyInfo", "SELECT * FROM Preferences")


# ---- the report ------------------------------------------------------------------------------

@dataclass
class Checked:
    """One record after its window's checks: its problems, or the references it needs and
    its document (with stand-ins for those references, see `types.base.fill_in`)."""

    record: Record
    problems: list[Problem]
    needs: list[Need]
    gl_entry_ids: list[int] | None
    built: Built | None = None


@dataclass
class Report:
    """What pre-flight found, per record key, plus what a batch would create."""

    labels: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    needs: dict[tuple[str, str], Need] = field(default_factory=dict)
    conflicts: dict[str, Holder] = field(default_factory=dict)  # offered for Adopt

    @property
    def records(self) -> int:
        return len(self.labels)

    @property
    def blocking(self) -> bool:
        """Any error blocks the whole selection (SPEC 5.6); a record whose check could not
        finish ("transient") fails alone."""
        return any(p.severity == "error" for found in self.problems.values() for p in found)

    def failing(self) -> set[str]:
        return {key for key, found in self.problems.items() if found}

    def add(self, key: str, problem: Problem) -> None:
        found = self.problems.setdefault(key, [])
        if problem not in found:
            found.append(problem)

    def pairs(self) -> set[tuple[str, str]]:
        """(record number, message) of every problem: what the three callers must agree on."""
        return {(self.numbers[key], p.message) for key, found in self.problems.items()
                for p in found}

    def groups(self, company_id: int | None = None) -> list[dict[str, Any]]:
        """Problems grouped by fix (SPEC 5.6): one entry per distinct problem with the
        records it affects (each once) and a link to the editor filtered to the value."""
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        for key, found in self.problems.items():
            for problem in found:
                group = groups.setdefault(problem.key, {
                    "message": problem.message, "hint": problem.hint, "kind": problem.kind,
                    "value": problem.cw_value, "link": fix_link(problem, company_id),
                    "records": []})
                if self.numbers[key] not in group["records"]:
                    group["records"].append(self.numbers[key])
        return sorted(groups.values(), key=lambda g: (-len(g["records"]), g["message"]))


def fix_link(problem: Problem, company_id: int | None = None) -> str | None:
    """The mapping editor filtered to the value a problem names."""
    if not problem.kind:
        return None
    link = f"/mappings/{problem.kind}?q={quote(problem.cw_value or '')}"
    return f"{link}&company={company_id}" if company_id else link


# ---- the pre-flight --------------------------------------------------------------------------

class Preflight:
    """One pre-flight over records read window by window.

    Call `check(window, records)` for each window (it returns each record's problems, needs
    and GL entry ids, for the engine to act on), then `finish(send)` for the checks that
    need QuickBooks and span the selection (DocNumbers, company preferences).
    """

    def __init__(self, rtype: RecordType, ctx: Context) -> None:
        self.rtype = rtype
        self.ctx = ctx
        self.report = Report()
        self.planned: dict[str, Planned] = {}
        self.earlier: dict[str, str | None] = {}
        self.records: dict[str, Record] = {}
        self.chosen: dict[str, str] = {}  # DocNumbers a type's own rule settled on
        self._judged: set[str] = set()
        self._known: dict[tuple[str, str], list[Holder] | None] = {}  # None: not answered
        self._found: dict[tuple[str, str], list[dict[str, Any]]] = {}  # the holders' objects
        self.company_answers: tuple[dict[str, Any], dict[str, Any]] | None = None

    def _know(self, record: Record) -> None:
        self.records[record.key] = record
        self.report.labels[record.key] = self.rtype.label(record)
        self.report.numbers[record.key] = record.number

    def _plan(self, record: Record, window: Window | None) -> None:
        if record.key in self.planned:
            return
        plan = self.rtype.planned(record, self.ctx, window)
        if plan is not None:
            self.planned[record.key] = plan
            self.earlier[record.key] = record.earlier_qbo_id

    def start(self, send: Send | None, records: Iterable[Record], *,
              sleep: Callable[[float], None] = time.sleep
              ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Before any window: re-read the company's preferences (SPEC 3.8) and check the
        DocNumbers the listing already names, in one run of /batch queries. Returns
        (CompanyInfo, Preferences) for the caller to store, or None without `send`."""
        possible: list[Planned] = []
        candidates = getattr(self.rtype, "candidates", None)
        for record in records:
            self._know(record)
            self._plan(record, None)
            if candidates is not None and record.key not in self.planned:
                possible.extend(candidates(record, self.ctx))
        if send is None:
            return None
        plans = doc_number_queries([*self.planned.values(), *possible])
        answers = run_queries(send, [*COMPANY_QUERIES,
                                     *(doc_number_query(e, n) for e, n in plans)], sleep=sleep)
        company = company_from_answers(answers[:len(COMPANY_QUERIES)])
        if company is not None:
            self.ctx.company = facts_with(self.ctx.company, *company)
        self.company_answers = company
        self._learn(plans, answers[len(COMPANY_QUERIES):])
        self._judge(set(self.planned))
        return company

    def check(self, window: Window, records: Sequence[Record],
              tokens: dict[str, str] | None = None) -> list[Checked]:
        """Check each record of a window; `tokens` (record key -> request token) go into
        the documents a batch will post (a check alone uses a dummy token)."""
        out = []
        for record in records:
            self._know(record)
            problems = list(self.report.problems.get(record.key, []))  # known from start()
            found, built = self.rtype.evaluate(window, record, self.ctx,
                                               (tokens or {}).get(record.key, "0" * 32))
            for problem in found:
                if problem not in problems:
                    problems.append(problem)
            needs: list[Need] = []
            if not problems:
                self._plan(record, window)
                self._judge_known(record.key)
                problems.extend(self.report.problems.get(record.key, []))
            if not problems:
                needs = self.rtype.needs(window, record, self.ctx)
                for need in needs:
                    self.report.needs.setdefault((need.kind, need.name), need)
            for problem in problems:
                self.report.add(record.key, problem)
            if built is not None and built.payload is not None and \
                    self.chosen.get(record.key, built.doc_number) != built.doc_number:
                number = self.chosen[record.key]  # e.g. a suffixed vendor invoice number
                built = replace(built, doc_number=number,
                                payload={**built.payload, "DocNumber": number})
            out.append(Checked(record, problems, needs, self.rtype.gl_entry_ids(window, record),
                               None if problems else built))
        return out

    def company_problems(self) -> list[Problem]:
        """SPEC 5.6 check 2: preferences every record depends on."""
        found = []
        if getattr(self.rtype, "sends_doc_numbers", False) and \
                not self.ctx.company.custom_txn_numbers:
            found.append(Problem(
                "company", "error",
                "Turn on Custom transaction numbers in QuickBooks (Settings › Sales); "
                "otherwise QuickBooks numbers invoices itself and they collide with "
                "ConnectWise numbers.", "Turn on custom transaction numbers in QuickBooks, "
                                        "then retry."))
        return found

    def finish(self, send: Send | None, *, sleep: Callable[[float], None] = time.sleep,
               company_answers: list[dict[str, Any] | None] | None = None) -> Report:
        """The checks across the selection: company preferences (applied to every record)
        and DocNumbers already used in QuickBooks (when `send` is given)."""
        for problem in self.company_problems():
            for key in self.report.labels:
                self.report.add(key, replace(problem, record=self.report.labels[key]))
        later = {k: p for k, p in self.planned.items() if k not in self._judged}
        if send is not None and later:  # numbers only the windows named
            plans = doc_number_queries(later.values())
            answers = run_queries(send, [doc_number_query(e, n) for e, n in plans],
                                  sleep=sleep)
            self._learn(plans, answers)
            self._judge(set(later))
        return self.report

    def _learn(self, plans: list[tuple[str, list[str]]],
               answers: Sequence[dict[str, Any] | None]) -> None:
        """Keep who holds each (entity, DocNumber) `plans`' queries asked about."""
        for (entity, numbers), answer in zip(plans, answers):
            for number in numbers:
                self._known[(entity, number)] = None if answer is None else []
            for obj in (answer or {}).get(entity) or []:
                number = str(obj.get("DocNumber"))
                held = self._known.setdefault((entity, number), [])
                if held is not None:
                    held.append(Holder(entity, str(obj.get("Id")),
                                       str(obj.get("TxnDate") or "")))
                    self._found.setdefault((entity, number), []).append(obj)

    def _judge_known(self, key: str) -> None:
        """Judge a record the window has just planned when its number was already answered
        for that entity (a type's `candidates`), so `finish` need not ask again; one left
        unanswered is asked again there."""
        if getattr(self.rtype, "judge_numbers", None) is not None:
            return  # a type's own rule judges its records together, in selection order
        plan = self.planned.get(key)
        if plan is not None and key not in self._judged and \
                self._known.get((plan.entity, plan.doc_number)) is not None:
            self._judge({key})

    def _judge(self, keys: set[str]) -> None:
        """DocNumber problems of the records `keys` from the holders learnt."""
        self._judged |= keys
        judge = getattr(self.rtype, "judge_numbers", None)
        if judge is not None:
            unanswered = {pair for pair, held in self._known.items() if held is None}
            self._judge_by_type(judge, keys, self._found, unanswered)
            return
        for key in keys:
            plan = self.planned[key]
            label = self.report.labels[key]
            held = self._known.get((plan.entity, plan.doc_number))
            if held is None:
                self.report.add(key, Problem(
                    label, "transient",
                    f"QuickBooks did not answer whether DocNumber {plan.doc_number} is free "
                    f"({QUERY_TRIES} tries); {label} was not posted.",
                    "Retry this record; QuickBooks usually answers again within minutes."))
                continue
            earlier = self.earlier.get(key)
            others = [h for h in held if h.qbo_id != earlier]  # its earlier one (SPEC 11.3)
            if not others:
                continue
            self.report.conflicts[key] = others[0]
            holders = "; ".join(f"QuickBooks {h.entity} Id {h.qbo_id} (dated {h.txn_date})"
                             for h in others)
            self.report.add(key, Problem(
                label, "error",
                f"DocNumber {plan.doc_number} is already used by {holders}. Numbers must come "
                "only from ConnectWise: renumber or delete that document in QuickBooks, and "
                "never let QuickBooks number them.",
                "Renumber or delete that document in QuickBooks, or Adopt it when it is this "
                "record posted outside portal."))


    def _judge_by_type(self, judge: Callable[..., Any], keys: set[str],
                       found: dict[tuple[str, str], list[dict[str, Any]]],
                       unanswered: set[tuple[str, str]]) -> None:
        """A type with its own DocNumber rule (several candidates, a scope) judges its
        records in selection order; an unanswered query fails its record alone."""
        order = [k for k in self.report.labels if k in keys]
        waiting = [k for k in order if any(
            (self.planned[k].entity, n) in unanswered
            for n in (self.planned[k].doc_number, *self.planned[k].candidates))]
        for key in waiting:
            label = self.report.labels[key]
            self.report.add(key, Problem(
                label, "transient",
                f"QuickBooks did not answer whether DocNumber {self.planned[key].doc_number} "
                f"is free ({QUERY_TRIES} tries); {label} was not posted.",
                "Retry this record; QuickBooks usually answers again within minutes."))
        chosen, problems = judge([k for k in order if k not in waiting], self.planned, found,
                                 self.earlier, self.report.labels, self.records, self.ctx)
        self.chosen.update(chosen)
        for key, problem in problems.items():
            self.report.add(key, problem)


def evaluate(check: Preflight, cw: Any, records: Sequence[Record], send: Send | None, *,
             progress: Any = None,
             on_window: Callable[[Window, list[Checked]], None] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> Report:
    """Pre-flight `records` without a batch ("Validate only", "Check the backlog"): the
    calls the engine makes, in its order, window by window (the next window's ConnectWise
    reads run while this one is checked)."""
    chunks = [records[start:start + WINDOW] for start in range(0, len(records), WINDOW)]
    with ThreadPoolExecutor(1, thread_name_prefix="cw-window") as reader:
        ahead = reader.submit(check.rtype.read, cw, chunks[0], check.ctx) if chunks else None
        check.start(send, records, sleep=sleep)
        for index, chunk in enumerate(chunks):
            window = ahead.result()  # type: ignore[union-attr]
            if index + 1 < len(chunks):
                ahead = reader.submit(check.rtype.read, cw, chunks[index + 1], check.ctx)
            checked = check.check(window, chunk)
            if on_window is not None:
                on_window(window, checked)
            if progress is not None:
                progress.advance(len(chunk))
    return check.finish(send, sleep=sleep)


# ---- is the reference cache fit to judge? ---------------------------------------------------

@dataclass(frozen=True)
class CacheState:
    never_loaded: list[str]
    stale: list[str]  # older than the company's limit

    @property
    def fresh(self) -> bool:
        return not self.never_loaded and not self.stale

    def describe(self) -> str:
        parts = []
        if self.never_loaded:
            parts.append("never loaded: " + ", ".join(self.never_loaded))
        if self.stale:
            parts.append("older than the limit: " + ", ".join(self.stale))
        return "; ".join(parts)


def cache_state(session: Session, company: Company, max_age_minutes: int,
                now: datetime | None = None) -> CacheState:
    """Which QuickBooks lists pre-flight would judge against are missing or too old
    (SPEC 5.3 `reference_cache_max_age_minutes`). A check against a list never loaded would
    call every account "missing"."""
    limit = (now or utcnow()) - timedelta(minutes=max_age_minutes)
    fetched = {f.entity: f.fetched_at for f in session.scalars(sa.select(RefFetch).where(
        RefFetch.side == "qbo", RefFetch.company_key == company.id))}
    never = [e for e in reference.QBO_LISTS if fetched.get(e) is None]
    stale = [e for e in reference.QBO_LISTS if fetched.get(e) is not None
             and fetched[e] < limit]
    return CacheState(never, stale)


def refresh_stale(session: Session, company: Company, qbo: Any, cw: Any,
                  max_age_minutes: int, progress: Any = None,
                  cw_lists: Iterable[str] = ("company", "billing_term")) -> list[str]:
    """Read again the QuickBooks lists (and the ConnectWise lists creating references reads)
    that are missing or older than the limit; returns what was refreshed. Commits each."""
    limit = utcnow() - timedelta(minutes=max_age_minutes)
    fetched = {(f.side, f.entity): f.fetched_at for f in session.scalars(
        sa.select(RefFetch).where(sa.or_(
            sa.and_(RefFetch.side == "qbo", RefFetch.company_key == company.id),
            RefFetch.side == "cw")))}
    done = []
    for entity in reference.QBO_LISTS:
        at = fetched.get(("qbo", entity))
        if at is None or at < limit:
            if progress is not None:
                progress.message(f"Refreshing QuickBooks {entity} list")
            reference.refresh_qbo_list(session, company, qbo, entity)
            session.commit()
            done.append(f"QuickBooks {entity}")
    for entity in cw_lists:
        at = fetched.get(("cw", entity))
        if at is None or at < limit:
            if progress is not None:
                progress.message(f"Refreshing ConnectWise {entity} list")
            reference.refresh_cw_list(session, cw, entity)
            session.commit()
            done.append(f"ConnectWise {entity}")
    return done


def facts_with(company: CompanyFacts, info: dict[str, Any], prefs: dict[str, Any]
               ) -> CompanyFacts:
    """The company's facts as QuickBooks states them now (not stored: the caller may)."""
    from portal.services import qbo_setup

    scratch = Company(id=company.id, qbo_name=company.name)
    qbo_setup.apply_settings(scratch, info, prefs)
    return CompanyFacts.of(scratch)


def company_from_answers(answers: Sequence[dict[str, Any] | None]
                         ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(CompanyInfo, Preferences) from the answers of COMPANY_QUERIES, or None."""
    if len(answers) < 2 or answers[0] is None or answers[1] is None:
        return None
    info = (answers[0].get("CompanyInfo") or [None])[0]
    prefs = (answers[1].get("Preferences") or [None])[0]
    if not info or not prefs:
        return None
    return info, prefs
