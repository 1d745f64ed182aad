"""Unbatch and re-batch of procurement receipts and expense groups end to end: a receipt's
Bill is deleted (QuickBooks does not void bills), a receipt whose accounting batch also holds
another PO leaves it through the per-PO unbatch, an expense group in a shared batch is still
refused, and each comes back as generation 2 with `-r2`."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from portal import clients
from portal.db import session_scope
from portal.jobs.registry import enqueue_run
from portal.models import Batch, BatchItem, ItemState, RunKind
from portal.sandbox.demo_data import CURATED
from portal.services import selection, unbatch
from portal.services.batching.types.procurement import kind_of
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, cw_batches, fault, faults_fired, qbo_state
from tests.integration.expenses import batch_entries, postable, submit_groups
from tests.integration.test_procurement_batches import (
    blocked_then_clean,
    configure,
    submit,
    unposted,
)
from tests.integration.unbatching import clients_for, preview, requests_of, start

pytestmark = pytest.mark.integration


def _bills(app: Any, qbo_sandbox: Any, cw_sandbox: Any, company: Any, n: int,
           skip: str = "") -> tuple[int, list[BatchItem]]:
    """Post `n` clean receipts of different POs; returns the batch and its Bill items."""
    clean, _failed = blocked_then_clean(app, qbo_sandbox, cw_sandbox, company)
    by_po: dict[str, str] = {}
    for record in unposted(app):
        if record.key in clean and kind_of(record) == "Purchase" and record.total > 0 \
                and record.number != skip:
            by_po.setdefault(record.number, record.key)
    assert len(by_po) >= n, by_po
    batch_id = submit(app, set(sorted(by_po.values())[:n]))
    run_jobs(app)
    _batch, items = batch_of(app, batch_id)
    assert {(i.state, i.qbo_entity) for i in items} == {(ItemState.DONE, "Bill")}, \
        [(i.record_key, i.state, i.message) for i in items]
    return batch_id, sorted(items, key=lambda i: i.cw_number)


def _held(cw_sandbox: Any, identifier: str) -> dict[str, Any] | None:
    return next((b for b in cw_batches(cw_sandbox) if b["batchIdentifier"] == identifier), None)


def _live(server: Any, realm: str, entity: str, qbo_id: str | None) -> bool:
    return any(d["Id"] == qbo_id for d in qbo_state(server, realm).get(entity, []))


def _flagged_unbatched(app: Any, screen: str, item: BatchItem) -> None:
    """The selection screen lists the record again, selectable, flagged "unbatched"."""
    with app.app_context(), session_scope(app) as session:
        sel = selection.select(session, selection.Form(), screen)
        [row] = [r for r in sel.rows if r.key == item.record_key]
        assert ("unbatched (generation 1)", None) in sel.flags[row.cw_id]
        assert row.cw_id in sel.selectable and row.cw_id not in sel.live_earlier


def _one_batch(app: Any, items: list[BatchItem], identifier: str, flag: str) -> None:
    """Someone in ConnectWise unbatched these records and batched them together again."""
    with app.app_context(), session_scope(app) as session:
        cw = clients.connectwise(session)
        gl_ids: list[int] = []
        for item in items:
            for held in cw.get("/finance/accounting/batches",
                               conditions=f'batchIdentifier="{item.cw_batch_identifier}"'):
                cw.request("DELETE", f"/finance/accounting/batches/{held['id']}")
            gl_ids += list(item.gl_entry_ids or [])
            session.get(BatchItem, item.id).cw_batch_identifier = identifier
        cw.request("POST", "/finance/accounting/batches", json={
            "batchIdentifier": identifier, flag: True, "processedRecordIds": gl_ids})


def test_a_receipt_in_a_batch_holding_another_po_leaves_it_by_the_po_unbatch(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    batch_id, [first, second] = _bills(app, qbo_sandbox, cw_sandbox, connected, 2)
    _one_batch(app, [first, second], "MANUAL-POS", "exportProductsFlag")
    shared = _held(cw_sandbox, "MANUAL-POS")
    assert shared is not None

    [view] = preview(app, batch_id, {first.cw_number}, "Delete")
    assert view.ok and view.other_records and view.per_record, view.refusals
    start(app, batch_id, {first.cw_number}, "Delete")
    [request] = requests_of(app, batch_id)
    assert request.step == "done", request.message
    assert not _live(server, connected.realm_id, "Bill", first.qbo_id)
    assert _live(server, connected.realm_id, "Bill", second.qbo_id)
    back = {r.key for r in unposted(app)}
    assert first.record_key in back and second.record_key not in back
    assert _held(cw_sandbox, "MANUAL-POS") is not None  # the other PO stays batched
    assert sorted(e["id"] for e in batch_entries(cw_sandbox, shared["id"])) == \
        sorted(second.gl_entry_ids)

    # The second receipt is now alone in the batch: the batch is deleted as a whole.
    start(app, batch_id, {second.cw_number}, "Delete")
    assert {r.step for r in requests_of(app, batch_id)} == {"done"}
    assert _held(cw_sandbox, "MANUAL-POS") is None
    assert second.record_key in {r.key for r in unposted(app)}
    _b, after = batch_of(app, batch_id)
    assert {i.state for i in after} == {ItemState.UNBATCHED}


def test_a_lost_answer_to_the_po_unbatch_is_read_back_on_retry(app, connected, qbo_sandbox,
                                                                cw_sandbox):
    _qbo, server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    batch_id, [first, second] = _bills(app, qbo_sandbox, cw_sandbox, connected, 2)
    _one_batch(app, [first, second], "MANUAL-LOST", "exportProductsFlag")
    fault(cw_server, kind="drop_after_commit", method="POST", path_regex=r"/unbatch$",
          count=1)
    start(app, batch_id, {first.cw_number}, "Delete")
    faults_fired(cw_server)
    [request] = requests_of(app, batch_id)
    assert request.step == "cw" and "Retry finishes only the ConnectWise step" in \
        request.message, request.message
    assert not _live(server, connected.realm_id, "Bill", first.qbo_id)
    assert first.record_key in {r.key for r in unposted(app)}  # it landed; its answer did not
    with app.app_context(), session_scope(app) as session:
        run = unbatch.retry(session, session.get(Batch, batch_id), None)
        session.commit()
        run_id = run.id
    with app.app_context():
        enqueue_run(RunKind.UNBATCH, run_id)
    run_jobs(app)
    [request] = requests_of(app, batch_id)
    assert request.step == "done", request.message
    _b, after = batch_of(app, batch_id)
    assert {i.record_key: i.state for i in after} == {
        first.record_key: ItemState.UNBATCHED, second.record_key: ItemState.DONE}
    assert second.record_key not in {r.key for r in unposted(app)}


def test_the_po_unbatch_is_refused_when_it_would_take_another_receipt_too(
        app, connected, qbo_sandbox, cw_sandbox):
    """Two receipts of one PO: the per-PO unbatch would take both out, so it is not used."""
    partial = CURATED["connectwise"]["purchase_orders"]["partial_receipt"]
    _id, [other] = _bills(app, qbo_sandbox, cw_sandbox, connected, 1, skip=partial)
    configure(app, connected.id, "purchases", partial_receipt_mode="SuffixDocNumber")
    receipts = {r.key for r in unposted(app) if r.number == partial}
    assert len(receipts) == 2
    both_id = submit(app, receipts)
    run_jobs(app)
    _b, [first, second] = batch_of(app, both_id)
    assert {first.state, second.state} == {ItemState.DONE}, (first.message, second.message)
    before = {r.key for r in unposted(app)}

    # Both receipts batched together in ConnectWise.
    _one_batch(app, [first, second], "MANUAL-PO-TWICE", "exportProductsFlag")
    views = preview(app, both_id, {partial}, "Delete")
    assert [v.refusals for v in views] == 2 * [[
        "ConnectWise batch MANUAL-PO-TWICE also holds another record under the same "
        f"reference as receipt of PO {partial}, which its own unbatch would take out too; "
        "unbatch it in ConnectWise."]]

    # One receipt batched with another PO; the second receipt marked in a batch of its own.
    _b, [first, second] = batch_of(app, both_id)
    _one_batch(app, [first, other], "MANUAL-WITH-OTHER", "exportProductsFlag")
    with app.app_context(), session_scope(app) as session:
        cw = clients.connectwise(session)
        cw.request("POST", "/finance/accounting/batches", json={
            "batchIdentifier": "MANUAL-ALONE", "exportProductsFlag": True,
            "processedRecordIds": list(second.gl_entry_ids)})
        session.get(BatchItem, second.id).cw_batch_identifier = "MANUAL-ALONE"
    with app.app_context(), session_scope(app) as session:
        chosen = session.get(BatchItem, first.id)
        qbo, cw = clients_for(session, chosen.batch)
        [view] = unbatch.preview(session, chosen.batch, [chosen], action="Delete",
                                 unlink=False, qbo=qbo, cw=cw)
        assert view.other_records and not view.per_record
        assert view.refusals == [
            f"Receipt of PO {partial} shares its ConnectWise reference with receipt of PO "
            f"{partial} (batch MANUAL-ALONE), which its own unbatch would take out too; "
            "unbatch that one first, or both in ConnectWise."]
    assert {r.key for r in unposted(app)} == before  # nothing was written


def test_a_receipt_is_unbatched_with_delete_and_batched_again_as_r2(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    batch_id, [first] = _bills(app, qbo_sandbox, cw_sandbox, connected, 1)
    [view] = preview(app, batch_id, {first.cw_number}, "Void")
    assert view.offered == ["None", "Delete"]
    assert view.refusals == ["Void is not offered for QuickBooks Bill; choose None or Delete."]
    [view] = preview(app, batch_id, {first.cw_number})
    assert view.action == "Delete" and view.ok, view.refusals  # the default: Void, else Delete
    start(app, batch_id, {first.cw_number}, "Delete")
    assert [r.step for r in requests_of(app, batch_id)] == ["done"]
    assert not _live(server, connected.realm_id, "Bill", first.qbo_id)
    assert _held(cw_sandbox, first.cw_batch_identifier) is None
    _flagged_unbatched(app, "inventory", first)

    again_id = submit(app, {first.record_key})
    run_jobs(app)
    _again, [item] = batch_of(app, again_id)
    assert item.state is ItemState.DONE, item.message
    assert item.generation == 2 and item.rebatch_mode == "new"
    assert item.earlier_state == "deleted" and item.earlier_qbo_id == first.qbo_id
    assert item.cw_batch_identifier == f"{first.cw_batch_identifier}-r2"
    assert item.qbo_id != first.qbo_id and item.qbo_doc_number == first.qbo_doc_number
    bills = [d for d in qbo_state(server, connected.realm_id).get("Bill", [])
             if d.get("DocNumber") == first.qbo_doc_number]
    assert [d["Id"] for d in bills] == [item.qbo_id]  # one live document (I1)
    assert _held(cw_sandbox, item.cw_batch_identifier) is not None
    assert first.record_key not in {r.key for r in unposted(app)}


def test_a_transfer_journal_is_deleted_and_batched_again_as_r2(app, connected, qbo_sandbox,
                                                               cw_sandbox):
    _qbo, server = qbo_sandbox
    configure(app, connected.id, "inventory", adjustments_and_transfers="JournalEntry")
    configure(app, connected.id, "categories", use_classes=True, create_classes=True)
    batch_id = submit(app, {"xfr:1"})
    run_jobs(app)
    _b, [first] = batch_of(app, batch_id)
    assert first.state is ItemState.DONE and first.qbo_entity == "JournalEntry", first.message
    [view] = preview(app, batch_id, {first.cw_number})
    assert view.offered == ["None", "Delete"] and view.action == "Delete" and view.ok
    start(app, batch_id, {first.cw_number})
    assert [r.step for r in requests_of(app, batch_id)] == ["done"]
    assert not _live(server, connected.realm_id, "JournalEntry", first.qbo_id)
    assert _held(cw_sandbox, first.cw_batch_identifier) is None
    _flagged_unbatched(app, "inventory", first)
    again_id = submit(app, {"xfr:1"})
    run_jobs(app)
    _again, [item] = batch_of(app, again_id)
    assert item.state is ItemState.DONE and item.generation == 2, item.message
    assert item.cw_batch_identifier == f"{first.cw_batch_identifier}-r2"
    journals = [d["Id"] for d in qbo_state(server, connected.realm_id).get("JournalEntry", [])
                if d.get("DocNumber") == first.qbo_doc_number]
    assert journals == [item.qbo_id] and item.qbo_id != first.qbo_id


@pytest.mark.parametrize("mode", ["update", "adopt"])
def test_a_receipt_unbatched_with_none_updates_or_adopts_its_live_bill(
        app, connected, qbo_sandbox, cw_sandbox, mode):
    _qbo, server = qbo_sandbox
    batch_id, [first] = _bills(app, qbo_sandbox, cw_sandbox, connected, 1)
    start(app, batch_id, {first.cw_number}, "None")
    assert [r.step for r in requests_of(app, batch_id)] == ["done"]
    assert _live(server, connected.realm_id, "Bill", first.qbo_id)
    assert first.record_key in {r.key for r in unposted(app)}
    again_id = submit(app, {first.record_key}, {"rebatch": mode})
    run_jobs(app)
    _again, [item] = batch_of(app, again_id)
    assert item.state is ItemState.DONE, item.message
    assert item.generation == 2 and item.rebatch_mode == mode
    assert item.qbo_id == first.qbo_id  # the same document, never a second one (I1)
    assert item.cw_batch_identifier == f"{first.cw_batch_identifier}-r2"
    bills = [d for d in qbo_state(server, connected.realm_id).get("Bill", [])
             if d.get("DocNumber") == first.qbo_doc_number]
    assert [d["Id"] for d in bills] == [first.qbo_id]
    assert int(bills[0]["SyncToken"]) == (1 if mode == "update" else 0)


def _expense_items(app: Any, n: int) -> tuple[int, list[BatchItem]]:
    chosen = [r for r in postable(app) if r.party != "Kiran Patel"]
    batch_id = submit_groups(app, chosen)
    run_jobs(app)
    _batch, items = batch_of(app, batch_id)
    posted = [i for i in items if i.state is ItemState.DONE and i.qbo_id]
    assert len(posted) >= n, [(i.cw_number, i.state, i.message) for i in items]
    return batch_id, posted[:n]


def test_an_expense_group_in_a_shared_batch_is_still_refused(app, connected, qbo_sandbox,
                                                             cw_sandbox):
    batch_id, [first, second] = _expense_items(app, 2)
    _one_batch(app, [first, second], "MANUAL-EXP", "exportExpensesFlag")
    [view] = preview(app, batch_id, {first.cw_number}, "Delete")
    assert view.other_records and not view.per_record
    assert view.refusals == [
        "ConnectWise batch MANUAL-EXP also holds other records; unbatch it in ConnectWise."]


def test_an_unbatched_expense_group_is_batched_again_as_r2(app, connected, qbo_sandbox,
                                                           cw_sandbox):
    _qbo, server = qbo_sandbox
    batch_id, [first] = _expense_items(app, 1)
    start(app, batch_id, {first.cw_number}, "Delete")
    assert [r.step for r in requests_of(app, batch_id)] == ["done"]
    assert not _live(server, connected.realm_id, first.qbo_entity, first.qbo_id)
    _flagged_unbatched(app, "expenses", first)
    again = [r for r in postable(app) if r.key == first.record_key]
    again_id = submit_groups(app, again)
    run_jobs(app)
    _again, [item] = batch_of(app, again_id)
    assert item.state is ItemState.DONE, item.message
    assert item.generation == 2 and item.rebatch_mode == "new"
    assert item.cw_batch_identifier == f"{first.cw_batch_identifier}-r2"
    assert item.qbo_id != first.qbo_id and item.qbo_doc_number == first.qbo_doc_number
    docs = [d for d in qbo_state(server, connected.realm_id).get(item.qbo_entity, [])
            if d.get("DocNumber") == first.qbo_doc_number]
    assert [d["Id"] for d in docs] == [item.qbo_id]
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(BatchItem).where(
            BatchItem.record_key == first.record_key,
            BatchItem.state == ItemState.DONE)) == 1
