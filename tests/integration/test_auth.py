"""Sign-in, sign-out, throttling, sessions and their expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, PasswordReset, UserSession
from portal.models.types import utcnow
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration


def _events(app, action):
    with session_scope(app) as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_login_page_names_the_command_when_no_user_exists(client):
    page = client.get("/auth/login").get_data(as_text=True)
    assert "No user exists yet" in page
    assert "portal users create --email you@example.com --role admin" in page


def test_login_and_logout(app, client, make_user):
    user = make_user("accountant")
    response = client.login(user.email.upper(), PASSWORD)  # the login ignores case
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    token = client.csrf_token("/")
    response = client.post("/auth/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/").status_code == 302
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(UserSession).where(
            UserSession.user_id == user.id)) == 0
    assert [e.result for e in _events(app, "auth.login")] == ["ok"]
    assert len(_events(app, "auth.logout")) == 1


def test_wrong_password_and_unknown_account_get_the_same_message(app, client, make_user):
    user = make_user("viewer")
    wrong = client.login(user.email, "not the password at all")
    unknown = client.login("nobody@example.test", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "Invalid email or password." in response.get_data(as_text=True)
    assert [e.result for e in _events(app, "auth.login")] == ["denied", "denied"]


def test_disabled_user_cannot_sign_in(client, make_user):
    user = make_user("viewer", active=False)
    response = client.login(user.email)
    assert "Invalid email or password." in response.get_data(as_text=True)


def test_malformed_login_form_gets_field_messages(client):
    token = client.csrf_token()
    response = client.post("/auth/login", data={"email": "", "password": "",
                                                 "csrf_token": token})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter your email address." in page and "Enter your password." in page


def test_login_is_throttled_per_account(app, client, make_user):
    user = make_user("admin")
    for _ in range(10):
        assert "Invalid email" in client.login(user.email, "wrong password here").get_data(as_text=True)
    response = client.login(user.email, PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert "Too many attempts; try again in 15 minutes." in response.get_data(as_text=True)
    assert len(_events(app, "auth.lockout")) == 1
    # Another account from the same address is still allowed.
    other = make_user("viewer")
    assert client.login(other.email).status_code == 303


def test_successful_sign_ins_never_lock_the_account(app, client, make_user):
    user = make_user("admin")
    for _ in range(12):
        assert client.login(user.email).status_code == 303
        client.post("/auth/logout", data={"csrf_token": client.csrf_token("/")})
    for _ in range(9):  # the failures still count, up to the limit
        assert client.login(user.email, "wrong password here").status_code == 200
    assert client.login(user.email).status_code == 303
    assert _events(app, "auth.lockout") == []


def test_login_is_throttled_per_address(client, make_user):
    make_user("admin")
    for number in range(30):
        assert client.login(f"guess{number}@example.test", "wrong password").status_code == 200
    response = client.login("admin@example.test")
    assert response.status_code == 429


def _forgot(client, email):
    return client.post("/auth/forgot", data={"email": email,
                                             "csrf_token": client.csrf_token("/auth/forgot")})


def test_forgot_password_answers_the_same_for_any_address(app, client, make_user):
    user = make_user("viewer")
    assert 'href="/auth/forgot"' in client.get("/auth/login").get_data(as_text=True)
    known, unknown = _forgot(client, user.email), _forgot(client, "nobody@example.test")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)
    assert "ask an admin to make a reset link for you" in known.get_data(as_text=True)
    events = _events(app, "auth.forgot")
    assert [(e.actor, e.result, e.after) for e in events] == [
        (user.email, "ok", {"account": True, "sent": False}),
        ("nobody@example.test", "ok", {"account": False, "sent": False})]
    with session_scope(app) as session:  # no email yet: no link exists to hand over
        assert session.scalar(sa.select(sa.func.count()).select_from(PasswordReset)) == 0


def test_forgot_password_is_throttled_apart_from_sign_in(app, client, make_user):
    user = make_user("viewer")
    for _ in range(10):
        assert _forgot(client, user.email).status_code == 200
    refused = _forgot(client, user.email)
    assert refused.status_code == 429
    assert "Too many requests; try again in 15 minutes." in refused.get_data(as_text=True)
    assert _events(app, "auth.forgot")[-1].result == "denied"
    assert client.login(user.email).status_code == 303


def test_forgot_password_form_says_what_is_missing(client):
    response = client.post("/auth/forgot", data={"email": "",
                                                  "csrf_token": client.csrf_token("/auth/forgot")})
    assert response.status_code == 422
    assert "Enter the email address you sign in with." in response.get_data(as_text=True)


def test_login_rotates_the_session_token(app, client, make_user):
    user = make_user("admin")
    client.get("/auth/login")
    before = client.get_cookie("portal_session").value
    client.login(user.email)
    after = client.get_cookie("portal_session").value
    assert before != after
    with session_scope(app) as session:
        tokens = session.scalars(sa.select(UserSession.user_id)).all()
    assert tokens == [user.id]  # the anonymous session's row is gone


def test_session_cookie_flags(client, make_user):
    user = make_user("admin")
    response = client.login(user.email)
    cookie = next(h for h in response.headers.getlist("Set-Cookie")
                  if h.startswith("portal_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 43  # 256 random bits


def _age_sessions(app, **delta):
    with session_scope(app) as session:
        session.execute(sa.update(UserSession).values(
            last_seen_at=utcnow() - timedelta(**delta)))


def test_idle_timeout_signs_out(app, client, login_as):
    login_as("admin")
    _age_sessions(app, minutes=31)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session has ended" in page


def test_activity_keeps_the_session_alive(app, client, login_as):
    login_as("admin")
    _age_sessions(app, minutes=29)
    assert client.get("/").status_code == 200
    _age_sessions(app, minutes=29)
    assert client.get("/").status_code == 200


def test_absolute_lifetime_ends_even_an_active_session(app, client, login_as):
    login_as("admin")
    with session_scope(app) as session:
        session.execute(sa.update(UserSession).values(created_at=utcnow() - timedelta(hours=13)))
    assert client.get("/").status_code == 302


def test_expired_htmx_request_is_sent_to_login(app, client, login_as):
    login_as("admin")
    _age_sessions(app, hours=2)
    response = client.hx("GET", "/dashboard/checklist", current_url="/audit/?action=auth")
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/auth/login?next=/audit/?action%3Dauth&expired=1"
    assert response.get_data(as_text=True) == ""


def test_next_must_be_local(client, make_user):
    user = make_user("admin")
    token = client.csrf_token()
    response = client.post("/auth/login?next=https://evil.example/x",
                           data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"
    token = client.csrf_token("/")
    client.post("/auth/logout", data={"csrf_token": token})
    token = client.csrf_token()
    response = client.post("/auth/login?next=/audit/",
                           data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/audit/"


def test_expired_sessions_are_purged_at_the_next_sign_in(app, client, make_user):
    user = make_user("admin")
    stale = app.test_client()
    stale.get("/auth/login")  # an anonymous session row
    _age_sessions(app, hours=2)
    client.login(user.email)
    with session_scope(app) as session:
        rows = session.scalars(sa.select(UserSession)).all()
    assert [r.user_id for r in rows] == [user.id]
