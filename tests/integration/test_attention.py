"""The dashboard's Needs attention card: open items of every kind with their links, marked
handled (audited) by admins and accountants, counted rather than repeated."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AttentionItem, AuditEvent
from portal.services import attention
from tests.integration.test_payment_pages import _enable, _sign

pytestmark = pytest.mark.integration
REFUSED = "QuickBooks webhook requests are refused"


def _card(client) -> str:  # type: ignore[no-untyped-def]
    page = client.hx("GET", "/dashboard/attention").get_data(as_text=True)
    start = page.index('id="attention-card"')
    return page[start:page.index("</section>", start)]


def _switch(client, login_as, role: str) -> None:  # type: ignore[no-untyped-def]
    client.post("/auth/logout", data={"csrf_token": client.csrf_token("/")})
    login_as(role)


def _refuse_one(client) -> None:  # type: ignore[no-untyped-def]
    body = b'[{"type": "qbo.payment.created.v1"}]'
    answer = client.post("/webhooks/qbo", data=body,
                         headers={"intuit-signature": _sign(body, "wrong-token")})
    assert answer.status_code == 401


def test_a_refused_signature_shows_on_the_dashboard_until_marked_handled(
        app, client, connected, redis_url):
    assert "Nothing needs attention." in _card(client)
    _enable(client)
    _refuse_one(client)
    card = _card(client)
    assert REFUSED in card and "Webhook signature refused" in card
    assert '<a href="/payments/webhooks">Open</a>' in card
    with session_scope(app) as session:
        [item] = session.scalars(sa.select(AttentionItem)).all()
        item_id = item.id

    token = client.csrf_token("/")
    answer = client.post(f"/attention/{item_id}/handled", data={"csrf_token": token},
                         headers={"HX-Request": "true", "HX-Target": "attention-card"})
    assert answer.status_code == 200
    fragment = answer.get_data(as_text=True)
    assert fragment.lstrip().startswith('<section class="card" id="attention-card"')
    assert "Nothing needs attention." in fragment and REFUSED not in _card(client)
    with session_scope(app) as session:
        item = session.get(AttentionItem, item_id)
        assert item.resolved_at is not None and item.resolved_by
        [event] = session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "attention.handled")).all()
        assert event.target_id == str(item_id) or event.target_id == item_id
    # marking it again changes nothing and is not audited twice
    again = client.post(f"/attention/{item_id}/handled", data={"csrf_token": token})
    assert again.status_code == 303
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "attention.handled")) == 1


def test_items_of_any_kind_are_counted_reopened_and_guarded(app, client, connected,
                                                           login_as):
    kind = attention.register("test_kind", "A kind of another part of portal")
    with app.app_context(), session_scope(app) as session:
        for _ in range(3):
            attention.raise_item(session, kind, "k1", "Something needs a look.",
                                 link="/batches/")
        session.commit()
        item_id = session.scalars(sa.select(AttentionItem.id)).one()
    card = _card(client)
    assert "A kind of another part of portal" in card and "3 times" in card
    assert card.count("Something needs a look.") == 1

    _switch(client, login_as, "viewer")
    assert "Mark handled" not in _card(client)
    token = client.csrf_token("/")
    assert client.post(f"/attention/{item_id}/handled",
                       data={"csrf_token": token}).status_code == 403
    assert client.post(f"/attention/{item_id}/handled").status_code in (400, 403)

    _switch(client, login_as, "accountant")
    token = client.csrf_token("/")
    assert client.post(f"/attention/{item_id}/handled",
                       data={"csrf_token": token}).status_code == 303
    with app.app_context(), session_scope(app) as session:
        attention.raise_item(session, kind, "k1", "Something needs a look.")  # stays handled
        session.commit()
    assert "Something needs a look." not in _card(client)
    with app.app_context(), session_scope(app) as session:
        attention.raise_item(session, kind, "k1", "It came back.", reopen=True)
        session.commit()
    card = _card(client)
    assert "It came back." in card and "times" not in card
