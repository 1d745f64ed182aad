"""The backlog check over the sandbox data set, the editors and the pre-flight page."""

from __future__ import annotations

import html
import re
import pytest
import requests
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import JobRun, MappingOverride, MappingValue, RunStatus
from portal.sandbox.demo_data import CURATED
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration


@pytest.fixture()
def scanned(app, client, connected):  # type: ignore[no-untyped-def]
    """Reference data fetched and the backlog checked."""
    for path in ("/mappings/refresh", "/mappings/scan"):
        response = client.hx("POST", f"{path}?company={connected.id}", token_from="/mappings/")
        assert response.status_code == 202, response.get_data(as_text=True)
        run_jobs(app)
    with session_scope(app) as session:
        statuses = [(r.kind, r.status, r.message) for r in session.scalars(sa.select(JobRun))]
    assert [s[1] for s in statuses] == [RunStatus.SUCCEEDED] * 2, statuses
    return connected


def _values(app, **where):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        query = sa.select(MappingValue)
        for name, value in where.items():
            query = query.where(getattr(MappingValue, name) == value)
        return list(session.scalars(query))


def test_scan_finds_the_deliberate_problems_with_hints(app, scanned):
    found = sorted((v.kind, v.cw_value.split(" (")[0] if v.kind == "customer" else v.cw_value)
                   for v in _values(app) if v.blocking)
    qbo, cw = CURATED["quickbooks"], CURATED["connectwise"]
    mismatch = qbo["item_account_mismatch"]
    collision = qbo["docnumber_collision"]
    expected = sorted([
        ("vendor", "Kiran Patel"),  # the member without a vendor number
        ("account", qbo["missing_account"]),
        ("customer", qbo["vendor_named_like_customer"]["cw_customer"]),
        *[("customer", c["cw"]) for c in qbo["near_miss_customers"]],
        ("record", f"Invoice {cw['no_gl_entries_invoice_number']} has no GL entries in "
                   "ConnectWise; re-open and re-close it."),
        ("record", next(v[1] for v in found if v[1].startswith(
            f"DocNumber {collision['doc_number']} is already used by QuickBooks Invoice Id "
            f"{collision['qbo_invoice_id']} (dated "))),
        # the two-level code, until a tax code mapping names its QuickBooks code
        ("record", f"ConnectWise tax code '{cw['two_level_tax_code']}' is not mapped, and its "
                   "Xref 'NY State' matches no QuickBooks tax code."),
        ("record", f"Item '{mismatch['item']}' is bound to income account "
                   f"'{mismatch['qbo_account']}' in QuickBooks, but ConnectWise posts it to "
                   f"'{mismatch['cw_account']}'."),
        # the second partial receipt of a PO, with `partial_receipt_mode` Refuse
        ("record", f"Vendor invoice number {cw['partial_receipt_vendor_invoice_number']} is "
                   f"already used by receipt of PO {cw['purchase_orders']['partial_receipt']} "
                   "in this selection. Check whether this receipt was entered by hand; if it "
                   "is a second partial receipt, batch the PO after it is fully received or "
                   "change `partial_receipt_mode`."),
        # purchase tax, until a purchase tax account is chosen (Purchases tab)
        *[("record", f"PO {cw['purchase_orders'][key]} carries purchase tax {tax}, but no "
                     "purchase tax account is chosen.")
          for key, tax in (("purchase_tax_us", "223.03"), ("purchase_tax_canada", "751.07"))],
        # the Canadian company's PO, in CAD
        ("record", f"PO {cw['purchase_orders']['purchase_tax_canada']} is in CAD but "
                   "QuickBooks has multicurrency off."),
    ])
    eur = [v for v in found if "is in EUR" in v[1]]
    assert [v for v in found if v not in eur] == expected
    assert all("is in EUR but QuickBooks company Northwind Managed IT has multicurrency off."
               in v[1] for v in eur) and eur
    near = {v.cw_value: v for v in _values(app, kind="customer", status="near_miss")}
    expected = {c["cw"] for c in CURATED["quickbooks"]["near_miss_customers"]}
    # The sandbox trims names as QuickBooks does, so "Summit Partners " arrives trimmed and
    # then matches exactly (as a twin without the account id).
    assert {v.split(" (")[0] for v in near} == expected
    acme = near["Acme Corp (ACME)"]
    assert acme.candidates[0]["name"] == "ACME Corp (ACME)"
    assert acme.hint.startswith("Accept the QuickBooks spelling")
    missing_account = CURATED["quickbooks"]["missing_account"]
    [account] = _values(app, kind="account", cw_value=missing_account)
    assert account.status == "missing" and account.records >= 1
    assert "portal never creates accounts" in account.hint
    clinic = _values(app, kind="customer", cw_value="Harborview Health")
    assert [v.status for v in clinic] == ["exact"]  # the parent of a sub-customer
    no_gl = CURATED["connectwise"]["no_gl_entries_invoice_number"]
    assert _values(app, kind="record", message=f"Invoice {no_gl} has no GL entries in "
                                                "ConnectWise; re-open and re-close it.")
    [member] = _values(app, kind="vendor", cw_value="Kiran Patel")
    ident = CURATED["connectwise"]["member_without_vendor_number"]
    assert member.message == f"Member {ident} has no Vendor Nbr in ConnectWise."
    assert member.hint == "Set System › Members › Vendor Nbr."  # SPEC 8.3
    vendors = {v.cw_value: v.status for v in _values(app, kind="vendor")}
    assert len(vendors) >= 5 and "TD SYNNEX (SYNNEX)" in vendors
    clash = CURATED["quickbooks"]["vendor_named_like_customer"]["qbo_vendor"]
    assert [v.status for v in _values(app, kind="customer", cw_value=clash)] == ["conflict"]


