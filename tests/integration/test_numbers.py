"""Numbers as finance people expect them: amounts per locale on every page, CSV that a
spreadsheet reads as numbers, sortable grids and the review charts.

Batches are written straight to the database (the engine has its own tests).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.db import session_scope
from portal.models import Batch, BatchItem, BatchStatus, BatchType, Company, ItemState

pytestmark = pytest.mark.integration

NBSP = "\xa0"


@pytest.fixture()
def company(app, login_as):  # type: ignore[no-untyped-def]
    login_as("accountant")
    with session_scope(app) as session:
        row = Company(realm_id="1", qbo_name="Northwind", is_default=True, home_currency="USD")
        session.add(row)
        session.flush()
        return row.id


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


# ---- amounts on pages ------------------------------------------------------------------

def test_amounts_follow_the_browser_locale_and_keep_their_sign(app, client, company):
    batch_id = make_batch(app, company, [
        {"cw_amount": Decimal("-400.00"), "currency": "USD", "cw_kind": "Credit Memo"},
        {"cw_amount": Decimal("1234.50"), "qbo_amount": Decimal("1234.50"),
         "cw_tax": Decimal("1000.00"), "currency": None}])
    page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert '<td class="num">-$400.00</td>' in page  # the credit memo keeps its sign
    assert '<td class="num">$1,234.50</td>' in page  # no currency: the company's
    assert "$1,000.00 / –" in page  # CW tax, no QuickBooks tax yet
    assert "<dd>$834.50</dd>" in page  # the header's total
    listing = client.get("/batches/").get_data(as_text=True)
    assert '<td class="num">$834.50</td>' in listing
    german = client.get(f"/batches/{batch_id}", headers={"Accept-Language": "de-DE,de;q=0.9"}
                        ).get_data(as_text=True)
    assert f'<td class="num">-400,00{NBSP}$</td>' in german
    assert f'<td class="num">1.234,50{NBSP}$</td>' in german
    # an office-wide setting wins over the browser
    app.config["LOCALE"] = "en_GB"
    british = client.get(f"/batches/{batch_id}", headers={"Accept-Language": "de-DE"}
                         ).get_data(as_text=True)
    assert '<td class="num">US$1,234.50</td>' in british
