"""Invoice batches end to end: both sandboxes over HTTP, a real RQ worker, real stores."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import BatchStatus, Company, ItemState, JobRun, RunStatus
from portal.services import company_settings
from tests.conftest import run_jobs
from tests.integration.batching import (batch_of, clear_faults, cw_batches, fault,
                                        faults_fired, numbers_in, qbo_documents, qbo_state,
                                        retry_and_run, states, submit, unposted)

pytestmark = pytest.mark.integration


@pytest.fixture()
def ready(app, client, connected):  # type: ignore[no-untyped-def]
    """Connected, with classes and locations on, so every field of SPEC 7 is written."""
    with session_scope(app) as session:
        company = session.get(Company, connected.id)
        if company.class_tracking != "none" and company.track_locations:
            saved = company_settings.save_tab(session, company, "categories", {
                "use_classes": ["", "y"], "create_classes": ["", "y"],
                "use_locations": ["", "y"], "create_locations": ["", "y"],
                "location_source": "Class"}, None)
            assert not isinstance(saved, list), saved
        session.commit()
    return connected


def cw_invoices_by_number(cw_sandbox):  # type: ignore[no-untyped-def]
    sandbox, _server = cw_sandbox
    with sandbox.store.lock:
        terms = sandbox.store.tables["billing_terms"]
        return {inv["invoiceNumber"]: dict(inv, _termsXref=terms[inv["billingTerms"]["id"]].get(
            "termsXref") or inv["billingTerms"]["name"])
            for inv in sandbox.store.tables["invoices"].values()}


def _blocked_then_clean(app, qbo_sandbox, cw_sandbox, company):  # type: ignore[no-untyped-def]
    """Submit the whole backlog: pre-flight blocks it and nothing is written anywhere."""
    _qbo, server = qbo_sandbox
    before_docs = qbo_documents(server, company.realm_id)
    before_unposted = {r.number for r in unposted(app)}
    before_cw = cw_batches(cw_sandbox)
    batch_id = submit(app)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and batch.colour == "red", batch.message
    assert batch.preflight and "nothing was written" in batch.message
    failed = [i for i in items if i.state is ItemState.FAILED]
    assert failed and all(i.message and i.fix_hint for i in failed)
    assert qbo_documents(server, company.realm_id) == before_docs
    assert {r.number for r in unposted(app)} == before_unposted
    assert cw_batches(cw_sandbox) == before_cw
    return numbers_in(items, ItemState.SKIPPED)


def test_a_blocked_selection_writes_nothing_and_the_clean_records_post(
        app, client, ready, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    clean = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    assert "needs attention: Pre-flight found" in client.get("/").get_data(as_text=True)
    assert len(clean) >= 20
    cw_before = {r.number: r for r in unposted(app)}
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    assert batch.colour in ("green", "yellow"), [(i.cw_number, i.state, i.message)
                                                   for i in items if i.message]
    assert set(states(items)) == {"done"}
    assert batch.settings_snapshot["use_classes"] is (ready.class_tracking != "none"
                                                      and ready.track_locations)
    # ConnectWise: exactly those invoices left the unposted list, one accounting batch each.
    assert {r.number for r in unposted(app)} == set(cw_before) - clean
    marks = [b for b in cw_batches(cw_sandbox) if b["batchIdentifier"].split("-I")[-1] in clean]
    assert len(marks) == len(clean)
    assert {i.cw_batch_identifier for i in items} == {b["batchIdentifier"] for b in marks}
    # QuickBooks: one document per invoice, equal to what ConnectWise holds.
    docs = {d["DocNumber"]: d for d in qbo_documents(server, ready.realm_id)
            if d["DocNumber"] in clean}
    assert set(docs) == clean
    numbers = [d["DocNumber"] for d in qbo_documents(server, ready.realm_id)]
    assert len(numbers) == len(set(numbers)), "a DocNumber was posted twice"
    held = cw_invoices_by_number(cw_sandbox)
    assert any(held[n].get("type") == "CreditMemo" for n in clean)  # credit memos too
    assert any(any(ln["taxableFlag"] for ln in held[n]["_lines"]) for n in clean)  # and tax
    entities = qbo_state(server, ready.realm_id)
    terms = {t["Id"]: t["Name"] for t in entities["Term"]}
    items_by_id = {i["Id"]: i.get("FullyQualifiedName") or i["Name"] for i in entities["Item"]}
    classes_on = batch.settings_snapshot["use_classes"]
    for item in items:
        doc = docs[item.cw_number]
        row = cw_before[item.cw_number]
        cw = held[item.cw_number]
        sign = -1 if cw.get("type") == "CreditMemo" or cw["total"] < 0 else 1
        assert doc["_entity"] == ("CreditMemo" if sign < 0 else "Invoice") == item.qbo_entity
        assert doc["Id"] == item.qbo_id
        assert Decimal(str(doc["TotalAmt"])) == abs(Decimal(row.total)), item.cw_number
        assert Decimal(str((doc.get("TxnTaxDetail") or {}).get("TotalTax") or 0)) == \
            abs(Decimal(str(cw["salesTax"]))).quantize(Decimal("0.01"))
        assert doc["TxnDate"] == row.day.isoformat()
        if sign > 0:
            assert doc["DueDate"] == cw["dueDate"][:10]
        assert f"portal:{item.request_token}" in doc["PrivateNote"]
        company = cw["company"]["name"]
        assert doc["CustomerRef"]["name"].split(":")[-1].startswith(company.split(":")[-1])
        assert terms[doc["SalesTermRef"]["value"]] == cw["_termsXref"]
        if cw.get("customerPO"):
            assert doc["CustomerMemo"]["value"] == f"PO {cw['customerPO']}"
        if classes_on and cw.get("_glClass"):
            assert doc["DepartmentRef"]["name"] == cw["_glClass"]
        lines = [ln for ln in doc["Line"] if ln.get("DetailType") == "SalesItemLineDetail"]
        sales = [ln for ln in cw["_lines"] if ln["glTypeId"] == "RP"]
        assert len(lines) == len(sales), item.cw_number
        for qbo_line, cw_line in zip(lines, sales):
            detail = qbo_line["SalesItemLineDetail"]
            assert Decimal(str(qbo_line["Amount"])) == Decimal(str(-cw_line["total"] * sign))
            if cw_line.get("item"):
                assert items_by_id[detail["ItemRef"]["value"]] == cw_line["item"]["identifier"]
            if classes_on and cw_line["glClass"]:
                assert detail["ClassRef"]["name"] == cw_line["glClass"]
            assert detail["TaxCodeRef"]["value"] == ("TAX" if cw_line["taxableFlag"] else "NON")
        assert sum(Decimal(str(ln["Amount"])) for ln in lines) + Decimal(
            str((doc.get("TxnTaxDetail") or {}).get("TotalTax") or 0)) == abs(
            Decimal(row.total))
    with session_scope(app) as session:
        run = session.get(JobRun, batch.run_id)
        assert run.status is RunStatus.SUCCEEDED
    assert f"Batch #{batch_id} posted {len(clean)} record(s)." in client.get("/").get_data(
        as_text=True)  # the dashboard's step 8
    assert batch.qbo_requests / len(items) <= 1


def test_faults_on_both_sides_end_with_no_duplicate_and_every_record_settled(
        app, ready, qbo_sandbox, cw_sandbox):
    qbo, qbo_server = qbo_sandbox
    cw, cw_server = cw_sandbox
    clean = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    requests_switch = {"sim.qbo_retry_after_header": False}
    import requests as http

    http.post(f"{qbo_server.url}/_sim/switches", json=requests_switch, timeout=5)
    realm = ready.realm_id
    fault(qbo_server, kind="error", path_regex=f"/v3/company/{realm}/batch/item/invoice",
          rate=0.1)
    fault(qbo_server, kind="error", method="POST", path_regex=r"/batch$", count=1, after=2,
          status=503)
    fault(qbo_server, kind="throttle", path_regex=r"/v3/company/", count=2, after=3)
    fault(qbo_server, kind="drop_after_commit", method="POST", path_regex=r"/batch$", count=1,
          after=1)
    fault(qbo_server, kind="token_expire", path_regex=r"/v3/company/", count=1, after=5)
    fault(cw_server, kind="error", path_regex=r"/finance/accounting/batches", rate=0.1,
          status=503)
    batch_id = submit(app, clean)
    run_jobs(app)
    faults_fired(qbo_server, cw_server)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED, batch.message
    for item in items:
        assert item.state in (ItemState.DONE, ItemState.FAILED, ItemState.UNCERTAIN,
                              ItemState.POSTED), item.state
        if item.state is not ItemState.DONE:
            assert item.message, item.cw_number
    numbers = [d["DocNumber"] for d in qbo_documents(qbo_server, realm)]
    assert len(numbers) == len(set(numbers)), "a DocNumber was posted twice"
    posted = {i.cw_number for i in items if i.qbo_id}
    assert posted <= set(numbers)
    done = numbers_in(items, ItemState.DONE)
    assert len(done) >= len(clean) * 0.8
    # Whatever is left, a retry settles without posting twice.
    if set(states(items)) != {"done"}:
        _again, retried = batch_of(app, retry_and_run(app, batch_id))
        assert set(states(retried)) == {"done"}, [(i.cw_number, i.message) for i in retried]
    numbers = [d["DocNumber"] for d in qbo_documents(qbo_server, realm)]
    assert len(numbers) == len(set(numbers))
    assert clean <= set(numbers)
    assert not clean & {r.number for r in unposted(app)}


def test_a_second_batch_for_a_busy_company_is_refused_naming_the_first(app, ready):
    from portal.services import batches

    first = submit(app, {r.number for r in unposted(app)[:2]})
    with session_scope(app) as session:
        company = session.get(Company, ready.id)
        rows = unposted(app)[2:4]
        with pytest.raises(batches.BatchRefused) as refused:
            batches.submit(session, company, rows, user=None, options={})
    assert f"busy with batch #{first}" in str(refused.value)
    assert refused.value.holder.id == first


def test_a_revoked_connection_pauses_the_batch_and_a_reconnect_resumes_it(
        app, client, ready, qbo_sandbox, cw_sandbox):
    from tests.integration.connect import consent

    _qbo, server = qbo_sandbox
    clean = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    app.config["QBO_BATCH_SIZE"] = 5
    fault(server, kind="revoke", method="POST", path_regex=r"/batch$", count=1, after=6)
    batch_id = submit(app, clean)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.PAUSED and "Reconnect needed" in batch.message
    # what was posted before the pause is marked in ConnectWise (it needs no QuickBooks)
    assert 0 < states(items)["done"] < len(clean) and not states(items)["posted"]
    assert all(i.message and "Resume" in i.message for i in items
               if i.state in (ItemState.SELECTED, ItemState.VALIDATED))
    response, _params = consent(client)
    assert response.status_code == 303
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert "Resume batch" in page
    resumed = client.post(f"/batches/{batch_id}/resume",
                          data={"csrf_token": client.csrf_token(f"/batches/{batch_id}")})
    assert resumed.status_code == 303
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.FINISHED and set(states(items)) == {"done"}
    numbers = [d["DocNumber"] for d in qbo_documents(server, ready.realm_id)]
    assert len(numbers) == len(set(numbers)) and clean <= set(numbers)



def test_a_tax_code_mapping_lets_the_two_level_code_post_with_cw_tax(
        app, client, ready, qbo_sandbox, cw_sandbox):
    """US manual tax: the mapped code on the header, ConnectWise's tax amount kept."""
    from portal.models import QboRef
    from portal.services import tax_mapping

    _qbo, server = qbo_sandbox
    client.hx("POST", f"/mappings/refresh?company={ready.id}", token_from="/mappings/")
    run_jobs(app)
    before = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    with session_scope(app) as session:
        code = session.scalar(sa.select(QboRef).where(QboRef.entity == "TaxCode",
                                                      QboRef.name == "NYC Combined"))
        tax_mapping.save(session, session.get(Company, ready.id), "NYC", code.qbo_id)
        session.commit()
        code_id = code.qbo_id
    nyc = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready) - before
    assert nyc, "no invoice uses the two-level code"
    batch_id = submit(app, nyc)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"}, [(i.cw_number, i.message) for i in items]
    held = cw_invoices_by_number(cw_sandbox)
    for doc in qbo_documents(server, ready.realm_id):
        if doc["DocNumber"] in nyc:
            detail = doc["TxnTaxDetail"]
            assert detail["TxnTaxCodeRef"]["value"] == code_id
            assert Decimal(str(detail["TotalTax"])) == Decimal(
                str(held[doc["DocNumber"]]["salesTax"])).quantize(Decimal("0.01"))
            assert any(ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"
                       for ln in doc["Line"] if ln.get("DetailType") == "SalesItemLineDetail")


