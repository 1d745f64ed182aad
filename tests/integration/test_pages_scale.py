"""Pages at the scale of SPEC 16.1: each renders with the same few SQL statements whether the
batch holds 250 items or 10,000, the review list 60 batches or 300, the reference cache a
hundred customers or 5,000; each shows the right rows; the item list never loads payloads;
the items CSV streams in windows."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from portal.db import engine, session_scope
from portal.models import Batch, BatchItem, Company, MappingScan, MappingValue
from portal.services import company_settings
from portal.services.batches import ITEM_PAGE
from tests.integration import scale

pytestmark = pytest.mark.integration

MAX_STATEMENTS = 15
PAYLOAD_READ = re.compile(r"batch_item\.payload(?!_)")
NEAR_MISSES = [f"Scale Klient {n}" for n in range(3)]


def _row_ids(text: str, prefix: str) -> list[int]:
    return [int(i) for i in re.findall(rf'<tr id="{prefix}-(\d+)"', text)]


def _item_ids(app, batch_id: int, where: Any = None, offset: int = 0) -> list[int]:
    """The ids of one page of the batch's items, in the page's order."""
    with session_scope(app) as session:
        query = sa.select(BatchItem.id).where(BatchItem.batch_id == batch_id)
        if where is not None:
            query = query.where(where)
        return list(session.scalars(query.order_by(BatchItem.position, BatchItem.id)
                                    .offset(offset).limit(ITEM_PAGE)))


@pytest.fixture()
def seeded(app, connected):  # type: ignore[no-untyped-def]
    """The small state: one batch of 250 items (with a settings snapshot that differs from
    the current settings), 59 more batches, a backlog check with 120 customers."""
    with session_scope(app) as session:
        company = session.get(Company, connected.id)
        version = company_settings.current_version(session, company)
        snapshot = company_settings.as_json(company_settings.get_settings(session, company))
        snapshot["invoice_export_detail"] = "Detailed"
        big = scale.add_batch(session, company.id, items=250, snapshot=snapshot,
                              version_id=version.id)
        scale.recount(session, big)
        scale.add_batches(session, company.id, 59)
        scan = MappingScan(company_id=company.id, records=250, records_with_errors=3)
        session.add(scan)
        session.flush()
        session.add_all(MappingValue(
            scan_id=scan.id, kind="customer", cw_value=name, status="near_miss", records=2,
            record_refs=["invoice S000001"], message=f"{name} differs from QuickBooks.",
            candidates=[{"qbo_id": "9000001", "name": "Scale Customer 00001",
                         "diffs": []}])
            for name in NEAR_MISSES)
        scale.add_customer_values(session, scan.id, 0, 120)
    return connected.id, big


def _grow(app, company_id: int, big: int) -> None:
    """From the small state to SPEC 16.1's: 10,000 items, 300 batches, 5,000 customers."""
    with session_scope(app) as session:
        scale.add_items(session, big, 250, 9750)
        scale.recount(session, big)
        scale.add_batches(session, company_id, 240)
        scale.add_customers(session, company_id, 5000)
        scale.add_customer_values(session, scale.latest_scan(session, company_id), 120, 4880)


def _pages(company_id: int, big: int, after: str, before: int) -> dict[str, tuple[str, bool]]:
    """name -> (path, asked by htmx)."""
    items = f"/batches/{big}/items"
    return {"batch page": (f"/batches/{big}", False),
            "items fragment": (items, True),
            "items fragment, later page": (f"{items}?after={after}", True),
            "items by state": (f"{items}?state=failed", True),
            "items by colour": (f"{items}?colour=yellow", True),
            "review list": ("/batches/", False),
            "review list, next page": (f"/batches/rows?before={before}", True),
            "dashboard": ("/", False),
            "mapping editor": (f"/mappings/customer?company={company_id}", False),
            "selection screen": ("/batches/new/invoices", False)}


def _render(client, count_queries, path: str, hx: bool):  # type: ignore[no-untyped-def]
    def fetch():  # type: ignore[no-untyped-def]
        return client.hx("GET", path) if hx else client.get(path)

    assert fetch().status_code == 200  # warm: the session row is touched at most every 30 s
    with count_queries() as statements:
        response = fetch()
    assert response.status_code == 200, (path, response.get_data(as_text=True)[:500])
    return response.get_data(as_text=True), statements


def _cursors(client, big: int) -> tuple[str, int]:
    """The `after` of the batch page's last row and the `before` of the review list's."""
    page = client.get(f"/batches/{big}").get_data(as_text=True)
    after = re.search(rf'hx-get="/batches/{big}/items\?after=(\d+:\d+)"', page).group(1)
    listing = client.get("/batches/").get_data(as_text=True)
    before = int(re.search(r'hx-get="/batches/rows\?before=(\d+)"', listing).group(1))
    return after, before


