"""Unbatch (SPEC 11): take posted records back out of QuickBooks and ConnectWise, so they
can be corrected and posted again.

A preview reads both systems and names every refusal before anything is written. The job
(under the company lock) takes each record through two steps, each committed before the
next external call: QuickBooks first (unlink payments when asked, then void or delete with
a request id, the result read back), then ConnectWise (the accounting batch found by its
identifier, every entry checked to reference this record, then DELETE). If QuickBooks
fails, ConnectWise is untouched and the record stays posted; if ConnectWise fails after
QuickBooks, the record stays `unbatching` and a retry does only the ConnectWise step.

Nothing here knows a record type: the QuickBooks rules are per entity (the table of SPEC
11.2), the accounting batch is the one marking made (`entry_field`, `entry_id`), and a
type whose records can leave a shared accounting batch one by one implements the optional
`unbatch_record(cw, record)` hook (procurement: the per-PO unbatch).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.integrations import errors
from portal.integrations.connectwise import ConnectWiseClient
from portal.integrations.quickbooks import QuickBooksClient
from portal.models import (
    Batch,
    BatchItem,
    BatchItemEvent,
    Company,
    ExternalWrite,
    ItemState,
    JobRun,
    RunKind,
    RunStatus,
    UnbatchRequest,
    User,
    WriteStatus,
)
from portal.models.types import utcnow
from portal.services import audit, company_settings, cw_payments, runs, writes
from portal.services.batches import BatchRefused, _busy, recount
from portal.services.batching.engine import colour_of, record_of, summary
from portal.services.batching.marking import find_batch
from portal.services.batching.types import record_type
from portal.services.runs import RunProgress

log = logging.getLogger(__name__)
UNBATCHABLE = (ItemState.MARKED, ItemState.DONE)
REAUTH_OVER = 10  # more items than this (or any Delete) asks for the password again
ACTIONS = ("None", "Void", "Delete")
DONE_VERBS = {"void": "voided", "delete": "deleted"}
CW_PAYMENT_DELETE = "cw.invoice_payment.delete"


@dataclass(frozen=True)
class Rule:
    """SPEC 11.2 for one QuickBooks entity: what is offered, and what must hold first."""

    void: bool
    delete: bool
    open_field: str | None  # Balance / RemainingCredit must equal TotalAmt
    refusal: str  # "… is {what}" when it does not


RULES = {
    "Invoice": Rule(True, True, "Balance", "paid"),
    "CreditMemo": Rule(False, True, "RemainingCredit", "applied"),  # void [uncertain]
    "Bill": Rule(False, True, "Balance", "paid"),
    "VendorCredit": Rule(False, True, "Balance", "applied"),
    "Purchase": Rule(False, True, None, ""),
    "JournalEntry": Rule(False, True, None, ""),
}
NO_DOCUMENT = Rule(False, False, None, "")


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else 0)).quantize(Decimal("0.01"))


def closed_message(identifier: str) -> str:
    return (f"ConnectWise batch {identifier} is closed. Closed batches cannot be deleted "
            "through the API; re-open it in ConnectWise (or ask ConnectWise support), then "
            "retry.")


def shared_message(identifier: str) -> str:
    return (f"ConnectWise batch {identifier} also holds other records; unbatch it in "
            "ConnectWise.")


# ---- the preview --------------------------------------------------------------------------

@dataclass
class PaymentView:
    id: str
    ref: str
    amount: Decimal
    credit_memos: list[str]
    deposited: bool


@dataclass
class Preview:
    """One record as the confirmation shows it; `refusals` empty means it may go."""

    item: BatchItem
    action: str
    offered: list[str]
    unlink: bool = False
    entity: str | None = None
    doc_number: str | None = None
    total: Decimal | None = None
    balance: Decimal | None = None
    document: str = "missing"  # live | voided | missing | none (nothing was posted)
    payments: list[PaymentView] = field(default_factory=list)
    identifier: str | None = None
    cw_batch_id: int | None = None
    entries: int = 0
    other_records: bool = False
    closed: bool = False
    per_record: bool = False  # the type's own unbatch takes it out of a shared batch
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals


def _payments(qbo: QuickBooksClient, doc: dict[str, Any]) -> list[PaymentView]:
    found = []
    for link in doc.get("LinkedTxn") or []:
        if link.get("TxnType") != "Payment":
            continue
        payment = qbo.read("Payment", str(link.get("TxnId")))
        memos = sorted({str(t.get("TxnId")) for line in payment.get("Line") or []
                        for t in line.get("LinkedTxn") or [] if t.get("TxnType") == "CreditMemo"})
        found.append(PaymentView(
            id=str(payment.get("Id")), ref=str(payment.get("PaymentRefNum") or payment.get("Id")),
            amount=_money(payment.get("TotalAmt")), credit_memos=memos,
            deposited=any(t.get("TxnType") == "Deposit" for t in payment.get("LinkedTxn") or [])))
    return found


def default_action(company_default: str, rule: Rule) -> str:
    """`unbatch_default_qbo_action`: Void where the document can be voided, else Delete."""
    if company_default == "Void" and not rule.void:
        return "Delete" if rule.delete else "None"
    if company_default == "Delete" and not rule.delete:
        return "None"
    return company_default


def preview(session: Session, batch: Batch, items: Iterable[BatchItem], *, action: str | None,
            unlink: bool, qbo: QuickBooksClient, cw: ConnectWiseClient) -> list[Preview]:
    """What unbatching `items` would do, read from both systems; writes nothing."""
    company = session.get(Company, batch.company_id)
    settings = company_settings.get_settings(session, company)
    rtype = record_type(batch.type)
    closed_books = company.book_close_date
    out = []
    for item in items:
        rule = RULES.get(item.qbo_entity or "", NO_DOCUMENT) if item.qbo_id else NO_DOCUMENT
        offered = ["None"] + (["Void"] if rule.void else []) + (["Delete"] if rule.delete else [])
        dated_closed = bool(closed_books and item.record_date and
                            item.record_date <= closed_books)
        if dated_closed:
            offered = ["None"]
        chosen = action if action in ACTIONS else default_action(
            settings.unbatch_default_qbo_action, rule)
        if chosen not in offered and action not in ACTIONS:
            chosen = "None" if dated_closed else offered[-1]
        view = Preview(item=item, action=chosen, offered=offered, unlink=unlink,
                       entity=item.qbo_entity, doc_number=item.qbo_doc_number,
                       identifier=item.cw_batch_identifier)
        out.append(view)
        label = f"{rtype.noun} {item.cw_number}"
        if item.state not in UNBATCHABLE:
            view.refusals.append(f"Only marked or done records can be unbatched; {label} is "
                                 f"{item.state.value}.")
            continue
        if chosen not in offered:
            if dated_closed:
                view.refusals.append(f"{label} is dated {item.record_date}, on or before the "
                                     f"QuickBooks closing date {closed_books}; only None is "
                                     "offered.")
            else:
                view.refusals.append(f"{chosen} is not offered for QuickBooks "
                                     f"{item.qbo_entity or 'documents'}; choose "
                                     f"{' or '.join(offered)}.")
        _read_qbo(view, rule, qbo, label)
        _read_cw(session, view, rtype, cw)
    return out


def _read_qbo(view: Preview, rule: Rule, qbo: QuickBooksClient, label: str) -> None:
    item = view.item
    if not item.qbo_id:
        view.document = "none"
        return
    try:
        doc = qbo.read(item.qbo_entity or "", item.qbo_id)
    except errors.NotFound:
        view.document = "missing"
        view.notes.append(f"QuickBooks {item.qbo_entity} {item.qbo_id} no longer exists.")
        if view.action == "Void":
            view.refusals.append(f"QuickBooks {item.qbo_entity} {item.qbo_id} was deleted; "
                                 "choose None.")
        return
    view.total = _money(doc.get("TotalAmt"))
    view.doc_number = doc.get("DocNumber") or view.doc_number
    voided = "voided" in str(doc.get("PrivateNote") or "").lower() and view.total == 0
    view.document = "voided" if voided else "live"
    if rule.open_field:
        view.balance = _money(doc.get(rule.open_field, doc.get("Balance")))
    if item.qbo_entity == "Invoice":
        view.payments = _payments(qbo, doc)
    if view.action == "None" or voided:
        return
    if view.payments:
        if not view.unlink:
            refs = ", ".join(p.ref for p in view.payments)
            view.refusals.append(f"{label} has payments linked in QuickBooks ({refs}); tick "
                                 "Unlink payments, or choose None.")
        for payment in view.payments:
            if payment.credit_memos and view.unlink:
                view.refusals.append(f"Payment {payment.ref} also applies credit memo "
                                     f"{', '.join(payment.credit_memos)}; unapply it in "
                                     "QuickBooks first.")
            if payment.deposited and view.unlink:
                view.refusals.append(f"Payment {payment.ref} is deposited; remove it from the "
                                     "deposit in QuickBooks first.")
    elif rule.open_field and view.balance is not None and view.balance != view.total:
        view.refusals.append(f"{label} is {rule.refusal} in QuickBooks ({rule.open_field} "
                             f"{view.balance} of {view.total}); undo that in QuickBooks "
                             "first, or choose None.")


def _read_cw(session: Session, view: Preview, rtype: Any, cw: ConnectWiseClient) -> None:
    item = view.item
    if not item.cw_batch_identifier:
        view.refusals.append(f"Record {item.cw_number} has no ConnectWise accounting batch.")
        return
    found = find_batch(cw, item.cw_batch_identifier)
    if found is None:
        view.notes.append(f"ConnectWise batch {item.cw_batch_identifier} no longer exists; "
                          "only QuickBooks is changed.")
        return
    view.cw_batch_id = int(found["id"])
    view.closed = bool(found.get("closedFlag"))
    entries = list(cw.iter_all(f"/finance/accounting/batches/{view.cw_batch_id}/entries"))
    view.entries = len(entries)
    view.other_records = not holds_only(rtype, item, entries)
    if view.closed:
        view.refusals.append(closed_message(item.cw_batch_identifier))
    elif view.other_records:
        refusal = per_record_refusal(session, rtype, item, entries,
                                     item.cw_batch_identifier) \
            if getattr(rtype, "unbatch_record", None) is not None else None
        if refusal is not None:
            view.refusals.append(refusal)
        elif getattr(rtype, "unbatch_record", None) is not None:
            view.per_record = True
            view.notes.append("The accounting batch holds other records: this record alone "
                              "is taken out of it.")
        else:
            view.refusals.append(shared_message(item.cw_batch_identifier))


def holds_only(rtype: Any, item: BatchItem, entries: list[dict[str, Any]]) -> bool:
    """Whether every entry of an accounting batch references this record (SPEC 11.2), by
    the type's entry field (`entry_field_of(record)` for types of several kinds) and
    `entry_id` (one id, or a set for a record grouping several), and, for types whose
    records share a reference (`marks_by_entry_ids`), by its GL entries."""
    referenced = _referencing(rtype, item)
    if getattr(rtype, "marks_by_entry_ids", False) and sorted(
            int(e.get("id") or 0) for e in entries) != sorted(item.gl_entry_ids or []):
        return False
    return all(referenced(e) for e in entries)


def _referencing(rtype: Any, item: BatchItem) -> Any:
    """A test: whether an accounting batch entry references this record (see holds_only)."""
    record = record_of(item)
    pick = getattr(rtype, "entry_field_of", None)
    name = pick(record) if pick is not None else rtype.entry_field
    entry_id = rtype.entry_id(record)  # one id, or a set of them (a group of expenses)
    wanted = {str(i) for i in entry_id} if isinstance(entry_id, (set, frozenset)) \
        else {str(entry_id)}

    def referenced(entry: dict[str, Any]) -> bool:
        value = entry.get(name)
        return str(value.get("id") if isinstance(value, dict) else value) in wanted

    return referenced


def per_record_refusal(session: Session, rtype: Any, item: BatchItem,
                       entries: list[dict[str, Any]], identifier: str) -> str | None:
    """Why the type's own unbatch must not take this record out of a shared batch: it goes
    by the record's reference (procurement: the PO), so another record under the same
    reference, in this batch or marked by portal in another one, would leave with it."""
    if not getattr(rtype, "marks_by_entry_ids", False):
        return None
    label = rtype.label(record_of(item))
    referenced = _referencing(rtype, item)
    own = {int(i) for i in item.gl_entry_ids or []}
    if any(referenced(e) and int(e.get("id") or 0) not in own for e in entries):
        return (f"ConnectWise batch {identifier} also holds another record under the same "
                f"reference as {label}, which its own unbatch would take out too; unbatch "
                "it in ConnectWise.")
    reference = rtype.entry_id(record_of(item))
    others = session.scalars(sa.select(BatchItem).join(Batch).where(
        Batch.company_id == item.batch.company_id, Batch.type == item.batch.type,
        BatchItem.cw_number == item.cw_number, BatchItem.id != item.id,
        BatchItem.record_key != item.record_key, BatchItem.state.in_(UNBATCHABLE)))
    for other in others:
        if rtype.entry_id(record_of(other)) == reference:
            return (f"{label[:1].upper()}{label[1:]} shares its ConnectWise reference with "
                    f"{rtype.label(record_of(other))} (batch {other.cw_batch_identifier}), "
                    "which its own unbatch would take out too; unbatch that one first, or "
                    "both in ConnectWise.")
    return None


def needs_reauth(previews: list[Preview]) -> bool:
    """SPEC 11.1: more than 10 records, or any Delete, asks for the password again."""
    return len(previews) > REAUTH_OVER or any(p.action == "Delete" for p in previews)


# ---- starting it --------------------------------------------------------------------------

def start(session: Session, batch: Batch, previews: list[Preview], user: User | None
          ) -> JobRun:
    """The unbatch run and one request per record; the items become `unbatching`. Refused
    (BatchRefused) when any record is refused or the company is busy. The caller commits,
    then enqueues."""
    if not previews:
        raise BatchRefused("Select at least one record to unbatch.")
    refused = [r for p in previews for r in p.refusals]
    if refused:
        raise BatchRefused(" ".join(refused[:5]) + (f" (and {len(refused) - 5} more)"
                                                    if len(refused) > 5 else ""))
    company = session.get(Company, batch.company_id)
    try:
        run = runs.start(session, RunKind.UNBATCH, user=user, company_id=company.id,
                         total=len(previews))
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    for view in previews:
        item = view.item
        session.add(UnbatchRequest(
            run_id=run.id, company_id=company.id, batch_id=batch.id, item_id=item.id,
            qbo_action=view.action if item.qbo_id else "None",
            unlink_payments=bool(view.unlink and view.payments), step="qbo",
            state_before=item.state.value, qbo_request_id=uuid.uuid4().hex, unlinked=[],
            requested_by=user.email if user else "system"))
        session.add(BatchItemEvent(batch_id=batch.id, item_id=item.id,
                                   from_state=item.state.value,
                                   to_state=ItemState.UNBATCHING.value,
                                   text=f"unbatch requested (QuickBooks: {view.action})"))
        item.state = ItemState.UNBATCHING
        item.message = None
    recount(session, batch)
    return run


def retry(session: Session, batch: Batch, user: User | None) -> JobRun:
    """Run again the requests of this batch that stopped part way (step `qbo` or `cw`):
    each resumes at its step, so a record whose QuickBooks step was done only has its
    ConnectWise batch deleted."""
    pending = list(session.scalars(sa.select(UnbatchRequest).where(
        UnbatchRequest.batch_id == batch.id, UnbatchRequest.step.in_(["qbo", "cw"]))))
    if not pending:
        raise BatchRefused(f"Batch #{batch.id} has no unbatching to finish.")
    company = session.get(Company, batch.company_id)
    runs_of = {r.run_id for r in pending if r.run_id}
    if runs_of and session.scalar(sa.select(sa.func.count()).select_from(JobRun).where(
            JobRun.id.in_(runs_of), JobRun.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))):
        raise BatchRefused("The unbatching of this batch is still running.")
    try:
        run = runs.start(session, RunKind.UNBATCH, user=user, company_id=company.id,
                         total=len(pending))
    except runs.RunAlreadyActive as exc:
        raise _busy(session, company, exc.active_run) from None
    for request in pending:
        request.run_id = run.id
        request.message = None
    audit.record(session, "batch.unbatch_retry", target_type="batch", target_id=batch.id,
                 company_id=company.id, after={"records": len(pending)})
    return run


def requests_of(session: Session, batch: Batch) -> dict[int, UnbatchRequest]:
    """Item id -> its newest unbatch request (what the batch page shows)."""
    rows = session.scalars(sa.select(UnbatchRequest).where(
        UnbatchRequest.batch_id == batch.id).order_by(UnbatchRequest.id))
    return {r.item_id: r for r in rows}


# ---- the job ---------------------------------------------------------------------------------

class StepFailed(Exception):
    """A step cannot be done; the message says why and what to do."""


class Unbatcher:
    """Works the requests of one unbatch run, each from the step it is at."""

    def __init__(self, session: Session, run: JobRun, progress: RunProgress,
                 cw: ConnectWiseClient, qbo: QuickBooksClient | None) -> None:
        self.session = session
        self.run = run
        self.token = run.claim_token or ""
        self.progress = progress
        self.cw = cw
        self.qbo = qbo

    def _commit(self) -> None:
        if not runs.owns(self.session, self.run.id, self.token):
            self.session.rollback()
            raise runs.LostClaim(f"unbatch run {self.run.id} was taken over")
        self.session.commit()

    def _event(self, item: BatchItem, text: str, to: ItemState | None = None,
               endpoint: str | None = None) -> None:
        self.session.add(BatchItemEvent(
            batch_id=item.batch_id, item_id=item.id, from_state=item.state.value,
            to_state=to.value if to else None, endpoint=endpoint, text=text[:1000]))

    def work(self) -> tuple[RunStatus, str]:
        requests = list(self.session.scalars(sa.select(UnbatchRequest).where(
            UnbatchRequest.run_id == self.run.id).order_by(UnbatchRequest.id)))
        self.progress.start(len(requests), f"Unbatching {len(requests)} record(s)",
                            phase="unbatching")
        done = failed = 0
        for request in requests:
            if request.step in ("qbo", "cw"):
                self._one(request)
            done += request.step == "done"
            failed += request.step != "done"
            self.progress.advance(1)
        batches = {r.batch_id for r in requests}
        for batch_id in batches:
            batch = self.session.get(Batch, batch_id)
            recount(self.session, batch)
            batch.colour = colour_of(self.session, batch)
            batch.message = summary(batch, self.session)[:500]
        self._commit()
        message = f"{done} record(s) unbatched" + (f", {failed} not finished" if failed else "")
        return (RunStatus.FAILED if failed else RunStatus.SUCCEEDED), message

    def _one(self, request: UnbatchRequest) -> None:
        item = request.item
        batch = self.session.get(Batch, item.batch_id)
        rtype = record_type(batch.type)
        if request.step == "qbo":
            try:
                self._qbo_step(request, item)
            except StepFailed as exc:
                request.step = "failed"
                request.message = str(exc)
                request.finished_at = utcnow()
                self._event(item, f"unbatch refused by QuickBooks: {exc}",
                            ItemState(request.state_before))
                item.state = ItemState(request.state_before)
                item.message = f"Not unbatched: {exc}"
                self._commit()
                return
            except errors.IntegrationError as exc:  # outcome unknown: looked up on retry
                request.message = f"QuickBooks did not answer: {exc.message} Retry finishes it."
                item.message = request.message
                self._event(item, request.message)
                self._commit()
                return
            request.step = "cw"
            self._event(item, f"QuickBooks step done: {request.qbo_result}")
            self._commit()  # from here a retry does only the ConnectWise step
        try:
            self._cw_step(request, item, rtype)
        except (StepFailed, errors.IntegrationError) as exc:
            text = str(exc) if isinstance(exc, StepFailed) else \
                f"ConnectWise did not answer: {exc.message}"
            request.message = f"{text} The QuickBooks step is done; Retry finishes only " \
                              "the ConnectWise step."
            item.message = request.message
            item.fix_hint = "Fix the cause, then press Finish unbatching on this page."
            self._event(item, request.message)
            self._commit()
            return
        request.step = "done"
        request.message = None
        request.finished_at = utcnow()
        self._event(item, "unbatched: the record is back in ConnectWise's unposted list",
                    ItemState.UNBATCHED)
        item.state = ItemState.UNBATCHED
        item.message = (f"Unbatched (QuickBooks: {request.qbo_result or request.qbo_action}); "
                        "it can be selected again.")
        item.fix_hint = None
        audit.record(self.session, "batch.unbatch", target_type="batch_item",
                     target_id=item.id, company_id=request.company_id,
                     actor=request.requested_by,
                     after={"record": item.cw_number, "batch": item.batch_id,
                            "qbo_action": request.qbo_action, "qbo_entity": item.qbo_entity,
                            "qbo_id": item.qbo_id, "doc_number": item.qbo_doc_number,
                            "cw_batch_identifier": item.cw_batch_identifier,
                            "cw_batch_id": request.cw_batch_id,
                            "unlinked": request.unlinked})
        self._commit()

    # -- QuickBooks ---------------------------------------------------------------------------

    def _qbo_step(self, request: UnbatchRequest, item: BatchItem) -> None:
        if request.unlink_payments:
            self._unlink(request, item)
        if request.qbo_action == "None" or not item.qbo_id:
            request.qbo_result = "left as it is"
            return
        if self.qbo is None:
            raise StepFailed("QuickBooks is not connected for this company; reconnect it.")
        entity, qbo_id = item.qbo_entity or "", item.qbo_id
        verb = request.qbo_action.lower()

        def current() -> dict[str, Any] | None:
            try:
                return self.qbo.read(entity, qbo_id)  # type: ignore[union-attr]
            except errors.NotFound:
                return None

        def settled() -> dict[str, Any] | None:
            doc = current()
            if verb == "delete":
                return {"Id": qbo_id, "status": "Deleted"} if doc is None else None
            return doc if doc is not None and _voided(doc) else None

        if verb == "void" and current() is None:
            raise StepFailed(f"QuickBooks {entity} {qbo_id} no longer exists; it cannot be "
                             "voided. Unbatch with None.")

        def call(request_id: str) -> dict[str, Any]:
            doc = current()
            if doc is None or (verb == "void" and _voided(doc)):
                return doc or {"Id": qbo_id, "status": "Deleted"}
            sync = str(doc.get("SyncToken") or "0")
            method = self.qbo.void if verb == "void" else self.qbo.delete  # type: ignore
            return method(entity, qbo_id, sync, request_id=request_id)

        try:
            writes.perform_once(
                self.session, target="qbo", operation=f"qbo.{verb}",
                key=f"unbatch:{request.id}", call=call, lookup=settled,
                params={"entity": entity, "id": qbo_id, "company_id": request.company_id},
                company_id=request.company_id, run_id=self.run.id)
        except errors.Invalid as exc:
            raise StepFailed(_refusal_text(exc, f"{verb} {entity} {item.qbo_doc_number}")) \
                from None
        if settled() is None:  # read back: trust the document, not the answer
            raise StepFailed(f"QuickBooks answered, but {entity} {item.qbo_doc_number} is "
                             f"not {DONE_VERBS[verb]}; check it in QuickBooks, then retry.")
        request.qbo_result = f"{entity} {qbo_id} {DONE_VERBS[verb]}"

    def _unlink(self, request: UnbatchRequest, item: BatchItem) -> None:
        """Each linked Payment loses its line for this invoice (a full line replacement),
        so the money stays with the customer as unapplied credit; then portal's own
        ConnectWise payments on the invoice are removed."""
        assert self.qbo is not None
        entity, qbo_id = item.qbo_entity or "", item.qbo_id or ""
        try:
            doc = self.qbo.read(entity, qbo_id)
        except errors.NotFound:
            doc = {}
        unlinked = list(request.unlinked or [])
        for link in doc.get("LinkedTxn") or []:
            if link.get("TxnType") != "Payment":
                continue
            payment_id = str(link.get("TxnId"))
            answer = self._unlink_one(request, payment_id, qbo_id)
            unlinked.append({"qbo_payment": payment_id,
                             "ref": answer.get("PaymentRefNum") or payment_id})
            request.unlinked = list(unlinked)
            self._commit()
        for payment_id in self._cw_payments(item):
            cw_id = item.cw_id
            writes.perform_once(
                self.session, target="cw", operation=CW_PAYMENT_DELETE, key=str(payment_id),
                call=lambda _rid, pid=payment_id: self._delete_cw_payment(cw_id, pid),
                lookup=lambda pid=payment_id: None if any(
                    str(p.get("id")) == str(pid) for p in self.cw.get(
                        f"/finance/invoices/{cw_id}/payments") or []) else {"id": pid},
                params={"invoice_id": cw_id, "payment_id": payment_id},
                company_id=request.company_id, run_id=self.run.id)
            unlinked.append({"cw_payment": payment_id})
            request.unlinked = list(unlinked)
            audit.record(self.session, "cw.payment.delete", target_type="batch_item",
                         target_id=item.id, company_id=request.company_id,
                         actor=request.requested_by,
                         after={"invoice": item.cw_number, "payment_id": payment_id})
            self._commit()

    def _unlink_one(self, request: UnbatchRequest, payment_id: str, invoice_id: str
                    ) -> dict[str, Any]:
        assert self.qbo is not None
        qbo = self.qbo

        def links_invoice(payment: dict[str, Any]) -> bool:
            return any(t.get("TxnType") == "Invoice" and str(t.get("TxnId")) == invoice_id
                       for line in payment.get("Line") or [] for t in line.get("LinkedTxn") or [])

        def lookup() -> dict[str, Any] | None:
            payment = qbo.read("Payment", payment_id)
            return None if links_invoice(payment) else payment

        first = qbo.read("Payment", payment_id)
        memos = [t.get("TxnId") for line in first.get("Line") or []
                 for t in line.get("LinkedTxn") or [] if t.get("TxnType") == "CreditMemo"]
        if memos and links_invoice(first):
            raise StepFailed(f"Payment {first.get('PaymentRefNum') or payment_id} also applies "
                             f"credit memo {', '.join(str(m) for m in memos)}; unapply it in "
                             "QuickBooks first.")

        def call(request_id: str) -> dict[str, Any]:
            payment = qbo.read("Payment", payment_id)
            if not links_invoice(payment):
                return payment
            lines = [{k: v for k, v in line.items() if k not in ("LineEx", "Id", "LineNum")}
                     for line in payment.get("Line") or []
                     if not any(t.get("TxnType") == "Invoice" and str(t.get("TxnId")) ==
                                invoice_id for t in line.get("LinkedTxn") or [])]
            body = {k: v for k, v in payment.items()
                    if k not in ("LinkedTxn", "MetaData", "domain", "sparse", "UnappliedAmt")}
            body["Line"] = lines
            return qbo.create("Payment", body, request_id=request_id)

        try:
            outcome = writes.perform_once(
                self.session, target="qbo", operation="qbo.payment.unlink",
                key=f"unbatch:{request.id}:{payment_id}", call=call, lookup=lookup,
                params={"payment": payment_id, "invoice": invoice_id,
                        "company_id": request.company_id},
                company_id=request.company_id, run_id=self.run.id)
        except errors.Invalid as exc:
            raise StepFailed(_refusal_text(exc, f"unlink payment {payment_id}", payment_id)) \
                from None
        return outcome.result

    def _cw_payments(self, item: BatchItem) -> list[str]:
        """Payments portal itself wrote to this ConnectWise invoice (payment sync)."""
        if not item.cw_id:
            return []
        rows = self.session.scalars(sa.select(ExternalWrite).where(
            ExternalWrite.target == "cw", ExternalWrite.operation == cw_payments.CREATE,
            ExternalWrite.status == WriteStatus.DONE))
        return [r.remote_id for r in rows if r.remote_id and
                str((r.params or {}).get("invoice_id")) == str(item.cw_id)]

    def _delete_cw_payment(self, invoice_id: Any, payment_id: Any) -> dict[str, Any]:
        try:
            self.cw.request("DELETE", f"/finance/invoices/{invoice_id}/payments/{payment_id}")
        except errors.NotFound:
            pass  # already gone
        return {"id": payment_id}

    # -- ConnectWise ----------------------------------------------------------------------------

    def _cw_step(self, request: UnbatchRequest, item: BatchItem, rtype: Any) -> None:
        identifier = item.cw_batch_identifier or ""
        found = find_batch(self.cw, identifier) if identifier else None
        if found is None:
            return  # deleted already (by an earlier attempt, or by hand)
        batch_id = int(found["id"])
        request.cw_batch_id = batch_id
        if found.get("closedFlag"):
            raise StepFailed(closed_message(identifier))
        entries = list(self.cw.iter_all(f"/finance/accounting/batches/{batch_id}/entries"))
        if not holds_only(rtype, item, entries):
            per_record = getattr(rtype, "unbatch_record", None)
            refusal = per_record_refusal(self.session, rtype, item, entries, identifier) \
                if per_record is not None else None
            if refusal is not None:
                raise StepFailed(refusal)
            if per_record is None or not per_record(self.cw, record_of(item)):
                raise StepFailed(shared_message(identifier))
            self._event(item, f"taken out of ConnectWise batch {identifier} on its own",
                        endpoint="POST unbatch")
            return

        def call(_request_id: str) -> dict[str, Any]:
            self.cw.request("DELETE", f"/finance/accounting/batches/{batch_id}")
            return {"id": batch_id}

        try:
            writes.perform_once(
                self.session, target="cw", operation="cw.accounting_batch.delete",
                key=identifier, call=call,
                lookup=lambda: None if find_batch(self.cw, identifier) else {"id": batch_id},
                params={"identifier": identifier, "batch_id": batch_id},
                company_id=request.company_id, run_id=self.run.id)
        except errors.Invalid as exc:
            if "closed" in str(exc).lower():
                raise StepFailed(closed_message(identifier)) from None
            raise StepFailed(f"ConnectWise refused to delete batch {identifier}: "
                             f"{exc.message}") from None
        self._event(item, f"ConnectWise batch {identifier} deleted",
                    endpoint=f"DELETE /finance/accounting/batches/{batch_id}")


def _voided(doc: dict[str, Any]) -> bool:
    return "voided" in str(doc.get("PrivateNote") or "").lower() and \
        _money(doc.get("TotalAmt")) == 0


def _refusal_text(exc: errors.IntegrationError, what: str, payment: str | None = None) -> str:
    """SPEC 11.2's messages for QuickBooks' refusals (6540: a deposited payment)."""
    if exc.code == "6540":
        who = f"Payment {payment}" if payment else "A payment linked to it"
        return f"{who} is deposited; remove it from the deposit in QuickBooks first."
    return f"QuickBooks refused to {what}: {exc.detail or exc.message} (code {exc.code})"


def unbatch_run(session: Session, run: JobRun, progress: RunProgress, cw: ConnectWiseClient,
                qbo: QuickBooksClient | None) -> tuple[RunStatus, str]:
    """The job's work: every request of the run, from the step it is at."""
    return Unbatcher(session, run, progress, cw, qbo).work()