def test_cancelling_a_paused_batch_frees_the_unsent_records(app, client, ready, qbo_sandbox,
                                                            cw_sandbox):
    _qbo, server = qbo_sandbox
    clean = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    app.config["QBO_BATCH_SIZE"] = 5
    fault(server, kind="revoke", method="POST", path_regex=r"/batch$", count=1, after=6)
    batch_id = submit(app, clean)
    run_jobs(app)
    token = client.csrf_token(f"/batches/{batch_id}")
    assert client.post(f"/batches/{batch_id}/cancel",
                       data={"csrf_token": token}).status_code == 303
    batch, items = batch_of(app, batch_id)
    assert batch.status is BatchStatus.CANCELLED and not batch.active
    counts = states(items)
    assert counts["skipped"] and counts["done"] and "selected" not in counts
    assert batch.colour == "grey"  # cancelled, and what was posted before is marked
    assert all(i.message == "cancelled by admin@example.test" for i in items
               if i.state is ItemState.SKIPPED)
    skipped = numbers_in(items, ItemState.SKIPPED)
    with session_scope(app) as session:  # freed: they can join a new batch
        from portal.services import batches

        assert not batches.live_items(session, [f"inv:{i.cw_id}" for i in items
                                                if i.cw_number in skipped])


def test_a_refused_marking_leaves_posted_not_marked_and_retry_marks_without_reposting(
        app, client, ready, qbo_sandbox, cw_sandbox):
    _qbo, qbo_server = qbo_sandbox
    _cw, cw_server = cw_sandbox
    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:3]
    fault(cw_server, kind="error", method="POST", path_regex="/finance/accounting/batches$",
          count=1, status=403, body={"code": "Forbidden", "message": "Insufficient rights"})
    batch_id = submit(app, set(clean))
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    [refused] = [i for i in items if i.state is ItemState.POSTED]
    assert refused.message == "ConnectWise refused to create the accounting batch."
    assert "Accounting Interface" in refused.fix_hint and refused.colour == "red"
    assert batch.colour == "red" and "posted but not marked" in batch.message
    posted_before = len(qbo_documents(qbo_server, ready.realm_id))
    response = client.post(f"/batches/{batch_id}/retry",
                           data={"csrf_token": client.csrf_token(f"/batches/{batch_id}")})
    assert response.status_code == 303
    run_jobs(app)
    retry_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    retry, [copy] = batch_of(app, retry_id)
    assert copy.state is ItemState.DONE and copy.qbo_id == refused.qbo_id
    assert retry.colour in ("green", "yellow") and retry.trigger == f"retry-of:{batch_id}"
    assert len(qbo_documents(qbo_server, ready.realm_id)) == posted_before  # not posted again
    assert refused.cw_number not in {r.number for r in unposted(app)}