def test_preflight_groups_problems_and_links_to_the_editors(app, client, scanned):
    page = client.get(f"/mappings/preflight?company={scanned.id}").get_data(as_text=True)
    assert "What would fail if I batched now?" in page
    assert "Open the customers editor" in page and "Open the gl accounts editor" in page
    fragment = client.hx("GET", f"/mappings/preflight?company={scanned.id}")
    assert fragment.get_data(as_text=True).lstrip().startswith('<section class="card" '
                                                               'id="preflight-results"')
    dashboard = client.get("/").get_data(as_text=True)
    assert 'class="step step-warning" id="step-5"' in dashboard


def test_preflight_lists_each_record_once_under_each_problem(app, client, scanned):
    """The scan runs the engine's pre-flight per record; a record whose lines repeat a
    value, or that has the same problem twice, is still named once under that problem."""
    import html
    import re

    values = _values(app)
    assert any(v.records > 1 for v in values if v.blocking)
    for value in values:
        assert len(value.record_refs) == len(set(value.record_refs)), value.cw_value
        assert value.records >= len(value.record_refs)
        if value.records <= len(value.record_refs):
            assert value.records == len(value.record_refs), value.cw_value
    page = client.get(f"/mappings/preflight?company={scanned.id}").get_data(as_text=True)
    lists = re.findall(r"Used by (\d+) record\(s\): ([^<]*)</p>", page)
    assert len(lists) == len([v for v in values if v.blocking])
    for count, refs in lists:
        names = [r.strip() for r in html.unescape(refs).rstrip(", …").split(", ")]
        assert len(names) == len(set(names)), names


def test_accepting_a_near_miss_makes_an_override_and_drops_the_count(app, client, scanned):
    [acme] = _values(app, kind="customer", cw_value="Acme Corp (ACME)")
    before = [v for v in _values(app) if v.blocking]
    editor = client.get(f"/mappings/customer?company={scanned.id}&status=near_miss")
    text = editor.get_data(as_text=True)
    assert "Accept “ACME Corp (ACME)”" in text and "pos 2:" in text
    response = client.hx("POST", f"/mappings/customer/override?company={scanned.id}",
                         token_from="/mappings/", data={
                             "cw_value": "Acme Corp (ACME)",
                             "qbo_id": acme.candidates[0]["qbo_id"]})
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "mapping-saved"
    row = response.get_data(as_text=True)
    assert row.lstrip().startswith(f'<tr id="value-{acme.id}" class="value-override"')
    assert 'id="editor-counts" class="counts" hx-swap-oob="true"' in row
    after = [v for v in _values(app) if v.blocking]
    assert len(after) == len(before) - 1
    with session_scope(app) as session:
        override = session.scalars(sa.select(MappingOverride)).one()
        assert (override.cw_key, override.qbo_name_at_save) == ("Acme Corp (ACME)",
                                                                "ACME Corp (ACME)")
    cleared = client.hx("POST", f"/mappings/customer/clear?company={scanned.id}",
                        token_from="/mappings/", data={"cw_value": "Acme Corp (ACME)"})
    assert 'class="value-near_miss"' in cleared.get_data(as_text=True)


