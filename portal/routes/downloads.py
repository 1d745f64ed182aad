"""CSV downloads: streamed responses, with the byte order mark Excel wants on request."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app, request, stream_with_context
from sqlalchemy.orm import Session


def wants_bom() -> bool:
    """`?bom=1`: the "for Excel" link; Excel reads UTF-8 only after a byte order mark."""
    return request.args.get("bom") == "1"


LINES_PER_CHUNK = 200  # one write per line would cost a system call each


def csv_download(lines: Callable[[Session, bool], Iterable[str]], filename: str) -> Response:
    """Stream `lines(session, bom)` as an attachment.

    The stream reads with a session of its own, closed when the last line is sent: the
    request's session is closed when the view returns, and a server-side cursor left open
    on it would hold its transaction (and PostgreSQL locks) after the download ends.
    Lines go out 200 to a chunk.
    """
    bom = wants_bom()

    def produce() -> Iterator[str]:
        session = current_app.extensions["portal.db"]()
        try:
            chunk: list[str] = []
            for line in lines(session, bom):
                chunk.append(line)
                if len(chunk) == LINES_PER_CHUNK:
                    yield "".join(chunk)
                    chunk.clear()
            if chunk:
                yield "".join(chunk)
        finally:
            session.close()

    return Response(stream_with_context(produce()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
