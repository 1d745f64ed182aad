"""The record types' memory (`types.base.Memory`) kept in the portal database.

A run keeps what its record type asks it to (first value wins, so nothing kept ever moves);
the selection screen reads it but keeps nothing, since a preview must not change state.
Record types read ConnectWise on a reader thread: `recall` uses a short session of its own,
and `keep` only notes the value, which the run writes with its next commit (`save`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import RecordMemory
from portal.services.batching.types.base import Memory


class StoredMemory(Memory):
    def __init__(self, session: Session, company_id: int, *, read_only: bool = False) -> None:
        self.bind = session.get_bind()
        self.company_id = company_id
        self.read_only = read_only
        self.pending: dict[str, str] = {}
        self.lock = threading.Lock()

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        wanted = sorted(set(keys))
        found: dict[str, str] = {}
        with Session(self.bind) as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(sa.select(RecordMemory.key, RecordMemory.value).where(
                    RecordMemory.company_id == self.company_id,
                    RecordMemory.key.in_(wanted[start:start + 500])))
                found.update({key: value for key, value in rows})
        with self.lock:
            found.update({k: v for k, v in self.pending.items() if k in wanted
                          and k not in found})
        return found

    def keep(self, key: str, value: str) -> None:
        if not self.read_only:
            with self.lock:
                self.pending.setdefault(key, value)

    def save(self, session: Session) -> None:
        """Two statements per commit at most, whatever was kept since the last one."""
        with self.lock:
            pending, self.pending = self.pending, {}
        if not pending:
            return
        known = set(session.scalars(sa.select(RecordMemory.key).where(
            RecordMemory.company_id == self.company_id,
            RecordMemory.key.in_(sorted(pending)))))
        rows = [{"company_id": self.company_id, "key": key, "value": value}
                for key, value in pending.items() if key not in known]
        if rows:
            session.execute(sa.insert(RecordMemory), rows)
