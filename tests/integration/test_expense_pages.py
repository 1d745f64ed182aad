"""The expense selection screen (SPEC 6.1, 8.1): groups as they will post, the member
filter, held expenses greyed, the Purchases tab driving it, Validate only with the errors of
SPEC 8.3, Submit, and the batch page's document links."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import Batch, BatchType, Company
from tests.conftest import run_jobs
from tests.integration.batching import batch_of, states
from tests.integration.expenses import groups, postable
from tests.integration.test_settings_tabs import _save

pytestmark = pytest.mark.integration
NEW = "/batches/new/expenses"


def _form(company: Company, records=(), **extra):  # type: ignore[no-untyped-def]
    return {"filtered": "1", "company": str(company.id), "from": "", "to": "",
            "record": [str(r) for r in records], **extra}


def _rows(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="record-(\d+)"', text)]


def _refresh_references(app, client, company) -> None:  # type: ignore[no-untyped-def]
    response = client.hx("POST", f"/mappings/refresh?company={company.id}",
                         token_from="/mappings/")
    assert response.status_code == 202, response.get_data(as_text=True)
    run_jobs(app)


def test_the_screen_shows_groups_as_they_will_post_and_greys_held_expenses(
        app, client, connected):
    _refresh_references(app, client, connected)
    expected = groups(app)
    page = client.get(NEW, query_string=_form(connected))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Run new batch: Expenses</h1>" in text
    assert 'id="expense-selection"' in text and 'id="expense-grid"' in text
    assert "Summary level" not in text  # invoices only
    assert f"selected of {len(expected)} unposted expense group(s)" in text
    held = [r for r in expected if r.held]
    unapproved = sum(1 for r in held if r.held == "unapproved")
    assert unapproved and f"{unapproved} expenses skipped: not approved." in text
    row = re.search(rf'<tr id="record-{held[0].cw_id}" class="unselectable">.*?</tr>', text,
                    re.S)
    assert row and 'name="record"' not in row.group(0)
    bill = next(r for r in expected if r.target == "Bill")
    row = re.search(rf'<tr id="record-{bill.cw_id}">.*?</tr>', text, re.S).group(0)
    assert f'value="{bill.cw_id}"' in row and "<td>Bill</td>" in row
    assert "<details><summary>" + bill.number in row and bill.lines[0] in row
    for target in ("Purchase (card)", "Purchase (card credit)", "VendorCredit",
                   "JournalEntry"):
        assert f"<td>{target}</td>" in text, target
    # the member filter keeps one member's groups
    members = sorted({r.party for r in expected})
    assert all(f'name="party" value="{m}"' in text for m in members)
    alex = client.get(NEW, query_string=_form(connected, party="Alex Chen")).get_data(
        as_text=True)
    assert sorted(_rows(alex)) == sorted(r.cw_id for r in expected if r.party == "Alex Chen")


def test_the_purchases_tab_drives_grouping_and_what_is_held(app, client, connected):
    before = groups(app)
    personal = [r for r in before if r.held == "personal, skipped"]
    assert personal
    response = _save(client, app, connected.id, "purchases", personal_expenses="MarkOnly",
                     sync_unapproved_expenses=["", "y"],
                     non_reimbursable_grouping="PerReport")
    assert response.status_code == 200, response.get_data(as_text=True)
    after = groups(app)
    assert not [r for r in after if r.held]
    marked = [r for r in after if r.kind == "Personal"]
    assert marked and {r.target for r in marked} == {"Marked only"}
    assert sum(len(r.source_refs) for r in after) == sum(len(r.source_refs) for r in before)
    text = client.get(NEW, query_string=_form(connected)).get_data(as_text=True)
    assert "expenses skipped" not in text
    assert all(f'value="{r.cw_id}"' in text for r in marked)


def test_validate_only_names_the_spec_8_3_errors_and_submit_posts(app, client, connected,
                                                                  qbo_sandbox):
    _refresh_references(app, client, connected)
    rows = postable(app)
    patel = [r for r in rows if r.party == "Kiran Patel"]
    answer = client.hx("GET", f"{NEW}/validate",
                       query_string=_form(connected, [r.cw_id for r in patel]))
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "would stop" in text
    assert "Member kpatel has no Vendor Nbr in ConnectWise." in text
    assert "Set System › Members › Vendor Nbr." in text
    chosen = [r for r in rows if r.party in ("Alex Chen", "Emma Brown")]
    kinds = {r.target for r in chosen}
    assert {"Bill", "Purchase (card)"} <= kinds
    clean = client.hx("GET", f"{NEW}/validate",
                      query_string=_form(connected, [r.cw_id for r in chosen]))
    text = clean.get_data(as_text=True)
    assert "No problems found" in text and "What a batch would post" in text
    confirm = client.get(NEW, query_string=_form(connected, [r.cw_id for r in chosen],
                                                 act="confirm")).get_data(as_text=True)
    assert f"Post {len(chosen)} expense group(s) to" in confirm
    assert 'action="/batches/new/expenses"' in confirm
    data = _form(connected, [r.cw_id for r in chosen], csrf_token=client.csrf_token(NEW))
    posted = client.post(NEW, data=data)
    assert posted.status_code == 303
    batch_id = int(posted.headers["Location"].rsplit("/", 1)[1])
    with session_scope(app) as session:
        assert session.get(Batch, batch_id).type is BatchType.EXPENSE
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"}, [(i.cw_number, i.message) for i in items]
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    paths = {"Bill": "bill", "Purchase": "expense", "JournalEntry": "journal",
             "VendorCredit": "vendorcredit"}
    for item in items:
        assert (f'/app/{paths[item.qbo_entity]}?txnId={item.qbo_id}"') in page
    assert "expense" in {i.qbo_entity and paths[i.qbo_entity] for i in items}


def test_submitting_a_held_expense_is_refused(app, client, connected):
    held = next(r for r in groups(app) if r.held)
    data = _form(connected, [held.cw_id], csrf_token=client.csrf_token(NEW))
    refused = client.post(NEW, data=data)
    assert refused.status_code == 409
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
