"""Paging through 2,500 records: navigable (page + Link) and forward-only (pageId)."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from portal.sandbox.connectwise import ConnectWiseSandbox, serve
from portal.sandbox.demo_data import generate


@pytest.fixture(scope="module")
def big(client_cls: Any) -> Iterator[Any]:
    sandbox = ConnectWiseSandbox(data=generate(seed=42, scale=2400)["connectwise"])
    server = serve(sandbox)
    client = client_cls(server, sandbox)
    yield client
    client.session.close()
    server.stop()


def _links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', header)}


def test_navigable_paging_with_link_headers(big: Any) -> None:
    total = big.get("finance/accounting/unpostedinvoices/count").json()["count"]
    assert total >= 2500
    seen: list[int] = []
    url: str | None = "finance/accounting/unpostedinvoices?pageSize=1000&page=1"
    pages = 0
    while url:
        resp = big.get(url)
        assert resp.status_code == 200
        seen += [row["id"] for row in resp.json()]
        pages += 1
        links = _links(resp.headers.get("Link", ""))
        for link in links.values():
            assert re.search(r"page=\d+$", link), link       # page= is the last parameter
        url = links.get("next")
    assert pages == 3
    assert len(seen) == total == len(set(seen))
    assert seen == sorted(seen)


def test_last_and_prev_links_and_size_cap(big: Any) -> None:
    resp = big.get("finance/accounting/unpostedinvoices?pageSize=5000&page=2")
    assert len(resp.json()) == 1000                      # capped at 1000
    links = _links(resp.headers["Link"])
    assert set(links) == {"first", "prev", "next", "last"}
    assert links["last"].endswith("page=3")


def test_commas_in_conditions_are_encoded_in_links(big: Any) -> None:
    resp = big.get("finance/accounting/unpostedinvoices",
                   params={"conditions": "billingLogId in (1,2,3,21,22,23,24)", "pageSize": 2})
    assert resp.status_code == 200
    link = resp.headers["Link"]
    assert "%2C" in link and len(link.split(",")) == 2   # one comma, between the two links


def test_forward_only_paging(big: Any) -> None:
    headers = dict(big.headers, **{"pagination-type": "forward-only"})
    seen: list[int] = []
    url: str | None = "finance/accounting/unpostedinvoices?pageSize=1000"
    while url:
        resp = big.get(url, headers=headers)
        assert resp.status_code == 200
        assert "Link" in resp.headers
        seen += [row["id"] for row in resp.json()]
        match = re.match(r'<([^>]*)>; rel="next"', resp.headers["Link"])
        url = match.group(1) if match else None
        if url:
            assert re.search(r"pageId=\d+$", url)
    assert resp.headers["Link"] == ""
    total = big.get("finance/accounting/unpostedinvoices/count").json()["count"]
    assert len(seen) == total == len(set(seen)) and seen == sorted(seen)


def test_short_page_loop_works_too(big: Any) -> None:
    rows: list[Any] = []
    page = 1
    while True:
        chunk = big.get(f"finance/invoices?pageSize=1000&page={page}").json()
        rows += chunk
        if len(chunk) < 1000:
            break
        page += 1
    assert len(rows) == big.get("finance/invoices/count").json()["count"]


def test_bad_paging_parameters_are_400(big: Any) -> None:
    assert big.get("finance/invoices?page=abc").status_code == 400
    assert big.get("finance/invoices?page=0").status_code == 400
