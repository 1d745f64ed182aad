"""Tax code mapping rows: many to one, and the level check for non-US companies."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, Company, QboRef, TaxCodeMapping
from tests.conftest import run_jobs

pytestmark = pytest.mark.integration


@pytest.fixture()
def cached(app, client, connected):  # type: ignore[no-untyped-def]
    client.hx("POST", f"/mappings/refresh?company={connected.id}", token_from="/mappings/")
    run_jobs(app)
    return connected


def _qbo_code(app, company_id, name):  # type: ignore[no-untyped-def]
    with session_scope(app) as session:
        return session.scalar(sa.select(QboRef.qbo_id).where(
            QboRef.company_id == company_id, QboRef.entity == "TaxCode", QboRef.name == name))


def test_map_two_codes_to_one_and_remove(app, client, cached):
    page = client.get(f"/mappings/tax-codes?company={cached.id}").get_data(as_text=True)
    assert "NYC" in page and "New York City" in page and "Xrefs: NY State, NYC Local" in page
    combined = _qbo_code(app, cached.id, "NYC Combined")
    for code in ("NYC", "NJ"):
        response = client.hx("POST", f"/mappings/tax-codes?company={cached.id}",
                             token_from="/mappings/", data={"cw_code": code, "qbo_id": combined})
        assert response.status_code == 200, response.get_data(as_text=True)
    with session_scope(app) as session:
        rows = session.scalars(sa.select(TaxCodeMapping)).all()
        assert sorted(r.cw_tax_code for r in rows) == ["NJ", "NYC"]
        assert {r.qbo_tax_code_id for r in rows} == {combined}
    client.hx("POST", f"/mappings/tax-codes?company={cached.id}", token_from="/mappings/",
              data={"cw_code": "NJ", "remove": "1"})
    with session_scope(app) as session:
        assert [r.cw_tax_code for r in session.scalars(sa.select(TaxCodeMapping))] == ["NYC"]
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action.like("mapping.tax_code.%"))) == 3


def test_level_mismatch_is_refused_for_a_non_us_company(app, client, cached):
    with session_scope(app) as session:
        session.get(Company, cached.id).is_us = False
    gst = _qbo_code(app, cached.id, "NJ State")  # one rate
    response = client.hx("POST", f"/mappings/tax-codes?company={cached.id}",
                         token_from="/mappings/", data={"cw_code": "NYC", "qbo_id": gst})
    assert response.status_code == 422
    assert ("Tax mapping NYC → NJ State: ConnectWise code NYC has 2 levels but QuickBooks "
            "code NJ State has 1 rates.") in response.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TaxCodeMapping)) == 0
    combined = _qbo_code(app, cached.id, "NYC Combined")  # two rates
    ok = client.hx("POST", f"/mappings/tax-codes?company={cached.id}", token_from="/mappings/",
                   data={"cw_code": "NYC", "qbo_id": combined})
    assert ok.status_code == 200


def test_unknown_choices_are_refused(app, client, cached):
    response = client.hx("POST", f"/mappings/tax-codes?company={cached.id}",
                         token_from="/mappings/", data={"cw_code": "NYC", "qbo_id": "nope"})
    assert response.status_code == 422
    assert "Choose an active QuickBooks tax code" in response.get_data(as_text=True)


def test_a_zero_level_code_to_a_two_rate_code_is_refused_or_warned_and_saves_say_so(
        app, client, cached):
    combined = _qbo_code(app, cached.id, "NYC Combined")  # two rates
    url = f"/mappings/tax-codes?company={cached.id}"
    us = client.hx("POST", url, token_from="/mappings/",
                   data={"cw_code": "EXEMPT", "qbo_id": combined})
    text = us.get_data(as_text=True)
    assert us.status_code == 200
    assert '<p class="ok" role="status" id="tax-saved">Saved: EXEMPT → NYC Combined.' in text
    assert ('id="tax-warning">ConnectWise code EXEMPT charges no tax (0 levels), but '
            "QuickBooks code NYC Combined has 2 rate(s)") in text
    removed = client.hx("POST", url, token_from="/mappings/",
                        data={"cw_code": "EXEMPT", "remove": "1"}).get_data(as_text=True)
    assert "Removed the mapping of EXEMPT." in removed and "tax-warning" not in removed
    with session_scope(app) as session:
        session.get(Company, cached.id).is_us = False
    refused = client.hx("POST", url, token_from="/mappings/",
                        data={"cw_code": "EXEMPT", "qbo_id": combined})
    assert refused.status_code == 422
    assert ("Tax mapping EXEMPT → NYC Combined: ConnectWise code EXEMPT has 0 levels but "
            "QuickBooks code NYC Combined has 2 rates.") in refused.get_data(as_text=True)
    assert "Saved:" not in refused.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TaxCodeMapping)) == 0
    nj = _qbo_code(app, cached.id, "NJ State")  # one rate, for the one-level code
    ok = client.hx("POST", url, token_from="/mappings/", data={"cw_code": "NJ", "qbo_id": nj})
    assert ok.status_code == 200 and "Saved: NJ → NJ State." in ok.get_data(as_text=True)
    assert "tax-warning" not in ok.get_data(as_text=True)
