"""Every htmx route answers as a full page and as a fragment; every GET route is listed."""

from __future__ import annotations

import pytest

from portal.models import RunKind
from portal.services import runs

pytestmark = pytest.mark.integration

# endpoint, url, fragment root id
HTMX_ROUTES = [
    ("dashboard.checklist", "/dashboard/checklist", "checklist-card"),
    ("dashboard.health", "/dashboard/health", "health-card"),
    ("dashboard.autosync_card", "/dashboard/autosync", "autosync-card"),
    ("dashboard.attention_card", "/dashboard/attention", "attention-card"),
    ("runs.index", "/runs/", "runs-table"),
    ("runs.show", "/runs/1", "run-1"),
    ("users.index", "/users/", "users-table"),
    ("users.sessions", "/users/sessions", "sessions-table"),
    ("audit.index", "/audit/?action=auth", "audit-results"),
    ("batches.new", "/batches/new/invoices", "invoice-selection"),
    ("batches.validate", "/batches/new/invoices/validate", "selection-validation"),
    ("batches.index", "/batches/", "batch-list"),
    ("batches.rows", "/batches/rows", "batch-rows-0"),
]
# GET pages that are never swapped in part (fragment requests get the whole page).
PAGE_ONLY = {"dashboard.index", "auth.login", "auth.forgot", "auth.reset", "setup.connectwise",
             "setup.quickbooks", "setup.quickbooks_connect", "setup.quickbooks_reconnect",
             "setup.quickbooks_callback", "mappings.index", "unbatch.clear", "email.index",
             "email.company", "email.resend_confirm", "autosync.rerun",
             "audit.export", "health.healthz", "health.readyz", "static",
             # need a company: page and fragment of every tab in test_settings_tabs.py
             "settings.index", "settings.tab",
             # need a company and a scan: page and fragment in test_mapping_scan.py
             "mappings.editor", "mappings.options", "mappings.preflight", "mappings.tax_codes",
             "mappings.create_preview",
             # need a company: page and fragment in test_item_types_and_currencies.py
             "mappings.item_types_page", "mappings.currencies",
             # need a batch: page and fragment in test_unbatch_pages.py
             "unbatch.preview", "unbatch.validation_view", "unbatch.range_view",
             "unbatch.handled",
             # CSV downloads
             "batches.export", "batches.export_items", "unbatch.clear_csv",
             "unbatch.validation_csv", "unbatch.report_csv",
             # need a batch: page and fragment in test_batch_pages.py
             "batches.show", "batches.progress", "batches.items", "batches.events",
             # need a company or a payment batch: page and fragment in test_payment_pages.py
             "payments.index", "payments.sync_page", "payments.rerun", "payments.batch",
             "payments.progress", "payments.items", "payments.export_items",
             "payments.webhook_settings"}


def test_every_get_route_is_listed(app):
    listed = {endpoint for endpoint, _url, _root in HTMX_ROUTES} | PAGE_ONLY
    gets = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    assert gets - listed == set()
    assert listed - gets == set()


@pytest.mark.parametrize(("endpoint", "url", "root"), HTMX_ROUTES)
def test_route_as_page_and_as_fragment(app, client, login_as, endpoint, url, root):
    user = login_as("admin")
    from portal.db import session_scope

    with session_scope(app) as session:
        runs.start(session, RunKind.SELF_CHECK, user=user)
    page = client.get(url)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<html" in body and f'id="{root}"' in body
    assert "HX-Request" in page.headers["Vary"]
    fragment = client.hx("GET", url)
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert "<html" not in text
    assert text.lstrip().startswith('<section class="card') or text.lstrip().startswith("<")
    assert f'id="{root}"' in text
    assert "HX-Request" in fragment.headers["Vary"]


def test_boosted_and_history_restore_requests_get_the_whole_page(client, login_as):
    login_as("admin")
    for header in ("HX-Boosted", "HX-History-Restore-Request"):
        response = client.get("/dashboard/checklist", headers={"HX-Request": "true",
                                                                header: "true"})
        assert "<html" in response.get_data(as_text=True)