def test_pages_cost_the_same_statements_at_any_size(app, client, seeded, count_queries):
    company_id, big = seeded
    small = {}
    for name, (path, hx) in _pages(company_id, big, *_cursors(client, big)).items():
        _text, statements = _render(client, count_queries, path, hx)
        small[name] = statements
    _grow(app, company_id, big)
    large = {}
    texts = {}
    for name, (path, hx) in _pages(company_id, big, *_cursors(client, big)).items():
        texts[name], large[name] = _render(client, count_queries, path, hx)
    for name, statements in large.items():
        assert len(statements) <= MAX_STATEMENTS, (name, len(statements), statements)
        # a small page may cost one more (a settings version on a batch only it shows)
        assert len(statements) <= len(small[name]), (name, statements, small[name])
    # a later page of the infinite scroll costs its rows, not the batch's counts
    assert not [s for s in large["items fragment, later page"] if "count(" in s]
    for name in ("batch page", "items fragment", "items fragment, later page",
                 "items by state", "items by colour"):
        read = [s for s in large[name] if PAYLOAD_READ.search(s)]
        assert read == [], (name, read)
    _assert_rows(app, big, texts)


def _assert_rows(app: Flask, big: int, texts: dict[str, str]) -> None:
    first = _item_ids(app, big)
    page = texts["batch page"]
    assert _row_ids(page, "item") == first
    assert f'after={ITEM_PAGE - 1}:{first[-1]}"' in page
    assert page.count('hx-trigger="revealed"') == 1
    assert "All (10000)" in page and "Yellow (1000)" in page and "Red (1000)" in page
    assert "failed (1000)" in page and "skipped (1000)" in page and "done (8000)" in page
    assert "1 setting(s) differ from the current settings" in page
    fragment = texts["items fragment"]
    assert fragment.lstrip().startswith(f'<section class="card" id="batch-{big}-items"')
    assert _row_ids(fragment, "item") == first
    later = texts["items fragment, later page"]
    assert later.lstrip().startswith(f'<tbody id="batch-{big}-rows-')
    assert _row_ids(later, "item") == _item_ids(app, big, offset=ITEM_PAGE)
    failed = _item_ids(app, big, BatchItem.state == "failed")
    assert _row_ids(texts["items by state"], "item") == failed
    every_tenth = range(0, ITEM_PAGE * 10, 10)
    assert _item_ids(app, big, BatchItem.position.in_(every_tenth)) == failed
    yellow = _row_ids(texts["items by colour"], "item")
    assert yellow == _item_ids(app, big, BatchItem.position.in_([n + 1 for n in every_tenth]))
    assert 'class="item-yellow"' in texts["items by colour"]
    assert 'class="item-green"' not in texts["items by colour"]
    with session_scope(app) as session:
        newest = list(session.scalars(sa.select(Batch.id).order_by(Batch.id.desc())))
    assert len(newest) == 300
    assert _row_ids(texts["review list"], "batch") == newest[:50]
    assert _row_ids(texts["review list, next page"], "batch") == newest[50:100]
    assert f"Batch #{newest[0]} posted 1 record(s)." in texts["dashboard"]
    editor = texts["mapping editor"]
    names = re.findall(r'<tr id="value-\d+" class="value-[a-z_]+">\s*'
                       r'<td><code class="cw-value">([^<]+)<', editor)
    assert names[:3] == sorted(NEAR_MISSES)
    assert names[3:] == [f"Scale Customer {n:05d}" for n in range(47)]
    assert "Page 1 of 101" in editor


def test_selection_screen_shows_the_unposted_invoices(app, client, seeded, count_queries):
    """The grid lists ConnectWise's first hundred unposted invoices, whatever the history."""
    from tests.integration.test_batch_pages import _unposted

    company_id, big = seeded
    _grow(app, company_id, big)
    text, statements = _render(client, count_queries, "/batches/new/invoices", False)
    assert len(statements) <= MAX_STATEMENTS, statements
    assert _row_ids(text, "record") == [r.cw_id for r in _unposted(app)[:100]]


def test_items_csv_streams_in_windows(app, client, seeded):
    """The 10,000-item CSV is produced as it is sent, from a windowed query: 200 lines to
    a chunk, and when a chunk is sent at most one window (500) of items beyond it has been
    loaded."""
    company_id, big = seeded
    _grow(app, company_id, big)
    loaded = []
    sent = 0

    def on_load(target, _context):  # type: ignore[no-untyped-def]
        loaded.append(target.position)

    event.listen(BatchItem, "load", on_load)
    try:
        response = client.get(f"/batches/{big}.csv", buffered=False)
        assert response.status_code == 200 and response.is_streamed
        ahead = []
        chunks = 0
        lines = []
        for chunk in response.response:
            chunks += 1
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            lines.extend(text.splitlines())
            sent = len(lines) - 1  # the header is the first line
            ahead.append(len(loaded) - sent)
        assert engine(app).pool.checkedout() == 0  # the stream's session ended with it
        response.close()
    finally:
        event.remove(BatchItem, "load", on_load)
    assert chunks == 51  # the header and 199 rows, then 200 rows a chunk
    assert len(lines) == 10_001 and lines[0].startswith("record,date,party,state")
    assert lines[1].startswith("S000000,") and lines[-1].startswith("S009999,")
    assert loaded == list(range(10_000))
    assert max(ahead) <= 500, max(ahead)
    listed = client.get("/batches/export.csv", buffered=False)
    assert listed.is_streamed
    body = b"".join(listed.response).decode()
    assert len(body.splitlines()) == 301  # the header and 300 batches
    listed.close()
    assert engine(app).pool.checkedout() == 0
