"""The generic core's recovery points (SPEC 6.5, 16.2), each with one deterministic fault:
no batch is stopped by one transient error, whatever stops a run marks what it posted and
explains every record, and one Retry carries every kind of unfinished record."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from portal import clients
from portal.db import session_scope
from portal.models import (Batch, BatchStatus, BatchType, Company, ItemState, RunKind,
                           RunStatus)
from portal.services import batches, runs, scan, selection
from portal.services.runs import RunProgress
from tests.conftest import run_jobs
from tests.integration.batching import (batch_of, clear_faults, cw_batches, fault,
                                        qbo_documents, retry_and_run, states, submit,
                                        unposted)
from tests.integration.test_invoice_batches import _blocked_then_clean, ready  # noqa: F401

pytestmark = pytest.mark.integration


def _clean(app, qbo_sandbox, cw_sandbox, company, count: int) -> set[str]:  # type: ignore[no-untyped-def]
    return set(sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, company))[:count])


_retry = retry_and_run


def _no_duplicates(qbo_server, cw_sandbox, realm: str) -> None:  # type: ignore[no-untyped-def]
    numbers = [d["DocNumber"] for d in qbo_documents(qbo_server, realm)]
    assert len(numbers) == len(set(numbers)), "a DocNumber was posted twice"
    marks = [b["batchIdentifier"].split("-I")[-1].split("-")[0] for b in cw_batches(cw_sandbox)]
    assert len(marks) == len(set(marks)), "a record was marked twice"


def test_a_connectwise_500_on_the_gl_export_is_read_again(app, ready, qbo_sandbox,  # noqa: F811
                                                          cw_sandbox):
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 5)
    fault(cw_server, kind="error", method="POST", path_regex="/finance/accounting/export",
          status=500, count=1)
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"} and batch.colour in ("green", "yellow"), \
        batch.message
    _no_duplicates(qbo_server, cw_sandbox, ready.realm_id)


def test_a_fault_on_one_docnumber_query_affects_that_query_only(app, ready, qbo_sandbox,  # noqa: F811
                                                                cw_sandbox):
    _qbo, qbo_server = qbo_sandbox
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 5)
    rule = fault(qbo_server, kind="error",
                 path_regex=f"/v3/company/{ready.realm_id}/batch/item/query", count=1)
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"}, (batch.message, [i.message for i in items])
    import requests

    rules = requests.get(f"{qbo_server.url}/_sim/faults", timeout=5).json()["rules"]
    assert [r["fired"] for r in rules if r["id"] == rule["rules"][0]["id"]] == [1]


def test_the_token_expiring_while_records_are_marked_changes_nothing(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """Posting goes on (and refreshes the token) while earlier chunks are being marked on
    the pool's threads."""
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 12)
    app.config["QBO_BATCH_SIZE"] = 3
    fault(cw_server, kind="latency", method="POST", path_regex="/finance/accounting/batches$",
          latency_ms=150)  # marking lags behind posting
    fault(qbo_server, kind="token_expire", method="POST", path_regex=r"/batch$", count=1,
          after=3)
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"}, (batch.message, states(items))
    _no_duplicates(qbo_server, cw_sandbox, ready.realm_id)
    assert not clean & {r.number for r in unposted(app)}


def test_whatever_stops_a_run_marks_what_it_posted_and_explains_every_record(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """QuickBooks stops answering after two documents' worth of /batch: the run stops,
    but not before the posted records are marked; the others say what happened."""
    _qbo, qbo_server = qbo_sandbox
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 9)
    app.config["QBO_BATCH_SIZE"] = 3
    fault(qbo_server, kind="error", method="POST", path_regex=r"/batch$", status=503,
          after=3)  # the pre-flight /batch and two posting /batch pass, then every one fails
    batch_id = submit(app, clean)
    run_jobs(app)
    clear_faults(qbo_server)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and batch.colour == "red", batch.message
    counts = states(items)
    # the chunks that posted are marked; the one in flight is looked up (in vain: it
    # stays uncertain, for Retry to look up again); the rest were never sent
    assert counts["done"] >= 3 and counts["uncertain"] == 3 and "posted" not in counts, counts
    assert counts["done"] + counts["uncertain"] + counts["failed"] == len(clean)
    for item in items:
        if item.state is not ItemState.DONE:
            assert item.message and item.fix_hint, (item.cw_number, item.state)
            assert item.state in (ItemState.FAILED, ItemState.UNCERTAIN)
    done = {i.cw_number for i in items if i.state is ItemState.DONE}
    assert done <= {d["DocNumber"] for d in qbo_documents(qbo_server, ready.realm_id)}
    assert not done & {r.number for r in unposted(app)}  # marked in ConnectWise
    retry_id = _retry(app, batch_id)
    _again, copies = batch_of(app, retry_id)
    assert set(states(copies)) == {"done"}, [(i.cw_number, i.message) for i in copies]
    _no_duplicates(qbo_server, cw_sandbox, ready.realm_id)


