"""The batch pages: selection grid, Validate only, Submit, the batch page, the review list.

The batch job itself is never run here (the engine has its own tests): submitted batches
stay queued, and finished ones are written straight to the database.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.formatting import money
from portal.models import (Batch, BatchItem, BatchItemEvent, BatchStatus, BatchType, Company,
                           ItemState, JobRun, RunStatus)
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration

NEW = "/batches/new/invoices"


def _unposted(app):  # type: ignore[no-untyped-def]
    """What ConnectWise lists as unposted (the grid's source), read directly."""
    from portal import clients
    from portal.db import get_session
    from portal.services.batching.types.invoices import unposted

    with app.app_context():
        return unposted(clients.connectwise(get_session()))


def _rows(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="record-(\d+)"', text)]


def _checked(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="record" value="(\d+)" id="pick-\d+" checked', text)]


def _form(company: Company, records=(), **extra):  # type: ignore[no-untyped-def]
    """The selection form's fields: no date bound, so the sandbox's dates all match."""
    return {"filtered": "1", "company": str(company.id), "from": "", "to": "",
            "record": [str(r) for r in records], **extra}


def _refresh_references(app, client, company) -> None:  # type: ignore[no-untyped-def]
    response = client.hx("POST", f"/mappings/refresh?company={company.id}",
                         token_from="/mappings/")
    assert response.status_code == 202, response.get_data(as_text=True)
    run_jobs(app)  # before any batch is queued: this test never runs the batch job


def _submit(client, company, records, hx=False):  # type: ignore[no-untyped-def]
    if hx:
        return client.hx("POST", NEW, token_from=NEW, data=_form(company, records))
    data = _form(company, records, csrf_token=client.csrf_token(NEW))
    return client.post(NEW, data=data)


def _batch(app, batch_id: int) -> Batch:
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        session.expunge(batch)
        return batch


# ---- the selection grid -------------------------------------------------------------------

def test_grid_lists_unposted_invoices_a_hundred_per_page(app, client, connected):
    expected = _unposted(app)
    assert len(expected) > 100
    first = client.get(NEW, query_string=_form(connected))
    assert first.status_code == 200
    text = first.get_data(as_text=True)
    assert (f'<span id="selection-count">0</span> selected of {len(expected)} unposted '
            "invoice(s)") in text
    assert "Page 1 of 2" in text and 'name="page" value="2"' in text
    page_one = _rows(text)
    assert page_one == [r.cw_id for r in expected[:100]]
    row = expected[0]
    assert f"<td>{row.number}</td>" in text and f"<td>{row.party}</td>" in text
    assert f'<td class="num">{money(row.total, row.currency or "USD", "en_US")}</td>' in text
    second = client.hx("GET", NEW, query_string=_form(connected, at="1", page="2"))
    assert second.status_code == 200
    fragment = second.get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith(
        '<section class="card" id="invoice-selection"')
    assert _rows(fragment) == [r.cw_id for r in expected[100:]]
    assert "Page 2 of 2" in fragment


def test_defaults_come_from_the_company_settings(app, client, connected):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from portal.models import StoredSettings
    from portal.services.company_settings import get_settings

    text = client.get(NEW).get_data(as_text=True)
    assert f'<option value="{connected.id}" selected>Northwind Managed IT (default)' in text
    with session_scope(app) as session:
        zone = get_settings(session, session.get(Company, connected.id)).time_zone
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    assert f'name="to" value="{today}"' in text and 'name="from" value=""' in text
    assert '<option value="Default" selected>Default</option>' in text
    with session_scope(app) as session:
        row = session.get(StoredSettings, connected.id)
        row.values = {**row.values, "service_item_source": "WorkRole",
                      "default_location_ids": [2]}
    locked = client.get(NEW).get_data(as_text=True)
    assert "Locked to Detailed" in locked and "Work role" in locked
    assert '<input type="hidden" name="summary" value="Detailed">' in locked
    assert 'name="location" value="2" checked> East</label>' in locked
    east = [r.cw_id for r in _unposted(app) if r.location_id == 2]
    assert east and _rows(locked) == east[:100]
    # choosing the company again (the select's htmx request) resets to its defaults
    reset = client.hx("GET", NEW, query_string={"company": str(connected.id)})
    assert 'name="location" value="2" checked> East</label>' in reset.get_data(as_text=True)


def test_location_filter(app, client, connected):
    expected = [r for r in _unposted(app) if r.location_id == 3]
    assert expected
    text = client.get(NEW, query_string=_form(connected, location="3")).get_data(as_text=True)
    assert _rows(text) == [r.cw_id for r in expected][:100]
    assert f"of {len(expected)} unposted invoice(s)" in text
    assert 'name="location" value="3" checked> West</label>' in text
    assert "<td>East</td>" not in text and "<td>Corporate</td>" not in text


def test_selection_survives_paging_and_the_bulk_buttons(app, client, connected):
    expected = _unposted(app)
    first, last = expected[0].cw_id, expected[-1].cw_id
    # tick one row on page 1, then go to page 2: it travels in the compact hidden field
    text = client.get(NEW, query_string=_form(connected, [first], at="1", page="2")
                      ).get_data(as_text=True)
    assert f'name="sel" value="{first}"' in text
    assert '1</span> selected of' in text
    # back to page 1 with one more ticked on page 2: both are kept
    text = client.get(NEW, query_string=_form(connected, [last], at="2", page="1",
                                              sel=str(first))).get_data(as_text=True)
    assert first in _checked(text) and f'name="sel" value="{last}"' in text
    assert '2</span> selected of' in text
    everything = client.get(NEW, query_string=_form(connected, act="select_all")
                            ).get_data(as_text=True)
    assert f"{len(expected)}</span> selected of {len(expected)}" in everything
    assert len(_checked(everything)) == 100
    page_two = client.get(NEW, query_string=_form(connected, at="2", act="select_page")
                          ).get_data(as_text=True)
    assert f"{len(expected) - 100}</span> selected of" in page_two
    none = client.get(NEW, query_string=_form(connected, [first], act="select_none")
                      ).get_data(as_text=True)
    assert "0</span> selected of" in none and _checked(none) == []


def test_confirmation_shows_count_and_totals_per_currency(app, client, connected):
    chosen = _unposted(app)[:5]
    text = client.get(NEW, query_string=_form(connected, [r.cw_id for r in chosen],
                                              act="confirm")).get_data(as_text=True)
    assert 'id="batch-confirm"' in text and "Post 5 invoice(s)" in text
    totals: dict[str, Decimal] = {}
    for record in chosen:
        currency = record.currency or "USD"
        totals[currency] = totals.get(currency, Decimal(0)) + Decimal(record.total)
    for currency, amount in totals.items():
        assert f"<li>{money(amount, currency, 'en_US')}</li>" in text
    assert 'method="post" action="/batches/new/invoices"' in text
    assert 'name="csrf_token"' in text
    nothing = client.get(NEW, query_string=_form(connected, act="confirm")).get_data(
        as_text=True)
    assert 'id="batch-confirm"' not in nothing
    assert "Select at least one invoice before submitting." in nothing


def test_an_unknown_kind_is_404(client, login_as):
    login_as("accountant")
    assert client.get("/batches/new/nothing").status_code == 404


def test_without_connections_the_page_says_what_to_set_up(app, client, login_as):
    login_as("admin")
    text = client.get(NEW).get_data(as_text=True)
    assert "No QuickBooks Online company is connected" in text
    assert 'href="/setup/quickbooks"' in text
    with session_scope(app) as session:
        session.add(Company(realm_id="1", qbo_name="Books Inc", is_default=True))
    text = client.get(NEW).get_data(as_text=True)
    assert "ConnectWise is not set up yet" in text and 'href="/setup/connectwise"' in text


def test_a_connectwise_failure_is_shown_inline(app, client, connected, cw_sandbox):
    from tests.integration.batching import clear_faults, fault

    _cw, server = cw_sandbox
    fault(server, kind="error", path_regex="/finance/accounting/unpostedinvoices", status=403,
          count=1, body={"code": "Forbidden", "message": "You do not have access to this."})
    response = client.get(NEW)
    clear_faults(server)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "You do not have access to this." in text
    assert "Add the permissions listed by the probe." in text


# ---- validate only ------------------------------------------------------------------------

def test_validate_only_groups_problems_and_passes_clean_records(app, client, connected):
    from portal.db import get_session

    _refresh_references(app, client, connected)
    rows = _unposted(app)
    acme = [r for r in rows if r.party == "Acme Corp"]
    assert acme
    response = client.hx("GET", f"{NEW}/validate",
                         query_string=_form(connected, [r.cw_id for r in acme]))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert text.lstrip().startswith('<section class="card" id="selection-validation"')
    assert "would stop" in text and "Acme Corp (ACME)" in text
    assert "Fix: Accept the QuickBooks spelling" in text
    assert (f'href="/mappings/customer?q=Acme+Corp+(ACME)&amp;company={connected.id}">'
            "Fix in Mappings</a>") in text
    for record in acme:
        assert record.number in text
    with app.test_request_context():
        from werkzeug.datastructures import MultiDict

        from portal.services import selection

        session = get_session()
        sel = selection.select(session, selection.Form.of(MultiDict(
            _form(connected, [r.cw_id for r in rows]))), "invoices")
        result = selection.validate(session, sel)
    failing = {result.report.numbers[k] for k in result.report.failing()}
    clean = [r for r in rows if r.number not in failing][:3]
    assert clean
    ok = client.hx("GET", f"{NEW}/validate",
                   query_string=_form(connected, [r.cw_id for r in clean]))
    text = ok.get_data(as_text=True)
    assert "No problems found in the 3 selected invoice(s)" in text
    # the document each record would become, built by the batch's own builder
    assert text.count('<details class="document"') == 3
    for record in clean:
        assert f'id="document-inv-{record.cw_id}"' in text
    nothing = client.hx("GET", f"{NEW}/validate", query_string=_form(connected))
    assert "Select at least one invoice" in nothing.get_data(as_text=True)
    page = client.get(f"{NEW}/validate", query_string=_form(connected, [acme[0].cw_id]))
    assert "<html" in page.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0


def test_validate_refuses_to_judge_against_reference_data_never_fetched(app, client,
                                                                        connected):
    record = _unposted(app)[0]
    text = client.hx("GET", f"{NEW}/validate", query_string=_form(
        connected, [record.cw_id])).get_data(as_text=True)
    assert "not fit to judge: never loaded: Customer" in text
    assert "Refresh reference data now" in text and "would stop" not in text


# ---- submit -------------------------------------------------------------------------------

def test_submit_creates_a_batch_and_redirects(app, client, connected):
    chosen = _unposted(app)[:3]
    response = _submit(client, connected, [r.cw_id for r in chosen])
    assert response.status_code == 303, response.get_data(as_text=True)
    batch_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert response.headers["Location"] == f"/batches/{batch_id}"
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        items = session.scalars(sa.select(BatchItem).where(BatchItem.batch_id == batch_id)
                                .order_by(BatchItem.position)).all()
        assert [i.cw_number for i in items] == [r.number for r in chosen]
        assert {i.state for i in items} == {ItemState.SELECTED}
        assert batch.status is BatchStatus.QUEUED and batch.type is BatchType.INVOICE
        assert batch.options["summary"] == "Default" and batch.options["locations"] == []
        assert batch.run.status is RunStatus.QUEUED
    # the records are now flagged and cannot be picked again
    text = client.get(NEW, query_string=_form(connected)).get_data(as_text=True)
    for record in chosen:
        assert f'id="pick-{record.cw_id}"' not in text
        assert f'<a href="/batches/{batch_id}">in batch #{batch_id}</a>' in text
    again = _submit(client, connected, [chosen[0].cw_id])
    assert again.status_code == 409


def test_submit_from_htmx_answers_hx_redirect(app, client, connected):
    record = _unposted(app)[0]
    response = _submit(client, connected, [record.cw_id], hx=True)
    assert response.status_code == 200
    with session_scope(app) as session:
        batch_id = session.scalar(sa.select(Batch.id))
    assert response.headers["HX-Redirect"] == f"/batches/{batch_id}"


def test_a_second_submit_while_the_first_is_queued_is_refused(app, client, connected):
    rows = _unposted(app)
    first = _submit(client, connected, [rows[0].cw_id])
    batch_id = int(first.headers["Location"].rsplit("/", 1)[1])
    second = _submit(client, connected, [rows[1].cw_id, rows[2].cw_id], hx=True)
    assert second.status_code == 409
    text = second.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="batch-refused"')
    assert f"batch #{batch_id}" in text and f'href="/batches/{batch_id}"' in text
    plain = _submit(client, connected, [rows[1].cw_id])
    assert plain.status_code == 409
    page = plain.get_data(as_text=True)
    assert "<html" in page and f"batch #{batch_id}" in page
    assert f"sel={rows[1].cw_id}" in page  # "Back" keeps the selection
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1


def test_submit_needs_a_selection(app, client, connected):
    response = _submit(client, connected, [])
    assert response.status_code == 409
    assert "Select at least one record." in response.get_data(as_text=True)


# ---- one batch ----------------------------------------------------------------------------

def _finish(app, batch_id: int, **item_fields) -> None:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        batch.status = BatchStatus.FINISHED
        batch.colour = "red" if item_fields.get("state") is ItemState.FAILED else "green"
        if batch.run is not None:
            batch.run.status = RunStatus.SUCCEEDED
        for item in session.scalars(sa.select(BatchItem).where(BatchItem.batch_id ==
                                                                 batch_id)):
            for name, value in item_fields.items():
                setattr(item, name, value)
        batch.counts = {(item_fields.get("state") or ItemState.DONE).value: 1}


def test_progress_polls_while_active_and_stops_with_286(app, client, connected):
    record = _unposted(app)[0]
    batch_id = int(_submit(client, connected, [record.cw_id]).headers["Location"]
                   .rsplit("/", 1)[1])
    url = f"/batches/{batch_id}/progress"
    polling = client.hx("GET", url)
    assert polling.status_code == 200 and "HX-Trigger" not in polling.headers
    text = polling.get_data(as_text=True)
    assert text.lstrip().startswith(f'<section class="card" id="batch-{batch_id}-progress"')
    assert 'hx-trigger="every 1s"' in text and "Queued" in text
    assert f'id="batch-{batch_id}-cancel"' in text
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    _finish(app, batch_id)
    done = client.hx("GET", url)
    assert done.status_code == 286 and done.headers["HX-Trigger"] == "run-finished"
    final = done.get_data(as_text=True)
    assert "every 1s" not in final and "Finished" in final and "Green" in final
    assert "Cancel batch" not in final


def test_batch_page_shows_items_links_and_events(app, client, connected, qbo_sandbox,
                                                 cw_sandbox):
    record = _unposted(app)[0]
    batch_id = int(_submit(client, connected, [record.cw_id]).headers["Location"]
                   .rsplit("/", 1)[1])
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert f"Batch #{batch_id}" in page and record.number in page
    assert f'id="batch-{batch_id}-progress"' in page and 'hx-trigger="every 1s"' in page
    assert 'hx-trigger="run-finished from:body"' in page
    assert "admin@example.test" in page  # who started it
    assert "Retry failed items" not in page  # still active
    _finish(app, batch_id, state=ItemState.FAILED,
            message="Customer 'Acme Corp (ACME)' differs from QuickBooks 'ACME Corp (ACME)'.",
            fix_hint="Accept the QuickBooks spelling.",
            fix_link="/mappings/customer?q=Acme%20Corp%20%28ACME%29",
            warnings=["Tax differs by 0.01."])
    with session_scope(app) as session:
        item = session.scalars(sa.select(BatchItem).where(BatchItem.batch_id == batch_id)).one()
        item_id = item.id
        session.add(BatchItemEvent(batch_id=batch_id, item_id=item_id, from_state="selected",
                                   to_state="failed", text="pre-flight: customer near-miss"))
    items = client.hx("GET", f"/batches/{batch_id}/items")
    assert items.status_code == 200
    text = items.get_data(as_text=True)
    assert text.lstrip().startswith(f'<section class="card" id="batch-{batch_id}-items"')
    assert f'<tr id="item-{item_id}" class="item-red">' in text
    assert "Accept the QuickBooks spelling." in text and "Tax differs by 0.01." in text
    assert (f'href="/mappings/customer?q=Acme%20Corp%20%28ACME%29&amp;company='
            f'{connected.id}">Fix in Mappings</a>') in text
    assert "Retry failed items" in text
    assert "<html" in client.get(f"/batches/{batch_id}/items").get_data(as_text=True)
    events = client.hx("GET", f"/batches/{batch_id}/items/{item_id}/events")
    body = events.get_data(as_text=True)
    assert body.lstrip().startswith(f'<div id="item-{item_id}-events"')
    assert "selected → failed" in body and "pre-flight: customer near-miss" in body
    assert "<html" in client.get(f"/batches/{batch_id}/items/{item_id}/events").get_data(
        as_text=True)
    assert client.get(f"/batches/{batch_id}/items/{item_id + 99}/events").status_code == 404
    # a posted item links to its QuickBooks document
    with session_scope(app) as session:
        item = session.get(BatchItem, item_id)
        item.state, item.qbo_entity, item.qbo_id, item.qbo_doc_number = (
            ItemState.DONE, "CreditMemo", "77", record.number)
    text = client.hx("GET", f"/batches/{batch_id}/items").get_data(as_text=True)
    _qbo, qbo_server = qbo_sandbox  # environment "custom": the simulator's own pages
    assert f'href="{qbo_server.url}/app/creditmemo?txnId=77"' in text
    _cw, cw_server = cw_sandbox
    assert (f'href="{cw_server.url}/v4_6_release/ConnectWise.aspx?routeTo=InvoiceFV&amp;'
            f'recid={record.cw_id}"') in text
    assert client.get("/batches/999999").status_code == 404


def test_preflight_problems_of_a_blocked_batch_are_grouped(app, client, connected):
    record = _unposted(app)[0]
    batch_id = int(_submit(client, connected, [record.cw_id]).headers["Location"]
                   .rsplit("/", 1)[1])
    with session_scope(app) as session:
        batch = session.get(Batch, batch_id)
        batch.preflight = [{"message": "GL account 'Sales:Cloud Services' is missing.",
                            "hint": "Create the account in QuickBooks.", "kind": "account",
                            "value": "Sales:Cloud Services", "link": None,
                            "records": ["10021", "10022"]}]
    _finish(app, batch_id, state=ItemState.FAILED)
    text = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Pre-flight problems" in text and "2 record(s): 10021, 10022" in text
    assert "Fix: Create the account in QuickBooks." in text
    assert (f'href="/mappings/account?q=Sales:Cloud+Services&amp;company={connected.id}">'
            "Fix in Mappings</a>") in text


def test_retry_and_cancel(app, client, connected):
    rows = _unposted(app)
    batch_id = int(_submit(client, connected, [rows[0].cw_id]).headers["Location"]
                   .rsplit("/", 1)[1])
    token = client.csrf_token(f"/batches/{batch_id}")
    refused = client.post(f"/batches/{batch_id}/retry", data={"csrf_token": token})
    assert refused.status_code == 409 and "still running" in refused.get_data(as_text=True)
    cancel = client.post(f"/batches/{batch_id}/cancel", data={"csrf_token": token})
    assert cancel.status_code == 303 and cancel.headers["Location"] == f"/batches/{batch_id}"
    assert _batch(app, batch_id).cancel_requested_by == "admin@example.test"
    assert "Cancel requested by admin@example.test" in client.get(
        f"/batches/{batch_id}").get_data(as_text=True)
    _finish(app, batch_id, state=ItemState.FAILED, message="QuickBooks refused it.")
    assert client.post(f"/batches/{batch_id}/cancel",
                       data={"csrf_token": token}).status_code == 409
    retried = client.post(f"/batches/{batch_id}/retry", data={"csrf_token": token})
    assert retried.status_code == 303, retried.get_data(as_text=True)
    new_id = int(retried.headers["Location"].rsplit("/", 1)[1])
    assert new_id != batch_id
    with session_scope(app) as session:
        new = session.get(Batch, new_id)
        assert new.trigger == f"retry-of:{batch_id}" and new.status is BatchStatus.QUEUED
        states = dict(session.execute(sa.select(BatchItem.batch_id, BatchItem.state)).all())
        assert states == {batch_id: ItemState.RETRIED, new_id: ItemState.SELECTED}
    page = client.get(f"/batches/{new_id}").get_data(as_text=True)
    assert f'href="/batches/{batch_id}">batch #{batch_id}</a>' in page


def test_batch_csv_is_formula_safe(app, client, connected):
    record = _unposted(app)[0]
    batch_id = int(_submit(client, connected, [record.cw_id]).headers["Location"]
                   .rsplit("/", 1)[1])
    _finish(app, batch_id, state=ItemState.FAILED, message="=HYPERLINK(\"http://x\")",
            fix_hint="@SUM(A1)")
    response = client.get(f"/batches/{batch_id}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="batch-{batch_id}.csv"'
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("record,date,party,state")
    assert lines[1].startswith(f"{record.number},")
    assert "'=HYPERLINK" in lines[1] and ",'@SUM(A1)," in lines[1]


# ---- the review list ----------------------------------------------------------------------

def _make_batches(app, company_id: int, count: int, **fields):  # type: ignore[no-untyped-def]
    ids = []
    with session_scope(app) as session:
        for n in range(count):
            batch = Batch(type=fields.get("type", BatchType.INVOICE), company_id=company_id,
                          status=fields.get("status", BatchStatus.FINISHED),
                          colour=fields.get("colour", "green"),
                          trigger=fields.get("trigger", "autosync"), options={},
                          counts={"done": 2, "failed": 1}, totals={"USD": "10.00"},
                          preflight=[])
            session.add(batch)
            session.flush()
            session.add(BatchItem(batch_id=batch.id, record_key=f"inv:{batch.id}",
                                  cw_number=fields.get("number", f"R{batch.id}"),
                                  state=ItemState.DONE, warnings=[]))
            ids.append(batch.id)
    return ids


@pytest.fixture()
def companies(app, login_as):  # type: ignore[no-untyped-def]
    login_as("viewer")
    with session_scope(app) as session:
        one = Company(realm_id="1", qbo_name="Northwind", is_default=True)
        two = Company(realm_id="2", qbo_name="Northwind Canada")
        session.add_all([one, two])
        session.flush()
        return one.id, two.id


def _list_ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="batch-(\d+)"', text)]


def test_review_list_pages_by_keyset(app, client, companies):
    ids = _make_batches(app, companies[0], 60)
    page = client.get("/batches/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    shown = _list_ids(text)
    assert shown == sorted(ids, reverse=True)[:50]
    last = shown[-1]
    assert f'hx-get="/batches/rows?before={last}" hx-trigger="revealed"' in text
    assert text.count('hx-trigger="revealed"') == 1
    more = client.hx("GET", f"/batches/rows?before={last}")
    body = more.get_data(as_text=True)
    assert body.lstrip().startswith(f'<tbody id="batch-rows-{last}"')
    assert _list_ids(body) == sorted(ids, reverse=True)[50:]
    assert "revealed" not in body  # fewer than 50: the end
    assert "<html" in client.get(f"/batches/rows?before={last}").get_data(as_text=True)


def test_review_list_filters_are_in_the_url(app, client, companies):
    green = _make_batches(app, companies[0], 2)
    red = _make_batches(app, companies[0], 2, colour="red", type=BatchType.EXPENSE)
    other = _make_batches(app, companies[1], 1, number="10042")

    def shown(query: str) -> list[int]:
        response = client.hx("GET", f"/batches/?{query}")
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert text.lstrip().startswith('<section class="card" id="batch-list"')
        return sorted(_list_ids(text))

    assert shown("colour=red") == red
    assert shown("type=expense") == red
    assert shown("type=invoice") == sorted(green + other)
    assert shown(f"company={companies[1]}") == other
    assert shown("record=10042") == other
    assert shown("colour=red&type=invoice") == []
    assert "No batch matches these filters." in client.get("/batches/?colour=yellow").get_data(
        as_text=True)
    assert shown("from=2000-01-01&to=2999-12-31") == sorted(green + red + other)
    assert shown("to=2000-01-01") == []
    retried = _make_batches(app, companies[0], 1, trigger="retry-of:1",
                            status=BatchStatus.CANCELLED, colour="grey")
    assert shown("status=cancelled") == retried
    assert shown("trigger=retry") == retried
    assert shown("trigger=autosync") == sorted(green + red + other)
    assert shown("status=bogus&trigger=bogus") == sorted(green + red + other + retried)
    page = client.get("/batches/?colour=red").get_data(as_text=True)
    assert '<option value="red" selected>Red</option>' in page
    assert 'href="/batches/export.csv?colour=red"' in page


def test_review_list_empty_state(client, companies):
    text = client.get("/batches/").get_data(as_text=True)
    assert "No batch has run yet." in text


def test_list_csv_is_filtered_and_formula_safe(app, client, companies):
    _make_batches(app, companies[0], 1, trigger="=SUM(A1)")
    _make_batches(app, companies[1], 1, trigger="-2+3")
    response = client.get(f"/batches/export.csv?company={companies[0]}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("batch,type,company,colour")
    assert len(lines) == 2 and ",'=SUM(A1)," in lines[1] and "Northwind," in lines[1]
    both = client.get("/batches/export.csv").get_data(as_text=True).splitlines()
    assert len(both) == 3 and any(",'-2+3," in line for line in both)


# ---- roles --------------------------------------------------------------------------------

def test_a_viewer_can_look_but_not_submit(app, client, companies):
    [batch_id] = _make_batches(app, companies[0], 1)
    assert client.get("/batches/").status_code == 200
    assert client.get(f"/batches/{batch_id}").status_code == 200
    assert client.get(f"/batches/{batch_id}/progress").status_code == 200
    assert client.get(f"/batches/{batch_id}.csv").status_code == 200
    assert client.get(NEW).status_code == 403
    assert client.get(f"{NEW}/validate").status_code == 403
    token = client.csrf_token("/batches/")
    assert client.post(NEW, data={"csrf_token": token}).status_code == 403
    assert client.post(f"/batches/{batch_id}/retry", data={"csrf_token": token}
                       ).status_code == 403
    assert client.post(f"/batches/{batch_id}/cancel", data={"csrf_token": token}
                       ).status_code == 403
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0


def test_grid_flags_go_live_near_miss_and_posted_not_marked(app, client, connected):
    from portal.services import company_settings

    rows = _unposted(app)
    old, held = rows[0], rows[1]
    with session_scope(app) as session:  # as clearing old transactions sets it (SPEC 12)
        from portal.models import StoredSettings

        company_settings.get_settings(session, session.get(Company, connected.id))
        stored = session.scalar(sa.select(StoredSettings).where(
            StoredSettings.company_id == connected.id))
        stored.values = {**stored.values, "go_live_date": date.fromordinal(
            old.day.toordinal() + 1).isoformat()}
        session.commit()
    _refresh_references(app, client, connected)
    batch_id = int(_submit(client, connected, [held.cw_id]).headers["Location"]
                   .rsplit("/", 1)[1])
    _finish(app, batch_id, state=ItemState.POSTED, qbo_id="9", message="not marked")
    client.hx("POST", f"/mappings/scan?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    text = client.get(NEW, query_string=_form(connected)).get_data(as_text=True)
    old_row = re.search(rf'<tr id="record-{old.cw_id}".*?</tr>', text, re.S).group(0)
    assert "before go-live" in old_row and 'name="record"' in old_row  # flagged, selectable
    held_row = re.search(rf'<tr id="record-{held.cw_id}".*?</tr>', text, re.S).group(0)
    assert f"posted, not marked (batch #{batch_id})" in held_row
    assert 'name="record"' not in held_row  # live in a batch: cannot be picked
    acme = next(i for i, r in enumerate(rows) if r.party == "Acme Corp")
    text = client.get(NEW, query_string=_form(connected, page=str(acme // 100 + 1))
                      ).get_data(as_text=True)
    acme_row = re.search(rf'<tr id="record-{rows[acme].cw_id}".*?</tr>', text, re.S)
    assert "near-miss" in acme_row.group(0)  # from the last backlog check


# ---- date filters say what is wrong ----------------------------------------------------------

@pytest.mark.parametrize(("dates", "field", "message"), [
    ({"from": "2025-03-31", "to": "2025-03-01"}, "to",
     "The end date 2025-03-01 is before the start date 2025-03-31"),
    ({"from": "last tuesday"}, "from", "‘last tuesday’ is not a date: enter it as YYYY-MM-DD"),
    ({"to": "2025-02-30"}, "to", "‘2025-02-30’ is not a date"),
])
def test_a_bad_date_on_the_selection_grid_is_named_beside_its_field(
        app, client, connected, dates, field, message):
    chosen = _unposted(app)[0].cw_id
    response = client.hx("GET", NEW, query_string=_form(connected, [chosen], **dates))
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<span class="error" id="selection-{field}-error">{message}' in text
    assert f'aria-describedby="selection-{field}-error"' in text
    assert _rows(text) == [] and "No unposted invoice" not in text
    assert "Correct the invoice dates above" in text
    assert f'name="sel" value="{chosen}"' in text  # the selection waits for the fix
    refused = client.hx("POST", NEW, token_from=NEW, data=_form(connected, [chosen], **dates))
    assert refused.status_code == 409 and message in refused.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0


def test_a_bad_date_on_the_review_list_is_named_beside_its_field(app, client, companies):
    _make_batches(app, companies[0], 2)
    plain = client.get("/batches/?from=2025-03-31&to=2025-03-01").get_data(as_text=True)
    assert ('<span class="error" id="filter-to-error">The end date 2025-03-01 is before the '
            'start date 2025-03-31') in plain
    assert "No batch matches" not in plain and _list_ids(plain) == []
    assert "Correct the dates above" in plain
    fragment = client.hx("GET", "/batches/?from=soon").get_data(as_text=True)
    assert ('<span class="error" id="filter-from-error" hx-swap-oob="true">‘soon’ is not a '
            'date') in fragment
    assert '<span class="error" id="filter-to-error" hx-swap-oob="true"></span>' in fragment
    assert "Correct the dates above" in fragment
    good = client.hx("GET", "/batches/?from=2000-01-01").get_data(as_text=True)
    assert '<span class="error" id="filter-from-error" hx-swap-oob="true"></span>' in good
    assert len(_list_ids(good)) == 2


def test_the_review_list_and_csv_show_what_was_posted_of_what_was_selected(
        app, client, companies):
    """A batch blocked by pre-flight posted nothing: it must not read as its full amount."""
    ids = []
    with session_scope(app) as session:
        for states in ((ItemState.DONE, ItemState.FAILED), (ItemState.FAILED,
                                                             ItemState.SKIPPED)):
            batch = Batch(type=BatchType.INVOICE, company_id=companies[0],
                          status=BatchStatus.FINISHED, colour="red", trigger="autosync",
                          options={}, counts={}, totals={"USD": "30.00"}, preflight=[])
            session.add(batch)
            session.flush()
            for n, (state, amount) in enumerate(zip(states, ("12.50", "17.50"))):
                session.add(BatchItem(batch_id=batch.id, record_key=f"inv:{batch.id}-{n}",
                                      cw_number=f"{batch.id}-{n}", state=state,
                                      cw_amount=Decimal(amount), warnings=[]))
            ids.append(batch.id)
    half, nothing = ids
    text = client.get("/batches/").get_data(as_text=True)
    assert "Amount posted of selected" in text
    row = re.search(rf'<tr id="batch-{half}".*?</tr>', text, re.S).group(0)
    assert "$12.50 of $30.00" in row
    row = re.search(rf'<tr id="batch-{nothing}".*?</tr>', text, re.S).group(0)
    assert "$0.00 of $30.00" in row and "$30.00 of" not in row
    lines = client.get("/batches/export.csv").get_data(as_text=True).splitlines()
    header = lines[0].split(",")
    assert header[11:14] == ["currency", "selected_amount", "posted_amount"]
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert rows[str(half)][11:14] == ["USD", "30.00", "12.50"]
    assert rows[str(nothing)][11:14] == ["USD", "30.00", "0.00"]
