"""Expense batches end to end (SPEC 8): both sandboxes over HTTP, a real RQ worker, real
stores."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import requests as http

from portal.models import BatchStatus, ItemState
from portal.sandbox.demo_data import names as N
from portal.sandbox.demo_data.connectwise import (ADVANCE_EXPENSE, CARD_REFUND_EXPENSE,
                                                  REFUND_EXPENSE)
from tests.conftest import run_jobs
from tests.integration.batching import (batch_of, cw_batches, fault, faults_fired,
                                        qbo_state, retry_and_run, states)
from tests.integration.expenses import (batch_entries, expense_documents, expense_entries,
                                        groups, postable, submit_groups,
                                        unposted_expense_ids)

pytestmark = pytest.mark.integration
NO_VENDOR_NUMBER = next(m[0] for m in N.MEMBERS if m[5] is None)


def _blocked_then_clean(app, qbo_sandbox, cw_sandbox, company):  # type: ignore[no-untyped-def]
    """Submit every postable group: a member without a vendor number blocks the batch and
    nothing is written anywhere. Returns the other groups."""
    _qbo, server = qbo_sandbox
    before_docs = qbo_state(server, company.realm_id)
    before_unposted = unposted_expense_ids(cw_sandbox)
    before_cw = cw_batches(cw_sandbox)
    everything = postable(app)
    batch_id = submit_groups(app, everything)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and batch.colour == "red", batch.message
    assert batch.preflight and "nothing was written" in batch.message
    failed = [i for i in items if i.state is ItemState.FAILED]
    assert failed and {i.party for i in failed} == {"Kiran Patel"}
    assert {i.message for i in failed} == {
        f"Member {NO_VENDOR_NUMBER} has no Vendor Nbr in ConnectWise."}
    assert {i.fix_hint for i in failed} == {"Set System › Members › Vendor Nbr."}
    after = qbo_state(server, company.realm_id)
    for entity in ("Bill", "VendorCredit", "Purchase", "JournalEntry", "Vendor"):
        assert after.get(entity, []) == before_docs.get(entity, []), entity
    assert unposted_expense_ids(cw_sandbox) == before_unposted
    assert cw_batches(cw_sandbox) == before_cw
    return [r for r in everything if r.party != "Kiran Patel"]


def test_a_blocked_selection_writes_nothing_and_the_clean_groups_post_as_spec_8_2(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    clean = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, connected)
    held = [r for r in groups(app) if r.held]
    assert {r.held for r in held} == {"unapproved", "personal, skipped"}
    entries = expense_entries(cw_sandbox)
    unposted_before = unposted_expense_ids(cw_sandbox)
    batch_id = submit_groups(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert set(states(items)) == {"done"}, [(i.cw_number, i.state, i.message) for i in items]
    assert batch.colour in ("green", "yellow")
    posted_ids = {int(ref) for r in clean for ref in r.source_refs}
    # ConnectWise: exactly those expenses left the unposted list, one accounting batch per
    # group, named E<smallest GL entry id><member>, holding every GL entry of the group.
    assert unposted_expense_ids(cw_sandbox) == unposted_before - posted_ids
    marks = {b["batchIdentifier"]: b for b in cw_batches(cw_sandbox)}
    by_key = {r.key: r for r in clean}
    for item in items:
        record = by_key[item.record_key]
        member = record.key.split(":")[1]
        assert item.cw_batch_identifier.endswith(f"-{record.number}{member}")
        mark = marks[item.cw_batch_identifier]
        assert mark["exportExpensesFlag"] is True
        assert sorted(e["id"] for e in batch_entries(cw_sandbox, mark["id"])) == sorted(
            record.gl_entry_ids)
    # QuickBooks: one document per group, equal to what ConnectWise holds.
    state = qbo_state(server, connected.realm_id)
    docs = {d["DocNumber"]: d for d in expense_documents(state)}
    assert len(docs) == len(clean)
    vendors = {v["Id"]: v for v in state["Vendor"]}
    accounts = {a["Id"]: a for a in state["Account"]}
    kinds = Counter()
    for item in items:
        record = by_key[item.record_key]
        doc = docs[record.number]
        assert doc["Id"] == item.qbo_id and doc["_entity"] == item.qbo_entity
        assert f"portal:{item.request_token}" in doc["PrivateNote"]
        expenses = [entries[int(ref)] for ref in record.source_refs]
        total = sum(Decimal(str(e["amount"])) for e in expenses)
        assert Decimal(str(doc["TotalAmt"])) == abs(total), record.number
        assert doc["TxnDate"] == max(e["_periodEnd"] for e in expenses)[:10]
        member = N.MEMBERS[expenses[0]["member"]["id"] - 1]
        vendor_name = f"{member[1]} {member[2]} ({member[5]})"
        if doc["_entity"] == "JournalEntry":
            lines = doc["Line"]
            offset = lines[-1]["JournalEntryLineDetail"]
            assert offset["Entity"]["EntityRef"]["value"] in vendors
            assert vendors[offset["Entity"]["EntityRef"]["value"]]["DisplayName"] == \
                vendor_name
            assert accounts[offset["AccountRef"]["value"]]["Name"] == N.REIMBURSE
            assert offset["PostingType"] == ("Credit" if total > 0 else "Debit")
            debits = [ln for ln in lines[:-1]]
            assert [accounts[ln["JournalEntryLineDetail"]["AccountRef"]["value"]].get(
                "FullyQualifiedName") or accounts[ln["JournalEntryLineDetail"]["AccountRef"][
                    "value"]]["Name"] for ln in debits] == [e["_accountNumber"]
                                                            for e in expenses]
        else:
            party = doc.get("VendorRef") or doc.get("EntityRef")
            assert vendors[party["value"]]["DisplayName"] == vendor_name
            lines = doc["Line"]
            assert len(lines) == len(expenses)
            for line, expense in zip(lines, expenses):
                detail = line["AccountBasedExpenseLineDetail"]
                assert detail["BillableStatus"] == "NotBillable"
                account = accounts[detail["AccountRef"]["value"]]
                assert (account.get("FullyQualifiedName") or account["Name"]) == \
                    expense["_accountNumber"]
                assert Decimal(str(line["Amount"])) == abs(Decimal(str(expense["amount"])))
                assert line["Description"].startswith(expense["date"][:10] + " ")
                assert f"– {expense['notes']}" in line["Description"]
        if doc["_entity"] == "Purchase":
            assert accounts[doc["AccountRef"]["value"]]["Name"] == N.CARD
            assert doc["PaymentType"] == "CreditCard" and doc["Credit"] is (total < 0)
        kinds[(record.kind, doc["_entity"], total < 0)] += 1
    refund = next(r for r in clean if str(REFUND_EXPENSE) in r.source_refs)
    card_refund = next(r for r in clean if str(CARD_REFUND_EXPENSE) in r.source_refs)
    advance = next(r for r in clean if str(ADVANCE_EXPENSE) in r.source_refs)
    assert docs[refund.number]["_entity"] == "VendorCredit"
    assert docs[card_refund.number]["_entity"] == "Purchase"
    assert docs[card_refund.number]["Credit"] is True
    assert docs[advance.number]["_entity"] == "JournalEntry"
    assert kinds[("Reimbursable", "Bill", False)] >= 20
    assert kinds[("NonReimbursable", "Purchase", False)] >= 10
    # Held expenses stay unposted and unmarked.
    assert {int(ref) for r in held for ref in r.source_refs} <= unposted_expense_ids(
        cw_sandbox)


def test_faults_on_both_sides_end_with_no_duplicate_and_every_group_settled(
        app, connected, qbo_sandbox, cw_sandbox):
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = [r for r in postable(app) if r.party != "Kiran Patel"]
    http.post(f"{qbo_server.url}/_sim/switches", json={"sim.qbo_retry_after_header": False},
              timeout=5)
    realm = connected.realm_id
    fault(qbo_server, kind="error", path_regex=f"/v3/company/{realm}/batch", rate=0.1,
          status=500)
    fault(qbo_server, kind="throttle", path_regex=r"/v3/company/", count=2, after=3)
    fault(qbo_server, kind="drop_after_commit", method="POST", path_regex=r"/batch$", count=1,
          after=2)
    fault(qbo_server, kind="token_expire", path_regex=r"/v3/company/", count=1, after=5)
    fault(cw_server, kind="error", path_regex=r"/finance/accounting/batches", rate=0.1,
          status=503)
    batch_id = submit_groups(app, clean)
    run_jobs(app)
    faults_fired(qbo_server, cw_server)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    for item in items:
        if item.state is not ItemState.DONE:
            assert item.message, item.cw_number
    if set(states(items)) != {"done"}:  # whatever is left, a retry settles
        _again, retried = batch_of(app, retry_and_run(app, batch_id))
        assert set(states(retried)) == {"done"}, [(i.cw_number, i.message) for i in retried]
    numbers = Counter(d["DocNumber"] for d in expense_documents(qbo_state(qbo_server, realm)))
    assert set(numbers) == {r.number for r in clean}
    assert set(numbers.values()) == {1}, "a group was posted twice"
    marks = Counter(b["batchIdentifier"].split("-", 3)[3] for b in cw_batches(cw_sandbox)
                    if b.get("exportExpensesFlag"))
    assert set(marks.values()) == {1}, "a group was marked twice"
    assert not {int(ref) for r in clean for ref in r.source_refs} & unposted_expense_ids(
        cw_sandbox)
