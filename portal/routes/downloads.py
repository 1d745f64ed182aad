"""CSV downloads: streamed responses, with the byte order mark Excel wants on request."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Response, request, stream_with_context


def wants_bom() -> bool:
    """`?bom=1`: the "for Excel" link; Excel reads UTF-8 only after a byte order mark."""
    return request.args.get("bom") == "1"


def csv_download(lines: Callable[[bool], Iterable[str]], filename: str) -> Response:
    """Stream `lines(bom)` as an attachment; the generator runs inside the request."""
    return Response(stream_with_context(iter(lines(wants_bom()))),
                    mimetype="text/csv", headers={
                        "Content-Disposition": f'attachment; filename="{filename}"'})
