"""The conditions grammar: valid expressions filter correctly, malformed ones are clean 400s."""

from __future__ import annotations

import pytest

from portal.sandbox.connectwise.conditions import (ConditionError, compile_child_conditions,
                                                   compile_conditions, parse)

RECORDS = [
    {"id": 1, "identifier": "SMK", "name": "Samkaup hf", "total": 10.5, "closedFlag": False,
     "dateEntered": "2015-12-24T00:00:00Z", "company": {"id": 250, "name": "Acme Corp"},
     "agreement": None, "status": {"name": "Closed"}, "types": [{"name": "Customer"}]},
    {"id": 2, "identifier": "ABC", "name": "Fred's Shop", "total": 0, "closedFlag": True,
     "dateEntered": "2015-12-01T00:00:00Z", "company": {"id": 42, "name": "Other"},
     "agreement": {"id": 9}, "status": {"name": "Open"}, "types": [{"name": "Vendor"}]},
    {"id": 3, "identifier": "X\"Q", "name": "Summary test", "total": 300, "closedFlag": False,
     "dateEntered": "2016-01-01T00:00:00Z", "company": {"id": 250, "name": "Acme Corp"},
     "status": {"name": "Closed"}, "types": []},
]


def ids(text: str, schema: str | None = None) -> list[int]:
    predicate = compile_conditions(text, schema)
    return [r["id"] for r in RECORDS if predicate(r)]


@pytest.mark.parametrize("text, expected", [
    ('identifier = "SMK"', [1]),
    ('identifier = "smk"', [1]),
    ("total > 0", [1, 3]),
    ("total >= 10.5 and total <= 300", [1, 3]),
    ("total < 1", [2]),
    ("total != 0", [1, 3]),
    ("closedFlag = false", [1, 3]),
    ("closedFlag = True", [2]),
    ("company/id = 250", [1, 3]),
    ('company/name contains "acme"', [1, 3]),
    ('name like "Fred%"', [2]),
    ('name like "*test"', [3]),
    ('name not like "Fred%"', [1, 3]),
    ('name not contains "shop"', [1, 3]),
    ("agreement/id = null", [1, 3]),
    ("agreement/id != null", [2]),
    ("id in (1, 3)", [1, 3]),
    ('identifier in ("ABC", "SMK")', [1, 2]),
    ("id not in (1,3)", [2]),
    ("dateEntered > [2015-12-23T05:53:27Z]", [1, 3]),
    ("dateEntered < [2015-12-23]", [2]),
    ("not closedFlag = true", [1, 3]),
    ("(id = 1 or id = 2) and closedFlag = false", [1]),
    ("id = 1 or id = 2 and closedFlag = false", [1]),
    ('identifier = "X\\"Q"', [3]),
    ('(company/name like "Acme%" and closedFlag = false) and dateEntered > '
     '[2015-12-23T05:53:27Z] or name contains "test" AND name != "Some Summary"', [1, 3]),
    ('types/name = "Vendor"', [2]),
])
def test_valid_conditions_filter_records(text: str, expected: list[int]) -> None:
    assert ids(text) == expected


@pytest.mark.parametrize("text", [
    "", "id =", "id = = 1", "(id = 1", "id = 1)", "id === 1", 'name = "open', "id in 1",
    "id in ()", "and id = 1", "id = 1 and", "name like 5", "dateEntered > [not a date]",
    "id = 1 or or id = 2", "id ~ 1", "id = 1; drop table",
])
def test_malformed_conditions_are_400(text: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_conditions(text)
    body = caught.value.body()
    assert caught.value.status == 400
    assert body["code"] and body["message"]
    assert body["errors"][0]["resource"] == "conditions"


@pytest.mark.parametrize("text", [
    "nosuchfield = 1", "company/nosuch = 1", 'total contains "1"', 'total = "abc"',
    "closedFlag > true",
])
def test_unknown_fields_and_wrong_types_are_400(text: str) -> None:
    with pytest.raises(ConditionError):
        compile_conditions(text, "Invoice")


def test_schema_fields_are_case_insensitive_and_nested() -> None:
    predicate = compile_conditions('Company/Name = "acme corp" and _info/lastUpdated != null',
                                   "Invoice")
    assert predicate({"company": {"name": "Acme Corp"}, "_info": {"lastUpdated": "x"}})


def test_child_conditions_need_one_matching_element() -> None:
    contact = {"communicationItems": [
        {"value": "john@x.com", "communicationType": "Phone"},
        {"value": "555", "communicationType": "Email"}]}
    both = compile_child_conditions(
        'communicationItems/value like "john@x.com" AND communicationItems/communicationType="Email"',
        "Contact")
    assert not both(contact)
    contact["communicationItems"][0]["communicationType"] = "Email"
    assert both(contact)


def test_parse_tree_shape() -> None:
    assert parse("a = 1 or b = 2 and c = 3") == (
        "or", [("cmp", "a", "=", 1), ("and", [("cmp", "b", "=", 2), ("cmp", "c", "=", 3)])])