def test_one_retry_carries_failed_uncertain_and_unmarked_records(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    realm = ready.realm_id
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 6)
    item_path = f"/v3/company/{realm}/batch/item/invoice"
    fault(qbo_server, kind="error", path_regex=item_path, count=1, body={"Fault": {
        "type": "ValidationFault", "Error": [{"Message": "Business Validation Error",
                                              "code": "6000", "Detail": "Refused"}]}})
    fault(qbo_server, kind="error", path_regex=item_path, count=1, after=1)  # SystemFault
    fault(qbo_server, kind="error", method="POST", path_regex=f"/v3/company/{realm}/invoice$",
          status=503, count=6)  # the re-posts of the unknown one fail: uncertain
    fault(cw_server, kind="error", method="POST", path_regex="/finance/accounting/batches$",
          count=1, status=403, body={"code": "Forbidden", "message": "Insufficient rights"})
    batch_id = submit(app, clean)
    run_jobs(app)
    clear_faults(qbo_server)
    clear_faults(cw_server)
    batch, items = batch_of(app, batch_id)
    counts = states(items)
    assert counts["failed"] == 1 and counts["uncertain"] == 1 and counts["posted"] == 1, counts
    assert batch.colour == "red"
    retry_id = _retry(app, batch_id)
    again, copies = batch_of(app, retry_id)
    assert len(copies) == 3 and set(states(copies)) == {"done"}, \
        [(i.cw_number, i.state, i.message) for i in copies]
    assert again.colour in ("green", "yellow")
    first, _ = batch_of(app, batch_id)
    assert first.colour != "red" and "moved to a retry" in first.message
    _no_duplicates(qbo_server, cw_sandbox, realm)
    assert not clean & {r.number for r in unposted(app)}


