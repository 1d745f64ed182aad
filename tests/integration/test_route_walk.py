"""No 5xx on bad input: every route of the app, malformed values of every parameter kind,
as each role (and as an admin whose password was not entered recently).

The parameter names come from the code itself (every `args`/`form`/`values` lookup in the
routes and the selection form, every form class, every company setting), so a parameter
added later is walked without editing this file.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask_wtf import FlaskForm
from wtforms.fields.core import UnboundField

import portal
from portal.routes import forms
from portal.services import company_settings
from tests.conftest import PortalClient, age_password

pytestmark = pytest.mark.integration

SOURCES = ("routes/*.py", "services/selection.py")
ARGUMENT = re.compile(r"<(?:[^:>]+:)?(\w+)>")
LOOKUP = re.compile(r"\b(?:args|form|values)\.get(?:list)?\(\s*\"([^\"]+)\"")
HUGE = "99999999999999999999"
MALFORMED = {"huge": HUGE, "negative": "-1", "huge negative": f"-{HUGE}", "text": "abc",
             "empty": "", "oversized": "x" * 5000, "bad date": "2024-13-45",
             "nul": "a\x00b", "unicode digit": "\u00b2", "bad url": "http://["}
INT_PATHS = {"huge": HUGE, "over int32": str(2**31), "text": "abc", "zero": "0",
             "negative": "-1", "unicode digit": "\u0663"}
STRING_PATHS = {"oversized": "x" * 3000, "nul": "%00", "text": "no-such-thing"}
SAMPLE = {"kind": "customer", "tab": "company", "token": "x", "filename": "css/portal.css"}
HTMX_TOO = ("missing", "text", "bad url")  # also sent as htmx requests
SKIP = {"auth.logout"}  # takes no input; it would only sign the walker out
EXPECTED = {("health.readyz", 503)}  # "unavailable": no worker beats during tests


def parameter_names() -> set[str]:
    """Every query, form and settings field name the app reads."""
    root = Path(portal.__file__).parent
    names: set[str] = set()
    for pattern in SOURCES:
        for path in root.glob(pattern):
            names |= set(LOOKUP.findall(path.read_text("utf-8")))
    for _name, form in inspect.getmembers(forms, inspect.isclass):
        if issubclass(form, FlaskForm):
            names |= {n for n, v in vars(form).items() if isinstance(v, UnboundField)}
    names |= set(company_settings.BY_NAME)
    names |= {"user", "action", "since", "until"}  # the audit filters, read in a loop
    names |= {"next", "expired", "signed_out", "code", "realmId", "state", "error"}
    names.discard("csrf_token")  # a wrong token is a CSRF refusal, tested elsewhere
    return names


def test_the_walk_sees_the_parameters_routes_read():
    names = parameter_names()
    assert {"page", "before", "company", "cw_value", "user", "since", "role", "private_key",
            "client_secret", "location", "record"} <= names


def _path_variants(rule, valid: dict[str, str]) -> list[tuple[str, str]]:
    """(label, path): the valid path first, then each argument malformed in turn."""
    def build(values: dict[str, str]) -> str:
        return ARGUMENT.sub(lambda m: values[m.group(1)], rule.rule)

    variants = [("valid", build(valid))]
    for name, converter in rule._converters.items():
        numeric = "Integer" in type(converter).__name__
        if name == "filename":
            continue
        table = INT_PATHS if numeric else STRING_PATHS
        for label, raw in table.items():
            value = raw if raw.startswith("%") else quote(raw, safe="")
            variants.append((f"{name}={label}", build({**valid, name: value})))
    return variants


def _requests(rule, valid: dict[str, str], names: list[str]):
    """(label, method, url, form, htmx) for every request the walk sends to `rule`."""
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        for path_label, path in _path_variants(rule, valid):
            bags = [("missing", {})]
            if path_label == "valid":
                bags += [(label, dict.fromkeys(names, value))
                         for label, value in MALFORMED.items()]
            for label, bag in bags:
                for htmx in (False, True) if label in HTMX_TOO else (False,):
                    where = f"{method} {rule.endpoint} {path_label}/{label}" + \
                        (" htmx" if htmx else "")
                    if method == "GET":
                        yield where, method, f"{path}?{urlencode(bag)}" if bag else path, \
                            None, htmx
                    else:
                        yield where, method, path, bag, htmx


def _walk(app, client: PortalClient, valid: dict[str, str],
          only: Callable[[Any], bool] = lambda rule: True) -> tuple[list[str], int]:
    """Send every request to the rules `only` keeps; the failures (5xx or an exception)
    and how many requests were sent."""
    names = sorted(parameter_names())
    token = client.csrf_token("/")
    rules = sorted(app.url_map.iter_rules(),  # disconnecting the company last
                   key=lambda r: (r.endpoint.endswith("disconnect"), r.endpoint))
    failures: list[str] = []
    sent = 0
    for rule in rules:
        if rule.endpoint in SKIP or not only(rule):
            continue
        for where, method, url, form, htmx in _requests(rule, valid, names):
            headers = {"X-CSRFToken": token} if method != "GET" else {}
            if htmx:  # the page it came from is input too
                page = MALFORMED["bad url"] if "bad url" in where else "http://localhost/"
                headers.update({"HX-Request": "true", "HX-Current-URL": page})
            try:
                response = client.open(url, method=method, headers=headers, data=form)
                response.get_data()  # streamed bodies run their code now
                response.close()
            except Exception as exc:  # noqa: BLE001 - report every route at once
                failures.append(f"{where}: raised {exc!r}"[:300])
                continue
            sent += 1
            if response.status_code >= 500 and \
                    (rule.endpoint, response.status_code) not in EXPECTED:
                failures.append(f"{where}: {response.status_code}")
            if response.status_code == 403:
                break  # refused before any input is read: the role may not use it
    return failures, sent


@pytest.mark.parametrize("role", ["admin", "admin, password not recent", "accountant",
                                  "viewer"])
def test_no_route_answers_5xx_to_malformed_input(app, client, connected, make_user, role):
    other = make_user("viewer", email="someone.else@example.test")
    only: Callable[[Any], bool] = lambda rule: True
    if role == "admin, password not recent":
        age_password(app)  # sensitive actions answer with the prompt: what is walked
        only = lambda rule: "POST" in rule.methods or getattr(
            app.view_functions[rule.endpoint], "_portal_reauth", False)
    elif role != "admin":
        user = make_user(role)
        client = app.test_client()
        assert client.login(user.email).status_code == 303
    valid = {**SAMPLE, "company_id": str(connected.id), "user_id": str(other.id),
             "run_id": "1", "batch_id": "1", "item_id": "1", "session_id": "1", "qbo_id": "1",
             "report_id": "1"}
    failures, sent = _walk(app, client, valid, only)
    assert not failures, "\n".join(failures)
    assert sent > 300
