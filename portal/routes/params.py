"""Request parameters made safe to query with, for the whole app.

Whole numbers from the URL, the query string and forms are bounded, and text holding a
NUL character is refused.

Ids and page numbers end up in queries against 32-bit integer columns. A number past that
range used to reach the database and fail there (OverflowError on SQLite,
NumericValueOutOfRange on PostgreSQL): a 500 for what is only bad input. Bounding numbers
where the request is parsed fixes every route at once:

- `<int:...>` in a route is `BoundedIntConverter`: a number out of range matches no
  route, so the answer is 404 like any unknown id;
- `request.args/.form/.values.get(name, type=int)` and `.getlist(name, type=int)` use
  `bounded_int`: a number out of range is ignored like any other malformed value (the
  default is used, or the item is left out of the list).

PostgreSQL cannot store a NUL character in text and raises on it (SQLite takes it), so a
URL part, query string or form holding one gets a 400 naming the problem before any route runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, abort, request
from htmx_flask.requests import HtmxAwareRequest
from werkzeug.datastructures import CombinedMultiDict, ImmutableMultiDict
from werkzeug.routing import IntegerConverter, Map
from werkzeug.utils import cached_property

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1  # PostgreSQL `integer`, the type of every id column


def bounded_int(value: Any) -> int:
    """`int(value)`, refusing (ValueError) what a 32-bit integer column cannot hold."""
    number = int(value)
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError("number out of range")
    return number


def _bounded(kind: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    return bounded_int if kind is int else kind


class _BoundedLookups:
    """`get`/`getlist` with `type=int` bounded; everything else as Werkzeug does it."""

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:
        return super().get(key, default, _bounded(type))  # type: ignore[misc]

    def getlist(self, key: Any, type: Any = None) -> Any:
        return super().getlist(key, _bounded(type))  # type: ignore[misc]


class BoundedMultiDict(_BoundedLookups, ImmutableMultiDict):  # type: ignore[type-arg]
    """The query string and form data of every request."""


class BoundedCombinedMultiDict(_BoundedLookups, CombinedMultiDict):  # type: ignore[type-arg]
    """`request.values`: Werkzeug's combined dict converts values itself, not via `get`."""


class PortalRequest(HtmxAwareRequest):
    """The request class of the app: htmx headers plus bounded numbers."""

    parameter_storage_class = BoundedMultiDict

    @cached_property
    def values(self) -> CombinedMultiDict:  # type: ignore[type-arg]
        sources = [self.args]
        if self.method != "GET":
            sources.append(self.form)
        return BoundedCombinedMultiDict(sources)


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` for the whole app: a number past INT_MAX matches no route (404)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min,
                         max=INT_MAX if max is None else max, signed=signed)


def refuse_nul() -> None:
    """400 for a URL part, query string or form holding a NUL character (no text field
    takes one)."""
    if any(isinstance(value, str) and "\x00" in value
           for value in (request.view_args or {}).values()):
        abort(400, "The address holds a NUL character, which no field accepts. Remove it "
                   "and try again.")
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400, "The request holds a NUL character, which no field accepts. "
                           "Remove it and try again.")


def init_app(app: Flask) -> None:
    """Install all three; call before any blueprint is registered (rules bind converters)."""
    app.request_class = PortalRequest
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(refuse_nul)