def test_a_blocked_batch_retries_its_skipped_records_with_the_failed_ones(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    batch_id = submit(app)  # the whole backlog: pre-flight blocks it
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    skipped = [i for i in items if i.state is ItemState.SKIPPED]
    assert skipped and all(i.colour == "grey" and i.skip_reason == "blocked" and i.message
                           for i in skipped)
    with session_scope(app) as session:
        carried = batches.retryable(session, session.get(Batch, batch_id))
        assert len(carried) == len(items)  # the failed and the skipped, together


def test_validate_only_check_the_backlog_and_a_batch_find_the_same_problems(
        app, client, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """One pre-flight: the three callers give the same answer for the same records and
    the same reference cache."""
    client.hx("POST", f"/mappings/refresh?company={ready.id}", token_from="/mappings/")
    run_jobs(app)
    rows = unposted(app)
    with app.test_request_context():
        from portal.db import get_session

        session = get_session()
        sel = selection.select(session, selection.Form.of(MultiDict({
            "filtered": "1", "company": str(ready.id), "from": "", "to": "",
            "record": [str(r.cw_id) for r in rows]})), "invoices")
        assert len(sel.chosen) == len(rows)
        validated = _pairs(selection.validate(session, sel).groups)
    with app.app_context(), session_scope(app) as session:
        company = session.get(Company, ready.id)
        run = runs.start(session, RunKind.MAPPING_SCAN, company_id=company.id)
        checked = scan.scan(session, company, clients.connectwise(session), None,
                            RunProgress(run), qbo=clients.quickbooks(session, company))
        backlog = _pairs(checked.reports[BatchType.INVOICE].groups())
        runs.finish(session, run, RunStatus.SUCCEEDED, "checked")
    batch_id = submit(app, {r.number for r in rows})
    run_jobs(app)
    batch, _items = batch_of(app, batch_id)
    assert validated and validated == backlog == _pairs(batch.preflight)


def _pairs(groups: list[dict]) -> set[tuple[str, str, str]]:  # type: ignore[type-arg]
    """(record, problem, fix) of pre-flight's problems grouped by fix."""
    return {(number, group["message"], group["hint"] or "") for group in groups
            for number in group["records"]}


def test_progress_shows_each_step_with_its_own_count(app, client, ready, qbo_sandbox,  # noqa: F811
                                                    cw_sandbox):
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 4)
    batch_id = submit(app, clean)
    run_jobs(app)
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        steps = {s.name: s for s in batches.steps_of(batch)}
        assert {"checking", "posting", "marking"} <= set(steps)
        assert all(s.done == s.total == len(clean) for name, s in steps.items()
                   if name in ("checking", "posting", "marking"))
        assert all(s.eta_seconds is None for s in steps.values())  # finished: no ETA
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Posting to QuickBooks" in page and "Marking in ConnectWise" in page
    assert f"{len(clean)} of {len(clean)} · done" in page


def test_preferences_are_read_again_and_custom_numbers_must_be_on(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """Turned off in QuickBooks after the company was connected: the batch re-reads the
    preferences at its start and refuses, writing nothing."""
    import requests

    _qbo, qbo_server = qbo_sandbox
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 3)
    before = qbo_documents(qbo_server, ready.realm_id)
    requests.post(f"{qbo_server.url}/_sim/settings", params={"realmId": ready.realm_id},
                  json={"custom_txn_numbers": False}, timeout=5).raise_for_status()
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.colour == "red" and states(items) == {"failed": 3}
    assert "Turn on Custom transaction numbers in QuickBooks" in batch.preflight[0]["message"]
    assert qbo_documents(qbo_server, ready.realm_id) == before
    with session_scope(app) as session:
        assert session.get(Company, ready.id).custom_txn_numbers is False  # stored


def test_docnumbers_are_unique_per_transaction_type_and_every_holder_is_named(
        app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    """An invoice's number held by a credit memo does not block the invoice; held by two
    invoices (QuickBooks allows it with allowduplicatedocnum), both are named."""
    _qbo, qbo_server = qbo_sandbox
    free, taken = sorted(_clean(app, qbo_sandbox, cw_sandbox, ready, 2))
    with app.app_context(), session_scope(app) as session:
        qbo = clients.quickbooks(session, session.get(Company, ready.id))
        customer = qbo.query("SELECT * FROM Customer MAXRESULTS 1")["Customer"][0]
        item = qbo.query("SELECT * FROM Item WHERE Type = 'Service' MAXRESULTS 1")["Item"][0]
        line = [{"DetailType": "SalesItemLineDetail", "Amount": 10,
                 "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}}}]
        qbo.create("CreditMemo", {"DocNumber": free, "CustomerRef": {"value": customer["Id"]},
                                  "Line": line})
        holders = [qbo.request("POST", "/invoice", params={
            "include": "allowduplicatedocnum"}, write=True, json={
            "DocNumber": taken, "CustomerRef": {"value": customer["Id"]}, "Line": line}
        )["Invoice"]["Id"] for _ in range(2)]
    batch_id = submit(app, {free, taken})
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    [group] = batch.preflight
    assert group["records"] == [taken]
    assert all(f"Invoice Id {h}" in group["message"] for h in holders), group["message"]
    assert {i.cw_number: i.state for i in items} == {taken: ItemState.FAILED,
                                                     free: ItemState.SKIPPED}


def test_clients_keep_their_connections_alive(app, ready, qbo_sandbox, cw_sandbox):  # noqa: F811
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = _clean(app, qbo_sandbox, cw_sandbox, ready, 12)
    app.config["QBO_BATCH_SIZE"] = 3
    opened = qbo_server.connections + cw_server.connections
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"}
    requests_made = batch.qbo_requests + batch.cw_requests
    connections = qbo_server.connections + cw_server.connections - opened
    assert requests_made >= 20 and connections <= requests_made // 2, (connections,
                                                                       requests_made)


def test_references_of_one_round_are_created_by_parallel_requests(app, ready):  # noqa: F811
    """More than 30 references of one round go in several /batch requests at once, each
    from a thread of its own (outside the job's app context)."""
    import threading

    from portal.services import creation
    from portal.services.batching.types.base import Need
    from portal.services.mapping import MappingSet, prefs_for

    needs = [Need("class", f"Region {number:02}", {"parent": None}) for number in range(65)]
    threads: set[str] = set()
    with app.app_context(), session_scope(app) as session:
        company = session.get(Company, ready.id)
        qbo = clients.quickbooks(session, company)

        def send(operations, request_id):  # type: ignore[no-untyped-def]
            threads.add(threading.current_thread().name)
            return qbo.batch(operations, request_id=request_id)

        created = creation.ensure_all(
            session, company, qbo,
            lambda: MappingSet.load(session, company, prefs_for(session, company)), needs,
            send)
        names = {c["Name"] for c in qbo.query(
            "SELECT * FROM Class WHERE Name LIKE 'Region%' MAXRESULTS 1000")["Class"]}
    assert created == 65 and len(threads) == 3  # ceil(65 / 30) requests, side by side
    assert names == {n.name for n in needs}