@pytest.mark.parametrize("summary", ["Condensed", "Detailed"])
def test_summary_levels_read_time_entries_and_tickets_for_descriptions(
        app, ready, qbo_sandbox, cw_sandbox, summary):
    _qbo, server = qbo_sandbox
    clean = _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    held = cw_invoices_by_number(cw_sandbox)
    timed = {n for n in clean if any("timeEntry" in ln for ln in held[n]["_lines"])}
    assert timed
    batch_id = submit(app, timed, summary=summary)
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    assert set(states(items)) == {"done"}, [(i.cw_number, i.message) for i in items]
    assert batch.options["summary"] == summary
    for doc in qbo_documents(server, ready.realm_id):
        if doc["DocNumber"] not in timed:
            continue
        texts = [ln.get("Description", "") for ln in doc["Line"]
                 if ln.get("DetailType") == "SalesItemLineDetail"]
        if summary == "Detailed":
            assert any("Work role: " in t and "Resource: " in t for t in texts), texts
        else:
            assert any(t.startswith(("Ticket #", "Project ")) for t in texts), texts
        assert Decimal(str(doc["TotalAmt"])) == Decimal(str(held[doc["DocNumber"]]["total"]))


def test_item_events_show_the_payload_to_admins_only(app, client, ready, qbo_sandbox,
                                                     cw_sandbox, login_as):
    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:1]
    batch_id = submit(app, set(clean))
    run_jobs(app)
    _batch, [item] = batch_of(app, batch_id)
    url = f"/batches/{batch_id}/items/{item.id}/events"
    text = client.hx("GET", url).get_data(as_text=True)
    assert "validated → posting" in text and "posted → marked" in text
    assert "payload" in text and f'"DocNumber": "{item.cw_number}"' in text.replace(
        "&#34;", '"')
    client.post("/auth/logout", data={"csrf_token": client.csrf_token("/")})
    login_as("viewer")
    text = client.hx("GET", url).get_data(as_text=True)
    assert "posted → marked" in text and "DocNumber" not in text


