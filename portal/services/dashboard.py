"""What the dashboard shows: the setup checklist and the health of each moving part."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from portal import jobs
from portal.services import scheduler

Link = tuple[str, tuple[tuple[str, Any], ...]]  # endpoint, its arguments


@dataclass(frozen=True)
class ChecklistStep:
    """One step of the setup guide. `links` are where it is done, best first: the page
    shows the first one the person's role may open, and no link when there is none."""

    number: int
    title: str
    state: str  # todo, done, warning; "when_needed" for the step that is never checked
    reason: str
    links: tuple[Link, ...] = ()


_UNSET: Any = object()

# The steps keep the numbers of the setup guide (SPEC 0.1), which the docs and people quote.
# Step 9 has no state to check, so its row says why instead of leaving a gap.
STEPS: tuple[tuple[int, str, tuple[Link, ...]], ...] = (
    (1, "Create the ConnectWise security role and API member",
     (("setup.connectwise", ()),)),
    (2, "Connect ConnectWise", (("setup.connectwise", ()),)),
    (3, "Connect QuickBooks Online", (("setup.quickbooks", ()),)),
    (4, "Configure the QuickBooks setup tabs", (("setup.quickbooks", ()),)),
    (5, "Map your data", (("mappings.index", ()),)),
    (6, "Email and payment-sync settings", (("email.index", ()),)),
    (7, "Clear old transactions", (("unbatch.clear", ()),)),
    (8, "Run invoice, expense and inventory batches",
     (("batches.new", (("kind", "invoices"),)),)),
    (9, "Unbatch when needed", ()),
    (10, "Sync payments back to ConnectWise", (("payments.index", ()),)),
    (11, "Review batch data", (("batches.index", ()),)),
)
WHEN_NEEDED = {9: "Nothing to check here: a posted record is unbatched from its batch's "
                  "page, only when it must be taken back."}


def checklist(session: Session, cw: Any = _UNSET, companies: Any = _UNSET
              ) -> list[ChecklistStep]:
    """Each step's state from stored data; a step whose feature has no data yet is todo.

    Later features add a function per step here; no box is ever ticked by hand. The
    connection rows are read once and shared by the steps (and by the caller, when given).
    """
    from portal.services import clearing, cw_setup, qbo_setup, validation

    cw = cw_setup.current(session) if cw is _UNSET else cw
    companies = qbo_setup.companies(session) if companies is _UNSET else companies
    saved = _saved_tabs(session)
    newest, runs = _newest_batches(session)
    states = {1: _step_role(session, cw), 2: _step_connectwise(cw),
              3: _step_quickbooks(session, companies),
              4: _step_tabs(session, companies, saved),
              5: _step_mapping(session, companies), 6: _step_email(session, companies, saved),
              7: clearing.checklist_state(runs), 8: _step_batches(newest),
              10: _step_payments(newest, runs), 11: validation.checklist_state(runs),
              **{n: ("when_needed", text) for n, text in WHEN_NEEDED.items()}}
    default = next((c for c in companies if c.is_default), None)
    extra: dict[int, tuple[Link, ...]] = {}
    if default is not None:  # an accountant reads the tabs there (SPEC 1.1)
        extra[4] = (("settings.index", (("company_id", default.id),)),)
    return [ChecklistStep(number, title, *states.get(number, ("todo", "Not configured yet.")),
                          links + extra.get(number, ()))
            for number, title, links in STEPS]


def _step_role(session: Session, row: Any) -> tuple[str, str]:
    from portal.services import cw_setup

    probe = cw_setup.latest_probe(session)
    if probe is None:
        return "todo", "Run the permission probe on the ConnectWise page."
    if probe.error or probe.missing or probe.unknown:
        what = probe.error or f"{probe.missing} missing, {probe.unknown} unknown permission(s)"
        return "warning", f"The latest probe: {what}."
    if row is None or row.system_level_confirmed_at is None:
        return "todo", "Confirm the API member's System Level is Level 1."
    return "done", "Every permission is granted and the System Level is confirmed."


