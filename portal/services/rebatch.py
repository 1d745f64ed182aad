"""Re-batching (SPEC 11.3, 6.3): a record posted before is selected again as generation g+1.

The new item carries the earlier generation's QuickBooks document (`earlier_qbo_id`, by
the id stored on the unbatched item, never found by marker), whether that document is
still live, voided or deleted, and what this generation does with it:

- `new`: the earlier document was voided or deleted; a new one is posted with
  `?include=allowduplicatedocnum` (a voided invoice keeps its DocNumber);
- `update` ("Update existing"): the earlier document is still live; it is fully updated
  with the new content (only when no payments are linked);
- `adopt` ("Adopt unchanged"): the earlier document is still live and kept; only the
  ConnectWise marking happens.

So a record never has two live documents (SPEC invariant I1). A record that is live in a
marked batch item but unposted again in ConnectWise was unbatched there ("changed in
ConnectWise"); selecting it closes the old item as `unbatched` (audited) first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import BatchItem, BatchItemEvent, ItemState, UnbatchRequest, User
from portal.services import audit
from portal.services.batching.types.base import Record

MODES = ("update", "adopt")  # the choices while the earlier document is live
CHANGED_STATES = (ItemState.MARKED, ItemState.DONE)
EARLIER_BY_ACTION = {"Void": "voided", "Delete": "deleted", "None": "live"}


def changed_in_connectwise(item: BatchItem | None) -> bool:
    """A live, marked record that ConnectWise lists as unposted again (SPEC 6.3)."""
    return item is not None and item.state in CHANGED_STATES


def release_changed(session: Session, records: Sequence[Record], live: dict[str, BatchItem],
                    user: User | None) -> None:
    """Close the marked items of records ConnectWise lists as unposted again, so they can
    be selected as the next generation (their QuickBooks document stays live)."""
    for record in records:
        item = live.get(record.key)
        if not changed_in_connectwise(item):
            continue
        assert item is not None
        session.add(BatchItemEvent(batch_id=item.batch_id, item_id=item.id,
                                   from_state=item.state.value,
                                   to_state=ItemState.UNBATCHED.value,
                                   text="changed in ConnectWise: selected again"))
        item.state = ItemState.UNBATCHED
        item.message = "Changed in ConnectWise after it was posted; selected again as " \
                       f"generation {item.generation + 1}."
        audit.record(session, "batch.unbatch_changed", target_type="batch_item",
                     target_id=item.id, company_id=item.batch.company_id,
                     after={"record": item.cw_number, "batch": item.batch_id,
                            "qbo_entity": item.qbo_entity, "qbo_id": item.qbo_id},
                     user_id=user.id if user else None)
        live.pop(record.key, None)
    session.flush()  # the closed rows leave the live index before the new items join it


def _latest_closed(session: Session, keys: Iterable[str]) -> dict[str, BatchItem]:
    keys = list(keys)
    found: dict[str, BatchItem] = {}
    for start in range(0, len(keys), 500):
        for item in session.scalars(sa.select(BatchItem).where(
                BatchItem.record_key.in_(keys[start:start + 500]),
                BatchItem.state == ItemState.UNBATCHED).order_by(BatchItem.id)):
            found[item.record_key] = item  # the newest wins
    return found


def earlier_state(session: Session, item: BatchItem) -> str | None:
    """What the unbatched item's document is now: live, voided or deleted (None: none)."""
    if not item.qbo_id:
        return None
    request = session.scalar(sa.select(UnbatchRequest).where(
        UnbatchRequest.item_id == item.id, UnbatchRequest.step == "done")
        .order_by(UnbatchRequest.id.desc()).limit(1))
    return EARLIER_BY_ACTION.get(request.qbo_action, "live") if request else "live"


def prepare(session: Session, items: Sequence[BatchItem], options: dict[str, Any]) -> None:
    """Make new items of records posted before the next generation (see the module)."""
    earlier = _latest_closed(session, [i.record_key for i in items])
    wanted = options.get("rebatch") if options.get("rebatch") in MODES else "update"
    for item in items:
        before = earlier.get(item.record_key)
        if before is None:
            continue
        item.generation = before.generation + 1
        state = earlier_state(session, before)
        item.earlier_state = state
        item.earlier_qbo_id = before.qbo_id
        item.rebatch_mode = wanted if state == "live" else "new"


def unbatched_keys(session: Session, keys: Iterable[str]) -> dict[str, tuple[int, bool]]:
    """Record key -> (the generation that was unbatched, whether its QuickBooks document is
    still live): the selection grid's flag, and whether Update existing / Adopt unchanged
    is asked for."""
    return {k: (i.generation, earlier_state(session, i) == "live")
            for k, i in _latest_closed(session, keys).items()}