def test_three_unknown_outcomes_make_a_record_uncertain_and_retry_settles_it(
        app, client, ready, qbo_sandbox, cw_sandbox):
    """SystemFaults on every write: looked up (not there), re-posted, three times; then
    uncertain (red, still live). Retry begins with a lookup and posts it once."""
    _qbo, server = qbo_sandbox
    [number] = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:1]
    realm = ready.realm_id
    fault(server, kind="error", path_regex=f"/v3/company/{realm}/batch/item/invoice", count=1)
    fault(server, kind="error", method="POST", path_regex=f"/v3/company/{realm}/invoice$",
          status=503, count=6)
    batch_id = submit(app, {number})
    run_jobs(app)
    clear_faults(server)
    batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.UNCERTAIN and item.unknown_outcomes == 3
    assert "did not confirm" in item.message and batch.colour == "red"
    assert number not in {d["DocNumber"] for d in qbo_documents(server, realm)}
    with session_scope(app) as session:  # still live: it cannot be selected again
        from portal.services import batches

        assert batches.live_items(session, [item.record_key])
    response = client.post(f"/batches/{batch_id}/retry",
                           data={"csrf_token": client.csrf_token(f"/batches/{batch_id}")})
    run_jobs(app)
    retry_id = int(response.headers["Location"].rsplit("/", 1)[1])
    _retry, [copy] = batch_of(app, retry_id)
    assert copy.state is ItemState.DONE and copy.request_token == item.request_token
    assert [d["DocNumber"] for d in qbo_documents(server, realm)].count(number) == 1


