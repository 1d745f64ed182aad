"""The validation view end to end (SPEC 13.3): a document edited in QuickBooks after posting
shows as a mismatch with both values; a deleted ConnectWise batch is flagged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, Company, RunKind, ValidationReport
from portal.services import validation
from tests.conftest import run_jobs
from tests.integration.unbatching import CREDIT_MEMOS, INVOICES, post

pytestmark = pytest.mark.integration


def validate(app, batch_id: int) -> ValidationReport:  # type: ignore[no-untyped-def]
    with app.app_context(), session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        report = validation.start(session, batch.company, user=None, batch=batch)
        session.commit()
        report_id, run_id = report.id, report.run_id
    with app.app_context():
        enqueue_run(RunKind.VALIDATION, run_id)
    run_jobs(app)
    with session_scope(app) as session:
        report = session.get(ValidationReport, report_id)
        session.expunge(report)
        return report


def test_validation_finds_edits_in_quickbooks_and_deleted_connectwise_batches(
        app, connected, qbo_sandbox, cw_sandbox):
    batch, items = post(app, {INVOICES[0], INVOICES[1], CREDIT_MEMOS[0]})
    clean = validate(app, batch.id)
    assert clean.status == "done" and clean.checked == 3 and clean.mismatched == 0, clean.rows
    assert {s["currency"] for s in clean.summary} == {"USD"}
    assert all(s["difference"] == "0.00" for s in clean.summary)

    edited, dropped = items[0], items[1]
    with app.app_context(), session_scope(app) as session:
        company = session.scalars(sa.select(Company)).one()
        qbo = clients.quickbooks(session, company)
        doc = qbo.read(edited.qbo_entity, edited.qbo_id)
        qbo.sparse_update(edited.qbo_entity, {"Id": doc["Id"], "SyncToken": doc["SyncToken"],
                                              "TxnDate": "2026-11-30"})
        cw = clients.connectwise(session)
        [held] = cw.get("/finance/accounting/batches",
                        conditions=f'batchIdentifier="{dropped.cw_batch_identifier}"')
        cw.request("DELETE", f"/finance/accounting/batches/{held['id']}")
    report = validate(app, batch.id)
    rows = {r["record"]: r for r in report.rows}
    assert report.mismatched == 2
    date_field = next(f for f in rows[edited.cw_number]["fields"] if f["name"] == "TxnDate")
    assert date_field == {"name": "TxnDate", "cw": edited.record_date.isoformat(),
                          "qbo": "2026-11-30", "match": False}
    assert any(f.startswith("changed in QuickBooks") for f in rows[edited.cw_number]["flags"])
    assert rows[dropped.cw_number]["flags"] == [
        f"ConnectWise batch {dropped.cw_batch_identifier} no longer exists"]
    assert rows[items[2].cw_number]["status"] == "match"
    csv = list(validation.csv_rows(report))
    assert [edited.cw_number, "mismatch", "TxnDate", edited.record_date.isoformat(),
            "2026-11-30"] in [[r[0], r[3], *r[4:7]] for r in csv]