def test_row_actions_must_name_a_value_of_the_latest_check(app, client, scanned, qbo_sandbox):
    """An empty form or an unknown value used to fail rendering the row (a 500)."""
    _sandbox, server = qbo_sandbox
    before = requests.get(f"{server.url}/_sim/state", params={"realmId": scanned.realm_id},
                          timeout=10).json()
    for action in ("override", "create", "clear"):
        path = f"/mappings/customer/{action}?company={scanned.id}"
        empty = client.hx("POST", path, token_from="/mappings/", data={})
        assert empty.status_code == 422, (action, empty.status_code)
        assert "the request had no cw_value" in empty.get_data(as_text=True)
        unknown = client.hx("POST", path, token_from="/mappings/",
                            data={"cw_value": "Nobody Such (NONE)", "qbo_id": "1"})
        assert unknown.status_code == 409, (action, unknown.status_code)
        text = html.unescape(unknown.get_data(as_text=True))
        assert text.lstrip().startswith('<tr id="value-error"')
        assert ("'Nobody Such (NONE)' is not among the customers of the latest mapping check"
                in text)
    after = requests.get(f"{server.url}/_sim/state", params={"realmId": scanned.realm_id},
                         timeout=10).json()
    assert after == before  # nothing was sent to QuickBooks
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MappingOverride)) == 0


def test_choosing_by_name_from_the_list(app, client, scanned):
    missing = CURATED["quickbooks"]["missing_account"]
    response = client.hx("POST", f"/mappings/account/override?company={scanned.id}",
                         token_from="/mappings/",
                         data={"cw_value": missing, "qbo_name": "Sales:Managed Services"})
    assert response.status_code == 200
    assert 'class="value-override"' in response.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalars(sa.select(MappingOverride.qbo_name_at_save)).one() == \
            "Sales:Managed Services"


def test_choosing_an_unknown_object_is_refused(app, client, scanned):
    response = client.hx("POST", f"/mappings/account/override?company={scanned.id}",
                         token_from="/mappings/",
                         data={"cw_value": CURATED["quickbooks"]["missing_account"],
                               "qbo_id": "no-such-id"})
    assert response.status_code == 422
    assert "Choose an active QuickBooks object from the list." in response.get_data(as_text=True)


def test_editor_search_status_filter_and_paging(app, client, scanned):
    page = client.hx("GET", f"/mappings/customer?company={scanned.id}&q=harbor")
    text = page.get_data(as_text=True)
    assert "Blue Harbor Law" in text and "Acme Corp" not in text
    exact = client.get(f"/mappings/account?company={scanned.id}&status=exact").get_data(
        as_text=True)
    assert 'class="value-exact"' in exact and 'class="value-missing"' not in exact
    assert client.get(f"/mappings/nothing?company={scanned.id}").status_code == 404


def test_viewer_cannot_edit_mappings(client, make_user, app):
    make_user("viewer")
    client.login("viewer@example.test")
    assert client.get("/mappings/").status_code == 403


def test_pages_use_a_bounded_number_of_queries(app, client, scanned, count_queries):
    """No N+1: the editor and pre-flight pages cost the same whatever the row count."""
    for path in (f"/mappings/customer?company={scanned.id}",
                 f"/mappings/account?company={scanned.id}",
                 f"/mappings/preflight?company={scanned.id}",
                 f"/mappings/?company={scanned.id}", "/"):
        client.get(path)  # warm the session
        with count_queries() as statements:
            assert client.get(path).status_code == 200
        assert len(statements) <= 15, (path, len(statements), statements)


def test_choose_box_suggests_names_as_you_type(app, client, scanned):
    response = client.hx("GET", f"/mappings/account/options?company={scanned.id}&qbo_name=manag")
    text = response.get_data(as_text=True)
    assert text.startswith('<datalist id="qbo-options">')
    assert "Sales:Managed Services" in text and "Accounts Receivable" not in text
    empty = client.hx("GET", f"/mappings/account/options?company={scanned.id}&qbo_name=")
    assert empty.get_data(as_text=True) == '<datalist id="qbo-options"></datalist>'