def test_a_rejected_document_fails_with_the_mapped_hint_and_the_others_post(
        app, client, ready, qbo_sandbox, cw_sandbox):
    _qbo, server = qbo_sandbox
    clean = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[:3]
    fault(server, kind="error", path_regex=f"/v3/company/{ready.realm_id}/batch/item/invoice",
          count=1, body={"Fault": {"type": "ValidationFault", "Error": [{
              "Message": "Duplicate Document Number Error", "code": "6140",
              "Detail": "Duplicate Document Number Error : You must specify a different "
                        "number. This number has already been used."}]}})
    batch_id = submit(app, set(clean))
    run_jobs(app)
    batch, items = batch_of(app, batch_id)
    [failed] = [i for i in items if i.state is ItemState.FAILED]
    assert "Duplicate Document Number Error" in failed.message and "(code 6140)" in failed.message
    assert failed.fix_hint.startswith("Renumber or delete that document in QuickBooks")
    assert failed.request_token is None  # a failed record gets a fresh token next time
    assert states(items)["done"] == 2 and batch.colour == "red"
    assert failed.cw_number in {r.number for r in unposted(app)}  # not marked either
    response = client.post(f"/batches/{batch_id}/retry",
                           data={"csrf_token": client.csrf_token(f"/batches/{batch_id}")})
    run_jobs(app)
    _retry, [copy] = batch_of(app, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert copy.state is ItemState.DONE and copy.request_token


@pytest.mark.parametrize("skip", [True, False])
def test_a_zero_invoice_is_marked_without_a_document_when_asked(
        app, ready, qbo_sandbox, cw_sandbox, skip):
    from portal.sandbox.demo_data import CURATED

    _qbo, server = qbo_sandbox
    zero = CURATED["connectwise"]["zero_invoice_number"]
    assert zero in _blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready)
    with session_scope(app) as session:
        company = session.get(Company, ready.id)
        values = company_settings.form_values(company_settings.get_settings(session, company),
                                              "sales", company)
        values["skip_zero_invoices"] = ["", "y"] if skip else [""]
        saved = company_settings.save_tab(session, company, "sales", values, None)
        assert not isinstance(saved, list), saved
        session.commit()
    batch_id = submit(app, {zero})
    run_jobs(app)
    _batch, [item] = batch_of(app, batch_id)
    assert item.state is ItemState.DONE
    posted = zero in {d["DocNumber"] for d in qbo_documents(server, ready.realm_id)}
    assert posted is not skip and (item.qbo_id is None) is skip
    assert ("zero invoice, not posted" in item.warnings) is skip
    assert zero not in {r.number for r in unposted(app)}  # marked in ConnectWise either way


