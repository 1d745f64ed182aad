"""The query grammar: parser units, and live queries (filters, paging, errors never 500)."""

from __future__ import annotations

import pytest

from conftest import company
from portal.sandbox.quickbooks import query
from portal.sandbox.quickbooks.faults import ApiFault


@pytest.mark.parametrize("text", [
    "SELECT * FROM Invoice",
    "select count(*) from Customer where Active = true",
    "Select * From Customer Where DisplayName = 'O\\'Brien' And Balance > '0' OrderBy DisplayName Desc",
    "SELECT * FROM Invoice WHERE Id IN ('1', '2') ORDER BY TxnDate STARTPOSITION 11 MAXRESULTS 10",
    "select * from Customer where DisplayName like 'Acme%'",
    "select *, Sku from Item",
    "select * from Payment where Metadata.LastUpdatedTime > '2015-01-16'",
])
def test_valid_statements_parse(text):
    parsed = query.parse(text)
    assert parsed.entity


def test_parse_details():
    parsed = query.parse("select * from Customer where DisplayName = 'O\\'Brien' maxresults 5000")
    assert parsed.conditions[0].values == ["O'Brien"] and parsed.max_results == 1000
    assert query.parse("select count(*) from Invoice").count


@pytest.mark.parametrize("text, fragment", [
    ("select * from Customer where DisplayName = 'Geeks 'R Us'", 'Encountered " <IDENTIFIER> "R ""'),
    ("select * from", 'Encountered "<EOF>"'),
    ("select name from Customer", "Was expecting one of"),
    ("select * from Customer where DisplayName = 'open", "Lexical error"),
    ("select * from Customer where Name = 'O\u2019Neil'", "Lexical error"),
    ("", "Encountered"),
    ("select * from Invoice where TotalAmt >", "Encountered"),
    ("select * from Invoice orderby", "<IDENTIFIER>"),
    ("select * from Invoice where Id = '1' group by Id", 'Encountered " <IDENTIFIER> "group ""'),
])
def test_malformed_statements_give_4000(text, fragment):
    with pytest.raises(ApiFault) as failure:
        query.parse(text)
    assert failure.value.code == "4000" and fragment in failure.value.detail


def _people():
    names = ["Acme Corp", "Acme Labs", "O'Brien Law", "Zeta", "Inactive One"]
    customers = [{"Id": str(10 + i), "DisplayName": n, "Balance": i * 10} for i, n in enumerate(names)]
    customers[-1]["Active"] = False
    return company({"Customer": customers})


def test_live_filters_paging_and_escaping(launch):
    qbo = launch(_people())
    rows = qbo.query("select * from Customer where DisplayName like 'acme%' orderby DisplayName desc").json()
    assert [c["DisplayName"] for c in rows["QueryResponse"]["Customer"]] == ["Acme Labs", "Acme Corp"]
    rows = qbo.query("select * from Customer where DisplayName = 'O\\'Brien Law'").json()
    assert rows["QueryResponse"]["Customer"][0]["Id"] == "12"
    rows = qbo.query("select * from Customer where Id in ('10', '13') and Balance >= '30'").json()
    assert [c["Id"] for c in rows["QueryResponse"]["Customer"]] == ["13"]
    page = qbo.query("select * from Customer orderby Id startposition 2 maxresults 2").json()["QueryResponse"]
    assert page["startPosition"] == 2 and page["maxResults"] == 2 and len(page["Customer"]) == 2
    assert qbo.query("select count(*) from Customer").json()["QueryResponse"]["totalCount"] == 5
    everyone = qbo.query("select count(*) from Customer where Active in (true, false)").json()
    assert everyone["QueryResponse"]["totalCount"] == 6
    post = qbo.session.post(qbo.path("query"), data="select * from Customer where DisplayName = 'Zeta'",
                            headers={"Content-Type": "application/text"}, timeout=5)
    assert post.json()["QueryResponse"]["Customer"][0]["DisplayName"] == "Zeta"


@pytest.mark.parametrize("text, code", [
    ("select * from Customer where PrivateNote = 'x'", "4001"),
    ("select * from Invoice where PrivateNote = 'x'", "4001"),
    ("select * from Nothing", "4001"),
    ("select * from Customer where DisplayName = 'a' or DisplayName = 'b'", "4001"),
    ("select * from Customer where DisplayName = 'O'Brien'", "4000"),
    ("delete from Customer", "4000"),
    ("select * from Customer where DisplayName = 'ends with backslash\\'", "4000"),
])
def test_live_errors_are_400_faults(launch, text, code):
    qbo = launch(_people())
    answer = qbo.query(text)
    assert answer.status_code == 400, answer.text
    assert answer.json()["Fault"]["Error"][0]["code"] == code


def test_curly_quotes_switch(launch):
    qbo = launch(company({"Customer": [{"Id": "5", "DisplayName": "O\u2019Neil Dental"}]}))
    text = "select * from Customer where DisplayName = 'O\u2019Neil Dental'"
    assert qbo.query(text).json()["Fault"]["Error"][0]["code"] == "4000"
    safe = qbo.query("select * from Customer where DisplayName like 'O%'").json()["QueryResponse"]
    assert safe["Customer"][0]["Id"] == "5"
    qbo.sandbox.switches["sim.qbo_query_rejects_curly_quotes"] = False
    assert qbo.query(text).json()["QueryResponse"]["Customer"][0]["Id"] == "5"