def _saved_tabs(session: Session) -> set[tuple[int, str]]:
    """(company id, tab) of every tab saved at least once (steps 4 and 6)."""
    import sqlalchemy as sa

    from portal.models import SettingsVersion

    return {(company_id, tab) for company_id, tab in session.execute(
        sa.select(SettingsVersion.company_id, SettingsVersion.tab).distinct()
        .where(SettingsVersion.tab.is_not(None)))}


def _newest_batches(session: Session) -> tuple[dict[Any, Any], Any]:
    """The newest finished or paused batch of each type (steps 8 and 10), and what steps 7
    (clearing) and 11 (validation) read, in one statement: a row per type, at least one."""
    import sqlalchemy as sa

    from portal.models import Batch, BatchStatus
    from portal.services import attention, clearing, validation
    from portal.services.payments import webhooks

    done = [BatchStatus.FINISHED, BatchStatus.PAUSED]
    newest = sa.select(sa.func.max(Batch.id)).where(Batch.status.in_(done)) \
        .group_by(Batch.type)
    one = sa.select(sa.literal(1).label("one")).subquery()
    rows = session.execute(sa.select(Batch, *clearing.checklist_columns(),
                                     *validation.checklist_columns(),
                                     *attention.summary_columns(webhooks.ALERT_KINDS))
                           .select_from(one).outerjoin(Batch, Batch.id.in_(newest))).all()
    return {row[0].type: row[0] for row in rows if row[0] is not None}, rows[0]


def _step_tabs(session: Session, all_companies: list[Any], saved: set[tuple[int, str]]
               ) -> tuple[str, str]:
    """Done when every visible tab of every connected company has been saved once."""
    from portal.models import CompanyStatus
    from portal.services import company_settings

    companies = [c for c in all_companies if c.status is not CompanyStatus.DISCONNECTED]
    if not companies:
        return "todo", "Connect a QuickBooks Online company first."
    for company in companies:
        missing = [t.title for t in company_settings.visible_tabs(company)
                   if t.slug != "email" and (company.id, t.slug) not in saved]
        if missing:
            return "todo", f"Save the tabs of {company.qbo_name}: {', '.join(missing)}."
    for company in companies:
        changed = company_settings.changed_facts(session, company)
        if changed:
            return "warning", (f"QuickBooks settings of {company.qbo_name} changed since the "
                               f"last save: {', '.join(sorted(changed))}.")
    return "done", "Every tab of every company has been saved."


def _step_mapping(session: Session, companies: list[Any]) -> tuple[str, str]:
    from portal.services import scan

    company = next((c for c in companies if c.is_default), None)
    latest = scan.latest(session, company) if company else None
    if latest is None:
        return "todo", "Check the unposted backlog on the Mappings page."
    problems = scan.blocking(session, latest)
    if problems:
        return "warning", (f"{problems} blocking problem(s) in {latest.records_with_errors} of "
                           f"{latest.records} unposted transaction(s).")
    return "done", f"All {latest.records} unposted transaction(s) map."


def _step_batches(newest: dict[Any, Any]) -> tuple[str, str]:
    """The newest batch that ran (clearing and payment runs have steps of their own):
    green or yellow is done, red asks for attention."""
    from portal.models import BatchStatus, BatchType

    own = {BatchType.CLEAR, BatchType.PAYMENT}
    batch = max((b for kind, b in newest.items() if kind not in own), key=lambda b: b.id,
                default=None)
    if batch is None:
        return "todo", "No batch has run yet."
    done = (batch.counts or {}).get("done", 0)
    if batch.status is BatchStatus.PAUSED or batch.colour == "red":
        return "warning", f"Batch #{batch.id} needs attention: {batch.message or 'red'}"
    return "done", f"Batch #{batch.id} posted {done} record(s)."


