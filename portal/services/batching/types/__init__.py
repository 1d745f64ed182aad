"""The record types by batch type. Concrete types load on first use, so the builders they
import can themselves use `types.base`."""

from __future__ import annotations

from portal.models import BatchType
from portal.services.batching.types.base import RecordType


def record_type(kind: BatchType | str) -> RecordType:
    """The record type of a batch type; KeyError for a type that is not built."""
    kind = BatchType(kind)
    if kind is BatchType.INVOICE:
        from portal.services.batching.types.invoices import INVOICES

        return INVOICES
    if kind is BatchType.EXPENSE:
        from portal.services.batching.types.expenses import EXPENSES

        return EXPENSES
    if kind is BatchType.INVENTORY:
        from portal.services.batching.types.procurement import PROCUREMENT

        return PROCUREMENT
    raise KeyError(f"{kind.value} batches are not built yet")
