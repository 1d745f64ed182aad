"""The Users page: invite with a reset link, role changes, disabling, sessions."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.db import session_scope
from portal.models import AuditEvent, Role, User, UserSession
from tests.conftest import PASSWORD, PortalClient

pytestmark = pytest.mark.integration


def _user(app, email) -> User:
    with session_scope(app) as session:
        return session.scalar(sa.select(User).where(User.email == email))


def _actions(app):
    with session_scope(app) as session:
        return [e.action for e in session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]


def test_invite_shows_a_one_time_link_that_sets_the_password(app, client, login_as):
    login_as("admin")
    response = client.hx("POST", "/users/", data={"email": " New.Person@Example.test ",
                                                  "name": "New Person", "role": "accountant"})
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    link = re.search(r'value="(http://localhost/auth/reset/[^"]+)"', page).group(1)
    assert "new.person@example.test was created as Accountant" in page
    assert _user(app, "new.person@example.test").role is Role.ACCOUNTANT

    newcomer = app.test_client()
    path = link.replace("http://localhost", "")
    form = newcomer.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    weak = newcomer.post(path, data={"password": "short", "confirm": "short",
                                     "csrf_token": token})
    assert weak.status_code == 422
    assert "Use at least 12 characters" in weak.get_data(as_text=True)
    done = newcomer.post(path, data={"password": PASSWORD, "confirm": PASSWORD,
                                     "csrf_token": token})
    assert done.status_code == 303
    assert newcomer.get(path).status_code == 404  # single use
    fresh = app.test_client()
    fresh.__class__ = PortalClient
    assert fresh.login("new.person@example.test").status_code == 303
    assert "user.password_reset" in _actions(app)


def test_invite_with_bad_input_keeps_the_form_and_says_why(app, client, login_as):
    login_as("admin")
    response = client.hx("POST", "/users/", data={"email": "not-an-email", "role": "admin"})
    assert response.status_code == 422
    assert "Enter a valid email address." in response.get_data(as_text=True)
    duplicate = client.hx("POST", "/users/", data={"email": "admin@example.test",
                                                   "role": "viewer"})
    assert duplicate.status_code == 422
    assert "already exists" in duplicate.get_data(as_text=True)
    bad_role = client.hx("POST", "/users/", data={"email": "x@example.test", "role": "root"})
    assert bad_role.status_code == 422
    assert "Not a valid choice" in bad_role.get_data(as_text=True)


def test_role_change_ends_the_users_sessions_and_is_audited(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("viewer")
    other_client = app.test_client()
    other_client.__class__ = PortalClient
    assert other_client.login(other.email).status_code == 303
    response = client.hx("POST", f"/users/{other.id}/role", data={"role": "accountant"})
    assert response.status_code == 200
    row = response.get_data(as_text=True)
    assert row.startswith(f'<tr id="user-{other.id}"')
    assert '<option value="accountant" selected>' in row
    assert other_client.get("/").status_code == 302  # signed out
    with session_scope(app) as session:
        event = session.scalar(sa.select(AuditEvent).where(
            AuditEvent.action == "user.role_change"))
        assert (event.before, event.after) == ({"role": "viewer"}, {"role": "accountant"})


def test_last_admin_cannot_be_demoted_or_disabled(app, client, login_as, make_user):
    admin = login_as("admin")
    response = client.hx("POST", f"/users/{admin.id}/role", data={"role": "viewer"})
    assert response.status_code == 409
    assert ("admin@example.test is the last active admin and cannot be made viewer: make "
            "another user an admin first") in response.get_data(as_text=True)
    assert _user(app, admin.email).role is Role.ADMIN
    response = client.hx("POST", f"/users/{admin.id}/active", data={"active": "0"})
    assert response.status_code == 409
    assert "cannot disable your own account" in response.get_data(as_text=True)
    # A disabled admin does not count as another admin.
    make_user("admin", email="dormant@example.test", active=False)
    response = client.hx("POST", f"/users/{admin.id}/role", data={"role": "accountant"})
    assert response.status_code == 409 and _user(app, admin.email).role is Role.ADMIN


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, make_user):
    """Each request alone passes the check; the second must wait for the first and refuse."""
    import threading

    from portal.services import users

    first, second = make_user("admin", "one@example.test"), make_user("admin", "two@example.test")
    factory = app.extensions["portal.db"]
    outcome: list[str] = []

    def demote_first() -> None:
        with app.app_context():
            session = factory()
            try:
                users.change_role(session, session.get(User, first.id), Role.VIEWER,
                                  by=session.get(User, second.id))
                session.commit()
                outcome.append("demoted")
            except users.UserError:
                outcome.append("refused")
            except sa.exc.OperationalError:  # SQLite: "database is locked", rolled back
                outcome.append("failed")
            finally:
                session.rollback()
                session.close()

    with app.app_context():
        session = factory()
        users.change_role(session, session.get(User, second.id), Role.VIEWER,
                          by=session.get(User, first.id))
        session.flush()  # the first demotion is written, not yet committed
        other = threading.Thread(target=demote_first)
        other.start()
        other.join(timeout=1)  # it finishes at once without a lock, or waits for ours
        session.commit()
        session.close()
        other.join()
    assert outcome in (["refused"], ["failed"])
    with session_scope(app) as session:
        admins = session.scalars(sa.select(User.email).where(User.role == Role.ADMIN)).all()
    assert admins == ["one@example.test"]


def test_changing_ones_own_role_is_confirmed_and_shows_at_once(app, client, login_as,
                                                               make_user):
    admin = login_as("admin")
    make_user("admin", email="boss@example.test")
    page = client.get("/users/").get_data(as_text=True)
    assert 'hx-confirm="Change your own role? Unless you stay Admin' in page
    assert 'hx-confirm="Change the role of boss@example.test? They are signed out' in page
    elsewhere = app.test_client()
    elsewhere.__class__ = PortalClient
    assert elsewhere.login(admin.email).status_code == 303
    response = client.hx("POST", f"/users/{admin.id}/role", data={"role": "viewer"},
                         token_from="/users/")
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/"  # the whole page reloads
    dashboard = client.get("/")
    assert dashboard.status_code == 200  # this session goes on, under a new token
    text = dashboard.get_data(as_text=True)
    assert '<span class="badge">Viewer</span>' in text and "Your role is now Viewer." in text
    assert ">Users</a>" not in text
    assert client.get("/users/").status_code == 403
    assert elsewhere.get("/").status_code == 302  # its other sessions ended


def test_disable_and_enable(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("accountant")
    response = client.hx("POST", f"/users/{other.id}/active", data={"active": "0"})
    assert response.status_code == 200 and "Disabled" in response.get_data(as_text=True)
    assert not _user(app, other.email).active
    outsider = app.test_client()
    outsider.__class__ = PortalClient
    assert "Invalid email" in outsider.login(other.email).get_data(as_text=True)
    client.hx("POST", f"/users/{other.id}/active", data={"active": "1"})
    assert _user(app, other.email).active
    assert ["user.disable", "user.enable"] == [a for a in _actions(app) if a.startswith("user.")]


def test_reset_link_for_an_existing_user(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("viewer")
    first = client.hx("POST", f"/users/{other.id}/reset").get_data(as_text=True)
    second = client.hx("POST", f"/users/{other.id}/reset").get_data(as_text=True)
    old_link = re.search(r'value="http://localhost(/auth/reset/[^"]+)"', first).group(1)
    new_link = re.search(r'value="http://localhost(/auth/reset/[^"]+)"', second).group(1)
    assert app.test_client().get(old_link).status_code == 404  # replaced
    assert app.test_client().get(new_link).status_code == 200


def test_admin_can_end_a_users_sessions(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("viewer")
    other_client = app.test_client()
    other_client.__class__ = PortalClient
    other_client.login(other.email)
    response = client.hx("POST", f"/users/{other.id}/sessions/end")
    assert response.status_code == 200
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(UserSession).where(
            UserSession.user_id == other.id)) == 0
    assert other_client.get("/").status_code == 302


def test_users_page_lists_everyone(client, login_as, make_user):
    login_as("admin")
    make_user("viewer")
    page = client.get("/users/").get_data(as_text=True)
    assert "admin@example.test" in page and "viewer@example.test" in page


def test_sessions_page_lists_and_ends_sessions(app, client, login_as, make_user):
    login_as("admin")
    other = make_user("viewer")
    other_client = app.test_client()
    other_client.__class__ = PortalClient
    other_client.login(other.email)
    page = client.get("/users/sessions").get_data(as_text=True)
    assert "viewer@example.test" in page and "this session" in page
    with session_scope(app) as session:
        row_id = session.scalar(sa.select(UserSession.id).where(UserSession.user_id == other.id))
    response = client.hx("POST", f"/users/sessions/{row_id}/end")
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    assert other_client.get("/").status_code == 302
    assert client.hx("POST", f"/users/sessions/{row_id}/end").status_code == 404
