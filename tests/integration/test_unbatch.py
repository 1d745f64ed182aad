"""Unbatch end to end (SPEC 11): both sandboxes over HTTP, a real RQ worker."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, ItemState
from tests.integration.batching import batch_of, cw_batches, unposted
from tests.integration.unbatching import (CREDIT_MEMOS, INVOICES, post, preview, qbo_get,
                                          requests_of, start)

pytestmark = pytest.mark.integration


def _cw_identifiers(cw_sandbox) -> set[str]:  # type: ignore[no-untyped-def]
    return {b["batchIdentifier"] for b in cw_batches(cw_sandbox)}


@pytest.mark.parametrize("action", ["Void", "Delete", "None"])
def test_unbatch_an_invoice_and_a_credit_memo(app, connected, qbo_sandbox, cw_sandbox,
                                              action):
    _qbo, server = qbo_sandbox
    batch, items = post(app, {INVOICES[0], CREDIT_MEMOS[0]})
    by_number = {i.cw_number: i for i in items}
    views = {v.item.cw_number: v for v in preview(app, batch.id, set(by_number), action)}
    invoice, memo = views[INVOICES[0]], views[CREDIT_MEMOS[0]]
    assert invoice.offered == ["None", "Void", "Delete"] and invoice.document == "live"
    assert memo.offered == ["None", "Delete"]  # a credit memo void is not offered
    assert invoice.identifier == by_number[INVOICES[0]].cw_batch_identifier
    assert invoice.entries >= 1 and not invoice.other_records and not invoice.closed
    if action == "Void":
        assert memo.refusals and "not offered" in memo.refusals[0]
        start(app, batch.id, {INVOICES[0]}, action)
        numbers = {INVOICES[0]}
    else:
        assert invoice.ok and memo.ok
        start(app, batch.id, set(by_number), action)
        numbers = set(by_number)
    _batch, after = batch_of(app, batch.id)
    for item in after:
        if item.cw_number not in numbers:
            assert item.state is ItemState.DONE
            continue
        assert item.state is ItemState.UNBATCHED, item.message
        doc = qbo_get(server, connected.realm_id, item.qbo_entity, item.qbo_id)
        if action == "Void":
            assert doc["PrivateNote"] == "Voided" and doc["TotalAmt"] == 0
            assert doc["DocNumber"] == item.qbo_doc_number  # a voided invoice keeps it
        elif action == "Delete":
            assert doc is None
        else:
            assert doc["TotalAmt"] > 0
        assert item.cw_batch_identifier not in _cw_identifiers(cw_sandbox)
    assert numbers <= {r.number for r in unposted(app)}  # back in ConnectWise's list
    [*requests] = requests_of(app, batch.id)
    assert {r.step for r in requests} == {"done"}
    with session_scope(app) as session:
        audited = list(session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "batch.unbatch")))
    assert len(audited) == len(numbers)
    assert {a.after["qbo_action"] for a in audited} == {action}
