"""DbProgress: a run's done/total, status line and heartbeat, written to its JobRun row."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from portal.models import JobRun
from portal.models.types import utcnow

MAX_LOG_LINES = 200


class DbProgress:
    """Commits progress every `every` seconds (and on each message), so polling pages
    see movement without a write per item."""

    def __init__(self, session: Session, run: JobRun, every: float = 1.0) -> None:
        self.session = session
        self.run = run
        self.every = every
        self._last = 0.0

    def start(self, total: int | None, message: str | None = None) -> None:
        self.run.total = total
        self.run.done = 0
        self.message(message or "Started")

    def advance(self, count: int = 1, message: str | None = None) -> None:
        self.run.done += count
        if message is not None:
            self.run.message = message[:500]
        self._flush(force=False)

    def message(self, text: str, level: str = "info", **extra: Any) -> None:
        """Set the status line and append it to the run's log."""
        self.run.message = text[:500]
        entry = {"at": utcnow().isoformat(timespec="seconds"), "level": level, "text": text,
                 **extra}
        self.run.log = [*(self.run.log or []), entry][-MAX_LOG_LINES:]
        self._flush(force=True)

    def _flush(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self.run.heartbeat_at = utcnow()
            self.session.commit()
            self._last = now
