"""`portal worker --burst`, counting the SQL statements and commits it sends.

The benchmarks run this as the worker process (instead of the `portal` script) so they can
report statements per record; the count lands in the JSON file named by the first argument
when the worker exits. Nothing here is part of portal.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading

from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal.cli import main

_lock = threading.Lock()
counts = {"statements": 0, "commits": 0}


def _statement(*_args: object) -> None:
    with _lock:
        counts["statements"] += 1


def _commit(*_args: object) -> None:
    with _lock:
        counts["commits"] += 1


def _write(path: str) -> None:
    with open(path, "w") as handle:
        json.dump(counts, handle)


if __name__ == "__main__":
    out = sys.argv[1]
    event.listen(Engine, "before_cursor_execute", _statement)
    event.listen(Engine, "commit", _commit)
    atexit.register(_write, out)
    main(["worker", "--burst"])