def test_adopt_links_a_document_posted_outside_portal_and_marks_without_posting(
        app, client, ready, qbo_sandbox, cw_sandbox):
    """An invoice already in QuickBooks under its number (typed by hand, or by the tool
    portal replaces): pre-flight refuses it, Adopt links it and marks it in ConnectWise."""
    from portal import clients

    _qbo, server = qbo_sandbox
    number = sorted(_blocked_then_clean(app, qbo_sandbox, cw_sandbox, ready))[0]
    with app.app_context(), session_scope(app) as session:  # someone posts it by hand
        qbo = clients.quickbooks(session, session.get(Company, ready.id))
        customer = qbo.query("SELECT * FROM Customer MAXRESULTS 1")["Customer"][0]
        item = qbo.query("SELECT * FROM Item WHERE Type = 'Service' MAXRESULTS 1")["Item"][0]
        manual = qbo.create("Invoice", {
            "DocNumber": number, "CustomerRef": {"value": customer["Id"]},
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 10,
                      "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}}}]})
    batch_id = submit(app, {number})
    run_jobs(app)
    batch, [failed] = batch_of(app, batch_id)
    assert failed.state is ItemState.FAILED and failed.conflict_qbo_id == manual["Id"]
    assert f"already used by QuickBooks Invoice Id {manual['Id']}" in failed.message
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert f"Adopt Invoice {manual['Id']}" in page
    before = len(qbo_documents(server, ready.realm_id))
    response = client.post(f"/batches/{batch_id}/items/{failed.id}/adopt",
                           data={"csrf_token": client.csrf_token(f"/batches/{batch_id}")})
    assert response.status_code == 303
    run_jobs(app)
    adopted, [copy] = batch_of(app, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert copy.state is ItemState.DONE and copy.qbo_id == manual["Id"]
    assert adopted.trigger == f"adopt-of:{batch_id}" and adopted.colour == "yellow"
    assert any("adopted QuickBooks Invoice" in w for w in copy.warnings)
    assert len(qbo_documents(server, ready.realm_id)) == before  # nothing posted
    assert number not in {r.number for r in unposted(app)}  # marked in ConnectWise
