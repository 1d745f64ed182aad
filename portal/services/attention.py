"""Needs attention: problems a person must look at (a document voided outside portal, a
webhook whose signature is refused, ...), listed on the dashboard until marked handled.

Any part of portal raises items of its own kind: `register(kind, label)` once, then
`raise_item(...)` with a key unique within the kind. Raising an open item again counts it;
`reopen=True` brings a handled one back (a problem that can recur), otherwise a handled
item stays handled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import AttentionItem, User
from portal.models.types import utcnow
from portal.services import audit

KINDS: dict[str, str] = {}  # kind -> the label the card shows
CARD_LIMIT = 20


def register(kind: str, label: str) -> str:
    """Declare a kind of attention item and its label; returns the kind."""
    KINDS[kind] = label
    return kind


def label(kind: str) -> str:
    return KINDS.get(kind, kind.replace("_", " ").capitalize())


def raise_item(session: Session, kind: str, key: str, message: str, *,
               company_id: int | None = None, link: str | None = None,
               reopen: bool = False) -> AttentionItem:
    """Add an open item, or count one more occurrence of it. The caller commits."""
    item = session.scalar(sa.select(AttentionItem).where(AttentionItem.kind == kind,
                                                         AttentionItem.key == key[:200]))
    if item is None:
        item = AttentionItem(kind=kind, key=key[:200], company_id=company_id,
                             message=message[:500], link=link, occurrences=1)
        try:
            with session.begin_nested():
                session.add(item)
                session.flush()
            return item
        except IntegrityError:  # raised at the same moment elsewhere: count it there
            item = session.scalar(sa.select(AttentionItem).where(
                AttentionItem.kind == kind, AttentionItem.key == key[:200]))
            assert item is not None
    if item.resolved_at is not None:
        if not reopen:
            return item
        item.resolved_at, item.resolved_by, item.occurrences = None, None, 0
        item.created_at = utcnow()
    item.occurrences += 1
    item.last_seen_at = utcnow()
    item.message, item.link = message[:500], link or item.link
    return item


def open_items(session: Session, *, company_id: int | None = None,
               kinds: Iterable[str] | None = None, limit: int = CARD_LIMIT
               ) -> list[AttentionItem]:
    """Open items, newest first."""
    query = sa.select(AttentionItem).where(AttentionItem.resolved_at.is_(None))
    if company_id is not None:
        query = query.where(AttentionItem.company_id == company_id)
    if kinds is not None:
        query = query.where(AttentionItem.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(AttentionItem.last_seen_at.desc(),
                                               AttentionItem.id.desc()).limit(limit)))


def summary_columns(kinds: Iterable[str]) -> list[Any]:
    """The count of open items of `kinds` and the newest one's message, as columns a page's
    one statement can select (the dashboard's checklist)."""
    open_ = sa.select(AttentionItem).where(AttentionItem.resolved_at.is_(None),
                                           AttentionItem.kind.in_(list(kinds)))
    newest = open_.with_only_columns(AttentionItem.message).order_by(
        AttentionItem.last_seen_at.desc(), AttentionItem.id.desc()).limit(1)
    return [open_.with_only_columns(sa.func.count()).scalar_subquery().label("alert_count"),
            newest.scalar_subquery().label("alert_message")]


def open_count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(AttentionItem).where(
        AttentionItem.resolved_at.is_(None))) or 0


def mark_handled(session: Session, item_id: int, user: User) -> AttentionItem | None:
    """Close an open item, audited; None when there is no such open item. Commits."""
    item = session.get(AttentionItem, item_id)
    if item is None or item.resolved_at is not None:
        return None
    item.resolved_at, item.resolved_by = utcnow(), user.email
    audit.record(session, "attention.handled", target=item, company_id=item.company_id,
                 before={"open": True}, after={"open": False, "kind": item.kind,
                                               "message": item.message})
    session.commit()
    return item