def test_accept_all_near_misses(app, client, scanned):
    near = _values(app, kind="customer", status="near_miss")
    response = client.hx("POST", f"/mappings/customer/accept-all?company={scanned.id}",
                         token_from="/mappings/")
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "mapping-saved"
    assert _values(app, kind="customer", status="near_miss") == []
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MappingOverride)) == \
            len(near)


def test_scan_follows_the_company_settings(app, client, scanned):
    """Turning append off changes which customers match: the settings feed the resolvers."""
    from portal.services import company_settings

    with session_scope(app) as session:
        from portal.models import Company, User

        company = session.get(Company, scanned.id)
        admin = session.scalars(sa.select(User)).first()
        company_settings.save_tab(session, company, "contacts", {
            "append_account_name": "", "create_customers": "y", "create_vendors": "y",
            "create_member_vendors": "y", "copy_contact_details": "y"}, admin)
    client.hx("POST", f"/mappings/scan?company={scanned.id}", token_from="/mappings/")
    run_jobs(app)
    errors = [v for v in _values(app, kind="customer", status="error")]
    assert errors and all("Append account name is off" in v.message for v in errors)


@pytest.mark.parametrize(("path", "root"), [
    ("/mappings/customer?company={id}", "editor-table"),
    ("/mappings/preflight?company={id}", "preflight-results"),
    ("/mappings/tax-codes?company={id}", "tax-table"),
    ("/mappings/?company={id}", "reference-card"),
])
def test_mapping_pages_as_page_and_fragment(client, scanned, path, root):
    url = path.format(id=scanned.id)
    page = client.get(url)
    assert "<html" in page.get_data(as_text=True) and "HX-Request" in page.headers["Vary"]
    fragment = client.hx("GET", url).get_data(as_text=True)
    assert "<html" not in fragment and f'id="{root}"' in fragment


def test_create_a_missing_customer_in_quickbooks(app, client, scanned, qbo_sandbox):
    import requests

    _sandbox, server = qbo_sandbox
    [row] = [v for v in _values(app, kind="customer", status="will_create")
             if v.cw_value == "Westfield Library (WESTLIB)"]
    preview = client.hx("GET", "/mappings/customer/create",
                        query_string={"company": scanned.id, "cw_value": row.cw_value})
    text = preview.get_data(as_text=True)
    fields = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)", text))
    assert fields["Display name"] == "Westfield Library (WESTLIB)"
    assert fields["Company name"] == "WESTLIB"  # SPEC 5.2, said beside it:
    assert "The ConnectWise Account ID: with “Append account name” (Contacts tab) on" in text
    assert "@" in fields["Email"] and fields["Billing address"]
    assert fields["Notes"].startswith("Created by portal from ConnectWise company ")
    assert "Terms" in fields and "QuickBooks id" not in fields["Terms"]
    assert "{&#34;" not in text and "&#34;value&#34;" not in text  # no raw JSON
    created = client.hx("POST", f"/mappings/customer/create?company={scanned.id}",
                        token_from="/mappings/", data={"cw_value": row.cw_value})
    assert created.status_code == 200, created.get_data(as_text=True)
    assert 'class="value-exact"' in created.get_data(as_text=True)
    state = requests.get(f"{server.url}/_sim/state", params={"realmId": scanned.realm_id},
                         timeout=10).json()
    customers = [c for company in state["companies"]
                 for c in company["entities"].get("Customer", [])
                 if c.get("DisplayName") == "Westfield Library (WESTLIB)"]
    assert len(customers) == 1 and customers[0]["CompanyName"] == "WESTLIB"
    # the same customer a batch would create: its terms and the note (SPEC 7.2 step 2)
    assert customers[0]["Notes"] == fields["Notes"] and customers[0].get("SalesTermRef")
    with session_scope(app) as session:
        from portal.models import AuditEvent, JobRun, QboRef

        ref = session.scalar(sa.select(QboRef).where(
            QboRef.name == "Westfield Library (WESTLIB)"))
        assert ref is not None and ref.extra.get("company_name") == "WESTLIB"
        assert session.scalar(sa.select(AuditEvent.action).where(
            AuditEvent.action == "mapping.create")) == "mapping.create"
        run = session.scalars(sa.select(JobRun).order_by(JobRun.id.desc())).first()
        assert run.status is RunStatus.SUCCEEDED
    again = client.hx("POST", f"/mappings/customer/create?company={scanned.id}",
                      token_from="/mappings/", data={"cw_value": row.cw_value})
    assert again.status_code == 422  # it now exists: nothing to create


