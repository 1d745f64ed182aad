"""List mechanics shared by every collection: conditions, orderBy, fields, paging, Link, /count."""

from __future__ import annotations

from typing import Any, Callable, Iterable
from urllib.parse import quote

from werkzeug.wrappers import Request

from .conditions import (
    compile_child_conditions,
    compile_conditions,
    field_kind,
    parse_date,
    resolve,
)
from .errors import CwError, bad_request
from .render import pick_fields, render

DEFAULT_PAGE_SIZE = 25


def _int_arg(request: Request, name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"The value '{raw}' is not valid for {name}.", field=name,
                          resource=name) from None


def filter_records(request: Request, records: Iterable[dict], schema: str) -> list[dict]:
    """Apply `conditions` and `childConditions` (customFieldConditions is refused)."""
    predicates: list[Callable[[dict], bool]] = []
    conditions = request.args.get("conditions")
    if conditions:
        predicates.append(compile_conditions(conditions, schema))
    child = request.args.get("childConditions") or request.args.get("childconditions")
    if child:
        predicates.append(compile_child_conditions(child, schema))
    if request.args.get("customFieldConditions"):
        raise bad_request("customFieldConditions is not supported by this server.",
                          field="customFieldConditions", resource="customFieldConditions")
    if not predicates:
        return list(records)
    return [r for r in records if all(p(r) for p in predicates)]


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, float(value))
    if isinstance(value, str):
        when = parse_date(value) if len(value) >= 10 and value[4:5] == "-" else None
        return (2, when.timestamp()) if when else (3, value.casefold())
    return (4, str(value))


def order_records(request: Request, records: list[dict], schema: str) -> list[dict]:
    """`orderBy=field[/sub] [asc|desc], …`; default id ascending; unknown fields are a 400."""
    spec = request.args.get("orderBy") or request.args.get("orderby")
    records = sorted(records, key=lambda r: _sort_key(r.get("id")))
    if not spec:
        return records
    for part in reversed([p.strip() for p in spec.split(",") if p.strip()]):
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(f"orderBy '{spec}' is not valid; use 'field asc' or 'field desc'.",
                              field="orderBy", resource="orderBy")
        path = words[0]
        field_kind(schema, path)
        reverse = len(words) == 2 and words[1].lower() == "desc"
        records.sort(key=lambda r: _sort_key(resolve(r, path)[0]), reverse=reverse)
    return records


def _fields(request: Request) -> list[list[str]] | None:
    raw = request.args.get("fields")
    if not raw:
        return None
    return [f.strip().split("/") for f in raw.split(",") if f.strip()]


def shape(request: Request, record: dict, base: str) -> dict:
    """Render one record, applying `fields` when given."""
    out = render(record, base)
    wanted = _fields(request)
    return pick_fields(out, wanted) if wanted else out


def _link_url(request: Request, public_base: str, extra: list[tuple[str, str]]) -> str:
    """The request URL with paging parameters replaced; `page`/`pageId` last, commas encoded."""
    skip = {"page", "pageid", "pagesize"}
    parts = [(k, v) for k, v in request.args.items(multi=True) if k.lower() not in skip]
    page_size = [(k, v) for k, v in extra if k == "pageSize"]
    tail = [(k, v) for k, v in extra if k != "pageSize"]
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                     for k, v in parts + page_size + tail)
    return f"{public_base}{request.path.lstrip('/')}?{query}"


def list_response(request: Request, records: Iterable[dict], schema: str, base: str,
                  public_root: str, max_page_size: int = 1000) -> tuple[list[dict], dict[str, str]]:
    """Filter, order and page `records`; returns (rendered page, headers with Link).

    Navigable paging sends first/prev/next/last links with `page=` as the last parameter;
    forward-only paging (header `pagination-type: forward-only`, or a `pageId`) orders by id,
    treats pageId as `id > pageId`, and sends an empty Link on the last page (CW-REF §6).
    """
    page = _int_arg(request, "page")
    page_size = _int_arg(request, "pageSize") or _int_arg(request, "pagesize")
    page_id = _int_arg(request, "pageId")
    if page is not None and page < 1:
        raise bad_request(f"The value '{page}' is not valid for page.", field="page",
                          resource="page")
    size = DEFAULT_PAGE_SIZE if not page_size or page_size < 1 else min(page_size, max_page_size)
    forward = (request.headers.get("pagination-type", "").lower() == "forward-only"
               or page_id is not None)
    rows = filter_records(request, records, schema)
    headers: dict[str, str] = {}
    if forward:
        rows = sorted(rows, key=lambda r: _sort_key(r.get("id")))
        if page_id is not None:
            rows = [r for r in rows if isinstance(r.get("id"), (int, float)) and r["id"] > page_id]
        chunk = rows[:size]
        more = len(rows) > size
        headers["Link"] = (f'<{_link_url(request, public_root, [("pageSize", str(size)), ("pageId", str(chunk[-1]["id"]))])}>; rel="next"'
                           if more and chunk else "")
        return [shape(request, r, base) for r in chunk], headers
    rows = order_records(request, rows, schema)
    current = page or 1
    last = max(1, -(-len(rows) // size))
    chunk = rows[(current - 1) * size: current * size]
    links = []

    def link(n: int, rel: str) -> str:
        return f'<{_link_url(request, public_root, [("pageSize", str(size)), ("page", str(n))])}>; rel="{rel}"'
    if current > 1:
        links += [link(1, "first"), link(min(current - 1, last), "prev")]
    if current < last:
        links += [link(current + 1, "next"), link(last, "last")]
    if links:
        headers["Link"] = ", ".join(links)
    return [shape(request, r, base) for r in chunk], headers


def count(request: Request, records: Iterable[dict], schema: str) -> dict[str, int]:
    """`/count`: the number of records matching conditions and childConditions."""
    return {"count": len(filter_records(request, records, schema))}


def ensure(condition: bool, error: CwError) -> None:
    """Raise `error` unless `condition` holds (keeps handlers flat)."""
    if not condition:
        raise error
