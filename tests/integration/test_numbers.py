"""Numbers as finance people expect them: amounts per locale on every page, CSV that a
spreadsheet reads as numbers, sortable grids and the review charts.

Batches are written straight to the database (the engine has its own tests).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from portal.db import session_scope
from portal.models import AuditEvent, Batch, BatchItem, BatchStatus, BatchType, Company, ItemState

pytestmark = pytest.mark.integration

NBSP = "\xa0"


def make_company(app, name: str = "Northwind", realm: str = "1") -> int:  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        row = Company(realm_id=realm, qbo_name=name, is_default=realm == "1",
                      home_currency="USD")
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture()
def company(app, login_as):  # type: ignore[no-untyped-def]
    login_as("accountant")
    return make_company(app)


def make_batch(app, company_id: int, items: list[dict], **fields) -> int:  # type: ignore[no-untyped-def]
    """A finished batch with the given items (cw_amount, currency, state, ...)."""
    with session_scope(app) as session:
        totals: dict[str, Decimal] = {}
        for item in items:
            currency = item.get("currency") or "USD"
            totals[currency] = totals.get(currency, Decimal(0)) + item.get(
                "cw_amount", Decimal(0))
        batch = Batch(type=fields.pop("type", BatchType.INVOICE), company_id=company_id,
                      status=BatchStatus.FINISHED, colour=fields.pop("colour", "green"),
                      trigger=fields.pop("trigger", "autosync"), options={},
                      counts={"done": len(items)},
                      totals=fields.pop("totals", {k: f"{v:.2f}" for k, v in totals.items()}),
                      preflight=[], **fields)
        session.add(batch)
        session.flush()
        for position, item in enumerate(items):
            values = {"record_key": f"inv:{batch.id}:{position}",
                      "cw_number": f"R{batch.id}-{position}", "state": ItemState.DONE,
                      "warnings": [], "position": position, **item}
            session.add(BatchItem(batch_id=batch.id, **values))
        return batch.id


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ---- amounts on pages ------------------------------------------------------------------

def test_amounts_follow_the_browser_locale_and_keep_their_sign(app, client, company):
    batch_id = make_batch(app, company, [
        {"cw_amount": Decimal("-400.00"), "currency": "USD", "cw_kind": "Credit Memo"},
        {"cw_amount": Decimal("1234.50"), "qbo_amount": Decimal("1234.50"),
         "cw_tax": Decimal("1000.00"), "currency": None}])
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert '<td class="num">-$400.00</td>' in page  # the credit memo keeps its sign
    assert '<td class="num">$1,234.50</td>' in page  # no currency: the company's
    assert "$1,234.50<br><small>tax $1,000.00</small></td>" in page  # CW amount and tax
    assert "<dd>$834.50</dd>" in page  # the header's total
    listing = client.get("/batches/").get_data(as_text=True)
    assert '<td class="num amounts">$834.50 of $834.50</td>' in listing
    german = client.get(f"/batches/{batch_id}", headers={"Accept-Language": "de-DE,de;q=0.9"}
                        ).get_data(as_text=True)
    assert f'<td class="num">-400,00{NBSP}$</td>' in german
    assert f'<td class="num">1.234,50{NBSP}$</td>' in german
    # an office-wide setting wins over the browser
    app.config["LOCALE"] = "en_GB"
    british = client.get(f"/batches/{batch_id}", headers={"Accept-Language": "de-DE"}
                         ).get_data(as_text=True)
    assert '<td class="num">US$1,234.50</td>' in british


# ---- CSV ---------------------------------------------------------------------------------

def test_item_csv_writes_negative_amounts_as_numbers_and_guards_text(app, client, company):
    batch_id = make_batch(app, company, [
        {"cw_amount": Decimal("-400.00"), "qbo_amount": Decimal("-400.00"), "currency": "USD",
         "party": "-Dash Ltd", "message": '=HYPERLINK("http://x")', "fix_hint": "@SUM(A1)",
         "record_date": date(2026, 3, 1)}])
    response = client.get(f"/batches/{batch_id}.csv")
    assert response.status_code == 200 and response.is_streamed
    [header, row] = _cells(response.get_data(as_text=True))
    record = dict(zip(header, row))
    assert record["cw_amount"] == "-400.00" and record["qbo_amount"] == "-400.00"
    assert record["currency"] == "USD" and record["date"] == "2026-03-01"
    assert record["party"] == "'-Dash Ltd"
    assert record["message"] == "'=HYPERLINK(\"http://x\")" and record["fix_hint"] == "'@SUM(A1)"
    assert not response.get_data().startswith(b"\xef\xbb\xbf")


def test_list_csv_has_amount_and_currency_columns(app, client, company):
    make_batch(app, company, [], totals={"USD": "-400.00", "CAD": "1234.50"}, trigger="-2+3")
    make_batch(app, company, [], totals={})
    response = client.get("/batches/export.csv")
    assert response.is_streamed
    header, *rows = _cells(response.get_data(as_text=True))
    assert header[11:14] == ["currency", "selected_amount", "posted_amount"]
    found = [(r[0], r[7], r[11], r[12], r[13]) for r in rows]
    first, second = sorted({r[0] for r in rows}, key=int)
    assert sorted(found) == sorted([(second, "autosync", "", "", ""),
                                    (first, "'-2+3", "CAD", "1234.50", "0.00"),
                                    (first, "'-2+3", "USD", "-400.00", "0.00")])


def test_csv_for_excel_starts_with_a_byte_order_mark(app, client, company):
    batch_id = make_batch(app, company, [{"cw_amount": Decimal("1.00"), "party": "Zoë"}])
    for url in (f"/batches/{batch_id}.csv?bom=1", "/batches/export.csv?bom=1",
                "/audit/export.csv?bom=1"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.get_data().startswith(b"\xef\xbb\xbf"), url
    assert "Zoë" in client.get(f"/batches/{batch_id}.csv?bom=1").get_data().decode("utf-8-sig")
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert f'href="/batches/{batch_id}.csv?bom=1" download>CSV for Excel</a>' in page
    assert 'href="/batches/export.csv?bom=1" download>CSV for Excel</a>' in \
        client.get("/batches/").get_data(as_text=True)


def test_audit_csv_is_streamed_and_formula_safe(app, client, company):
    with session_scope(app) as session:
        session.add(AuditEvent(actor="=cmd|' /C calc'!A0", action="test.csv", company_id=7,
                               after={"amount": "-5"}, result="ok",
                               at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)))
    response = client.get("/audit/export.csv?action=test.csv")
    assert response.status_code == 200 and response.is_streamed
    [header, row] = _cells(response.get_data(as_text=True))
    record = dict(zip(header, row))
    assert record["actor"] == "'=cmd|' /C calc'!A0"
    assert record["company_id"] == "7" and record["at"] == "2026-01-02T03:04:05+00:00"
    assert record["after"] == '{"amount": "-5"}'


# ---- sortable grids ----------------------------------------------------------------------

def _sorted_header(text: str) -> list[tuple[str, str]]:
    return re.findall(r'<th scope="col"[^>]*aria-sort="(\w+)"[^>]*>.*?>([^<]+?) <span', text)


def _batch_ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="batch-(\d+)"', text)]


def test_review_list_sorts_by_a_column_and_keeps_keyset_paging(app, client, company):
    other_id = make_company(app, "Acme Books", "2")
    ids = {cid: [make_batch(app, cid, []) for _ in range(30)] for cid in (company, other_id)}
    expected = sorted(ids[other_id], reverse=True) + sorted(ids[company], reverse=True)
    first = client.get("/batches/?sort=company").get_data(as_text=True)
    assert _sorted_header(first) == [("ascending", "Company")]
    shown = _batch_ids(first)
    assert shown == expected[:50]
    cursor = re.search(r'hx-get="(/batches/rows\?[^"]+)" hx-trigger="revealed"', first).group(1)
    assert "sort=company" in cursor and "at=Northwind" in cursor
    rest = client.hx("GET", cursor.replace("&amp;", "&")).get_data(as_text=True)
    assert _batch_ids(rest) == expected[50:]  # no row skipped or repeated
    assert 'name="sort" value="company" form="batch-filters"' in first
    # the header links toggle the direction and keep the filters
    assert f'href="/batches/?company={company}&amp;sort=-company"' in client.get(
        f"/batches/?company={company}&sort=company").get_data(as_text=True)
    newest = client.get("/batches/?sort=-company").get_data(as_text=True)
    assert _batch_ids(newest) == (sorted(ids[company], reverse=True)
                                  + sorted(ids[other_id], reverse=True))[:50]
    oldest = client.get("/batches/?sort=id").get_data(as_text=True)
    assert _batch_ids(oldest) == sorted(expected)[:50]
    assert _sorted_header(client.get("/batches/").get_data(as_text=True)) == \
        [("descending", "#")]
    exported = _cells(client.get("/batches/export.csv?sort=company").get_data(as_text=True))
    assert [int(r[0]) for r in exported[1:]] == expected


def test_review_list_sorted_by_start_pages_through_equal_times(app, client, company):
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    ids = [make_batch(app, company, [], created_at=moment) for _ in range(55)]
    first = client.get("/batches/?sort=started").get_data(as_text=True)
    cursor = re.search(r'hx-get="(/batches/rows\?[^"]+)" hx-trigger="revealed"', first).group(1)
    rest = client.hx("GET", cursor.replace("&amp;", "&")).get_data(as_text=True)
    assert _batch_ids(first) + _batch_ids(rest) == sorted(ids, reverse=True)


def test_a_malformed_list_position_is_named(client, company):
    response = client.get("/batches/rows?sort=started&before=5&at=yesterday")
    assert response.status_code == 422
    assert "The list position &#39;yesterday&#39; is not a time" in response.get_data(
        as_text=True)


def test_mapping_editor_sorts_on_the_server(app, client, company):
    from portal.models import MappingScan, MappingValue

    with session_scope(app) as session:
        scan = MappingScan(company_id=company, records=3)
        session.add(scan)
        session.flush()
        for value, records in (("Bravo", 5), ("alpha", 1), ("Charlie", 9)):
            session.add(MappingValue(scan_id=scan.id, kind="customer", cw_value=value,
                                     status="exact", qbo_name=value, records=records))
    def order(query: str) -> list[str]:  # noqa: E306
        text = client.hx("GET", f"/mappings/customer?company={company}&{query}").get_data(
            as_text=True)
        return re.findall(r'<code class="cw-value">([^<]+)</code>', text)

    assert order("sort=records") == ["alpha", "Bravo", "Charlie"]
    assert order("sort=-records") == ["Charlie", "Bravo", "alpha"]
    assert order("sort=-cw_value") == sorted(["alpha", "Bravo", "Charlie"], reverse=True)
    page = client.get(f"/mappings/customer?company={company}&sort=-records").get_data(
        as_text=True)
    assert _sorted_header(page) == [("descending", "Records")]
    assert f'href="/mappings/customer?company={company}&amp;status=&amp;q=&amp;sort=records"' \
        in page
    assert 'name="sort" value="-records" form="editor-filters"' in page


def test_selection_grid_sorts_every_page_and_keeps_the_selection(app, client, connected):
    from tests.integration.batching import unposted

    by_total = sorted(unposted(app), key=lambda r: r.total, reverse=True)
    assert len(by_total) > 110
    picked = by_total[110].cw_id
    form = {"filtered": "1", "company": str(connected.id), "from": "", "to": "",
            "sel": str(picked), "sort": "date", "at": "2"}
    text = client.get("/batches/new/invoices", query_string={**form, "order": "-total"}
                      ).get_data(as_text=True)
    rows = [int(i) for i in re.findall(r'<tr id="record-(\d+)"', text)]
    assert rows == [r.cw_id for r in by_total[:100]]  # a header click starts at page 1
    assert _sorted_header(text) == [("descending", "Total")]
    assert '<input type="hidden" name="sort" value="-total">' in text
    assert '<button type="submit" class="sort" name="order" value="total">Total' in text
    assert f'name="sel" value="{picked}"' in text
    second = client.get("/batches/new/invoices", query_string={
        **form, "sort": "-total", "page": "2"}).get_data(as_text=True)
    rows = [int(i) for i in re.findall(r'<tr id="record-(\d+)"', second)]
    assert rows == [r.cw_id for r in by_total[100:]]
    assert f'value="{picked}" id="pick-{picked}" checked' in second
    assert "1</span> selected of" in second


def test_no_template_asks_for_ctrl_click():
    from pathlib import Path

    import portal

    templates = Path(portal.__file__).parent / "templates"
    offenders = [p.name for p in templates.rglob("*.html")
                 if re.search(r"<select[^>]*\bmultiple\b", p.read_text())]
    assert offenders == []


# ---- charts ------------------------------------------------------------------------------

def test_review_charts_follow_the_filters_with_tooltips_and_a_table(app, client, company):
    from portal.models import BatchItemEvent

    march = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
    may = datetime(2026, 5, 2, 9, 0, tzinfo=timezone.utc)
    make_batch(app, company, [{"cw_amount": Decimal("1000.00")},
                              {"cw_amount": Decimal("-400.00"), "cw_kind": "Credit Memo"},
                              {"cw_amount": Decimal("99.00"), "state": ItemState.FAILED}],
               started_at=march, created_at=march)
    red = make_batch(app, company, [{"cw_amount": Decimal("250.00")},
                                    {"cw_amount": Decimal("5.00"), "state": ItemState.FAILED},
                                    {"cw_amount": Decimal("6.00"), "state": ItemState.FAILED}],
                     started_at=may, created_at=may, type=BatchType.EXPENSE, colour="red")
    with session_scope(app) as session:
        from sqlalchemy import select

        for item in session.scalars(select(BatchItem).where(
                BatchItem.state == ItemState.FAILED)):
            session.add(BatchItemEvent(batch_id=item.batch_id, item_id=item.id,
                                       from_state="selected", to_state="failed",
                                       at=march if item.batch_id != red else may))
    text = client.hx("GET", "/batches/").get_data(as_text=True)
    assert text.lstrip().startswith('<section class="card" id="batch-list"')
    posted = re.search(r'<figure class="chart" id="chart-posted-usd">.*?</figure>', text,
                       re.S).group(0)
    assert "<title>2026-03 · Invoices: $1,000.00</title>" in posted
    assert "<title>2026-03 · Credit memos: -$400.00</title>" in posted
    assert "<title>2026-05 · Expenses: $250.00</title>" in posted
    assert "<title>2026-04" not in posted  # an empty month has no bar ...
    assert '<th scope="row">2026-04</th>' in posted  # ... but its row in the table
    assert "$99.00" not in posted  # failed records were never posted
    credit = re.search(r'<rect class="bar bar-credit" x="[\d.]+" y="([\d.]+)"', posted)
    zero = re.search(r'<line class="axis" x1="76" x2="\d+" y1="([\d.]+)"', posted)
    assert float(credit.group(1)) == pytest.approx(float(zero.group(1)))  # below zero
    failed = re.search(r'<figure class="chart" id="chart-failed">.*?</figure>', text,
                       re.S).group(0)
    assert "<title>2026-03 · Failed records: 1</title>" in failed
    assert "<title>2026-05 · Failed records: 2</title>" in failed
    assert "style=" not in posted + failed and "<script" not in posted + failed
    only_red = client.hx("GET", "/batches/?colour=red").get_data(as_text=True)
    assert "2026-03" not in only_red and "<title>2026-05 · Expenses: $250.00</title>" in only_red
    assert "Nothing to draw" not in only_red


def test_dashboard_draws_the_amounts_synced_per_day(app, client, company):
    from portal.models.types import utcnow

    now = utcnow()
    old = datetime(2020, 1, 1, tzinfo=timezone.utc)
    make_batch(app, company, [{"cw_amount": Decimal("1000.00")},
                              {"cw_amount": Decimal("-400.00")},
                              {"cw_amount": Decimal("7.00"), "currency": "EUR"},
                              {"cw_amount": Decimal("9.00"), "state": ItemState.POSTED}],
               started_at=now, created_at=now)
    make_batch(app, company, [{"cw_amount": Decimal("555.00")}], started_at=old,
               created_at=old)
    text = client.get("/").get_data(as_text=True)
    chart = re.search(r'<figure class="chart" id="chart-synced">.*?</figure>', text,
                      re.S).group(0)
    day = now.date().isoformat()
    assert f"<title>{day} · Invoices: $1,000.00</title>" in chart
    assert f"<title>{day} · Credit memos: -$400.00</title>" in chart
    assert "$555.00" not in chart and "€" not in chart and "$9.00" not in chart
    assert chart.count('<tr><th scope="row">') == 30  # one row per day in the table
    assert '<th scope="col">Day</th>' in chart