def test_accounts_are_never_created(app, client, scanned):
    preview = client.hx("GET", "/mappings/account/create",
                        query_string={"company": scanned.id,
                                      "cw_value": CURATED["quickbooks"]["missing_account"]})
    assert "portal never creates gl accounts" in preview.get_data(as_text=True)


def test_create_a_missing_term_and_a_class_path(app, client, scanned):
    term = client.hx("POST", f"/mappings/term/create?company={scanned.id}",
                     token_from="/mappings/", data={"cw_value": "Net 45"})
    assert term.status_code == 200, term.get_data(as_text=True)
    with session_scope(app) as session:
        from portal.models import Company, QboRef
        from portal.services import creation
        from portal.services.mapping import MappingSet, Prefs

        company = session.get(Company, scanned.id)
        planned = creation.plan(session, company, MappingSet.load(
            session, company, Prefs(create_classes=True)), "class", "Services:New:Deep")
        assert [p.body["Name"] for p in planned] == ["New", "Deep"]
        assert planned[0].body["ParentRef"]["value"] == "@Services"
        assert session.scalar(sa.select(QboRef).where(QboRef.entity == "Term",
                                                      QboRef.name == "Net 45")) is not None


def test_create_a_missing_vendor(app, client, scanned):
    missing = [v for v in _values(app, kind="vendor", status="will_create")]
    assert missing, "the data set has vendors to create"
    value = missing[0].cw_value
    created = client.hx("POST", f"/mappings/vendor/create?company={scanned.id}",
                        token_from="/mappings/", data={"cw_value": value})
    assert created.status_code == 200, created.get_data(as_text=True)
    assert 'class="value-exact"' in created.get_data(as_text=True)


def test_an_item_is_created_from_the_editor_with_the_accounts_of_its_lines(
        app, client, scanned, qbo_sandbox):
    """Service items (per service_item_source) and products get editor rows with what a
    create needs; Create makes the missing categories, then the item on its income account."""
    _qbo, server = qbo_sandbox
    rows = {v.cw_value: v for v in _values(app, kind="item", status="will_create")}
    assert any(name.startswith("Service-") for name in rows), sorted(rows)
    product = next(name for name, v in rows.items() if ":" in name and
                   v.create_fields.get("Type") != "Category")
    fields = rows[product].create_fields
    assert fields["income_account"] and fields["Type"] in ("Inventory", "NonInventory",
                                                           "Service")
    preview = client.hx("GET", "/mappings/item/create",
                        query_string={"company": scanned.id, "cw_value": product})
    text = preview.get_data(as_text=True)
    assert "<dt>Income account</dt>" in text and product.rsplit(":", 1)[1] in text
    created = client.hx("POST", f"/mappings/item/create?company={scanned.id}",
                        token_from="/mappings/", data={"cw_value": product})
    assert created.status_code == 200, created.get_data(as_text=True)
    state = requests.get(f"{server.url}/_sim/state", params={"realmId": scanned.realm_id},
                         timeout=10).json()
    items = {i.get("FullyQualifiedName") or i["Name"]: i
             for company in state["companies"] for i in company["entities"]["Item"]}
    assert product in items and items[product]["IncomeAccountRef"]["value"]
    parent = product.rsplit(":", 1)[0]
    assert items[parent]["Type"] == "Category"


def test_the_create_preview_leaves_out_contact_details_when_the_setting_is_off(
        app, client, scanned):
    from portal.models import Company, User
    from portal.services import company_settings

    with session_scope(app) as session:
        company = session.get(Company, scanned.id)
        admin = session.scalars(sa.select(User)).first()
        company_settings.save_tab(session, company, "contacts",
                                  {"copy_contact_details": ""}, admin)
    preview = client.hx("GET", "/mappings/customer/create", query_string={
        "company": scanned.id, "cw_value": "Westfield Library (WESTLIB)"})
    labels = re.findall(r"<dt>([^<]+)</dt>", preview.get_data(as_text=True))
    assert "Display name" in labels and "Notes" in labels
    assert not {"Email", "Phone", "Billing address"} & set(labels)