def _step_email(session: Session, all_companies: list[Any], saved: set[tuple[int, str]]
                ) -> tuple[str, str]:
    """Done when every connected company's Email tab and Sales tab (its Payment sync group)
    were saved, even with delivery Off; a failed SMTP test warns while SMTP is chosen."""
    import sqlalchemy as sa

    from portal.models import CompanyStatus, StoredSettings
    from portal.services import mailer

    companies = [c for c in all_companies if c.status is not CompanyStatus.DISCONNECTED]
    if not companies:
        return "todo", "Connect a QuickBooks Online company first."
    for company in companies:
        missing = [title for tab, title in (("email", "Email tab"),
                                            ("sales", "Sales tab (Payment sync)"))
                   if (company.id, tab) not in saved]
        if missing:
            return "todo", f"Save the {' and the '.join(missing)} of {company.qbo_name}."
    delivery = dict(session.execute(sa.select(
        StoredSettings.company_id, StoredSettings.values["email_delivery"].as_string())).all())
    smtp = [c.qbo_name for c in companies if delivery.get(c.id) == "Smtp"]
    server = mailer.current(session) if smtp else None
    if smtp and server is not None and server.last_test_ok is False:
        return "warning", f"SMTP delivery is chosen ({', '.join(smtp)}) but the last test " \
                          f"email failed: {server.last_test_error}"
    return "done", "Email and payment-sync settings are saved."


def _step_payments(newest: dict[Any, Any], runs: Any) -> tuple[str, str]:
    """Step 10: documents voided or deleted outside portal first, then the newest payment
    sync that ran: green is done, yellow, red or paused warns."""
    from portal.models import BatchStatus, BatchType

    if runs.alert_count:
        return "warning", runs.alert_message + (f" (and {runs.alert_count - 1} more)"
                                                if runs.alert_count > 1 else "")
    batch = newest.get(BatchType.PAYMENT)
    if batch is None:
        return "todo", "No payment sync has finished yet."
    if batch.status is BatchStatus.PAUSED:
        return "warning", f"Payment sync #{batch.id} is paused: {batch.message or ''}"
    if batch.colour in ("yellow", "red"):
        return "warning", f"Payment sync #{batch.id} is {batch.colour}: {batch.message or ''}"
    return "done", f"Payment sync #{batch.id} finished green."


def _step_connectwise(row: Any) -> tuple[str, str]:
    if row is None:
        return "todo", "Enter the API member's keys."
    if row.last_test_ok is None:
        return "todo", "Settings saved; test the connection."
    if not row.last_test_ok:
        return "warning", row.last_test_message or "The last connection test failed."
    return "done", f"Connected to {row.company_name}."


def _step_quickbooks(session: Session, all_companies: list[Any]) -> tuple[str, str]:
    from portal.models import CompanyStatus
    from portal.services import qbo_setup, tokens

    companies = [c for c in all_companies if c.status is not CompanyStatus.DISCONNECTED]
    if not companies:
        return "todo", "Connect a QuickBooks Online company."
    broken = [c.qbo_name for c in companies if c.needs_reconnect]
    if broken:
        return "warning", f"Reconnect needed: {', '.join(broken)}."
    expiring = [c.qbo_name for c in companies
                if tokens.hard_expiry_soon(qbo_setup.token_of(session, c))]
    if expiring:
        return "warning", f"Reconnect within 30 days: {', '.join(expiring)}."
    if sum(c.is_default for c in companies) != 1:
        return "warning", "Choose exactly one default company."
    return "done", f"{len(companies)} compan{'y' if len(companies) == 1 else 'ies'} connected."


@dataclass(frozen=True)
class Health:
    redis_ok: bool
    redis_detail: str
    workers: int
    heartbeat_age_seconds: float | None
    database_detail: str

    @property
    def worker_ok(self) -> bool:
        return self.heartbeat_age_seconds is not None and self.heartbeat_age_seconds < 120


def health(app: Flask, session: Session) -> Health:
    """Redis, worker heartbeat and database; never raises (the card shows the failure)."""
    dialect = session.get_bind().dialect.name
    try:
        client = jobs.get_redis(app)
        client.ping()
        live = scheduler.presence(client)  # beats every few seconds, busy or idle
        return Health(True, jobs.redis_description(app), live.count,
                      live.newest_age_seconds, dialect)
    except Exception as exc:  # noqa: BLE001 - shown on the card
        return Health(False, f"{jobs.redis_description(app)}: {exc}", 0, None, dialect)
