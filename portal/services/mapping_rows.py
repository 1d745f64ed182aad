"""Per-company mapping rows keyed by a ConnectWise value (tax codes, currencies, item types):
find, put and drop one row, each change audited with its before and after."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.models import Company
from portal.services import audit


def find(session: Session, model: Any, company: Company, key: str, value: str) -> Any:
    return session.scalar(sa.select(model).where(model.company_id == company.id,
                                                 getattr(model, key) == value))


def put(session: Session, model: Any, company: Company, key: str, value: str, field: str,
        target: str, *, action: str, row: Any = None, **after: Any) -> None:
    """Insert or update the row of `value`, setting `field` to `target`."""
    row = row if row is not None else find(session, model, company, key, value)
    before = {field: getattr(row, field)} if row is not None else None
    if row is None:
        row = model(company_id=company.id, **{key: value, field: target})
        session.add(row)
    setattr(row, field, target)
    session.flush()
    audit.record(session, action, target_type=model.__tablename__, target_id=value,
                 company_id=company.id, before=before, after={field: target, **after})


def drop(session: Session, model: Any, company: Company, key: str, value: str, field: str,
         *, action: str) -> bool:
    """Delete the row of `value`; False when there was none (nothing is audited then)."""
    row = find(session, model, company, key, value)
    if row is None:
        return False
    audit.record(session, action, target_type=model.__tablename__, target_id=value,
                 company_id=company.id, before={field: getattr(row, field)})
    session.delete(row)
    session.flush()
    return True
