"""Inventory adjustments and transfers as QuickBooks JournalEntries (SPEC 9.4).

Pure: no database, no HTTP. An adjustment puts each detail line's inventory asset account
against its adjustment account (cost × quantity, debit or credit by sign); a transfer moves
value from the source to the destination inventory account or class. When every leg nets
out on the same account and class there is nothing to post ("no accounting effect").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from portal.services.batching.builders.invoice import CENT, _dec, _jsonable, money
from portal.services.batching.builders.procurement import Built, Facts, _resolved
from portal.services.batching.types.base import Need
from portal.services.company_settings import CompanySettings
from portal.services.mapping import MappingSet, Problem, Resolution


@dataclass(frozen=True)
class Leg:
    """One side of a journal entry, before it is resolved."""

    account: str
    klass: str
    amount: Decimal  # > 0: debit; < 0: credit
    description: str


def adjustment_legs(adjustment: dict[str, Any]) -> list[Leg]:
    """Per detail line: the inventory asset account against the adjustment account, amount
    cost × quantity, debit or credit by its sign."""
    legs = []
    header_account = str(adjustment.get("accountNumber") or "")
    for detail in adjustment.get("adjustmentDetail") or []:
        amount = money(_dec(detail.get("cost")) * _dec(detail.get("quantity")))
        if not amount:
            amount = money(detail.get("total"))
        klass = str(detail.get("glClass") or adjustment.get("glClass") or "")
        item = (detail.get("item") or {}).get("identifier") or ""
        memo = detail.get("memo") or adjustment.get("memo") or ""
        text = f"{item} × {detail.get('quantity')}: {memo}"
        legs.append(Leg(str(detail.get("inventoryAccountNumber") or ""), klass, amount,
                        text.strip()))
        legs.append(Leg(str(detail.get("accountNumber") or header_account), klass, -amount,
                        text.strip()))
    return legs


def transfer_legs(transfer: dict[str, Any]) -> list[Leg]:
    """Destination debited, source credited, by the transfer's cost."""
    offset = transfer.get("offset") or {}
    amount = money(transfer.get("total")) or money(_dec(transfer.get("cost"))
                                                   * _dec(transfer.get("quantity")))
    item = (transfer.get("item") or {}).get("identifier") or ""
    text = (f"{item} × {transfer.get('quantity')}: "
            f"{transfer.get('transferFromLocationXref') or ''} → "
            f"{transfer.get('transferToLocationXref') or ''}")
    to_account = str(transfer.get("inventoryAccountNumber") or transfer.get("accountNumber")
                     or "")
    return [Leg(to_account, str(transfer.get("glClass") or ""), amount, text),
            Leg(str(offset.get("accountNumber") or to_account), str(offset.get("glClass") or ""),
                -amount, text)]


def journal_values(legs: list[Leg], settings: CompanySettings,
                   mapping: MappingSet) -> list[Resolution]:
    found = []
    for leg in legs:
        found.append(mapping.account(leg.account, "inventory journal"))
        if settings.use_classes and leg.klass:
            found.append(mapping.klass(leg.klass))
    return found


def check_journal(legs: list[Leg], settings: CompanySettings, mapping: MappingSet,
                  label: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for leg in legs:
        if not leg.account:
            problems.append(Problem(label, "error", f"{label.capitalize()} has a line without "
                                                    "a GL account in ConnectWise.",
                                    "Map the product's inventory and adjustment GL accounts "
                                    "in ConnectWise."))
    for found in journal_values([leg for leg in legs if leg.account], settings, mapping):
        if found.blocking and (found.kind, found.cw_value) not in seen:
            seen.add((found.kind, found.cw_value))
            problems.append(Problem(label, "error", found.message or found.status, found.hint,
                                    found.kind, found.cw_value, found.status))
    return problems


def journal_needs(legs: list[Leg], settings: CompanySettings,
                  mapping: MappingSet) -> list[Need]:
    found: dict[str, Need] = {}
    if settings.use_classes:
        for leg in legs:
            if leg.klass and mapping.klass(leg.klass).status == "will_create":
                found.setdefault(leg.klass, Need("class", leg.klass, {
                    "parent": leg.klass.rpartition(":")[0] or None}))
    return list(found.values())


def _side(leg: Leg, settings: CompanySettings, facts: Facts,
          mapping: MappingSet) -> tuple[str, str | None]:
    account = _resolved(mapping.account(leg.account), "GL account")
    klass = None
    if settings.use_classes and facts.class_tracking != "none" and leg.klass:
        klass = _resolved(mapping.klass(leg.klass), "Class")
    return account, klass


def build_journal(legs: list[Leg], settings: CompanySettings, facts: Facts,
                  mapping: MappingSet, *, doc_number: str, day: date | None, what: str,
                  request_token: str) -> Built:
    """A balanced JournalEntry; nothing when every leg nets out on the same account and
    class ("no accounting effect", SPEC 9.4)."""
    net: dict[tuple[str, str | None], Decimal] = {}
    texts: dict[tuple[str, str | None], str] = {}
    for leg in legs:
        side = _side(leg, settings, facts, mapping)
        net[side] = net.get(side, Decimal(0)) + leg.amount
        texts.setdefault(side, leg.description)
    total = sum((abs(leg.amount) for leg in legs if leg.amount > 0), Decimal(0))
    if all(amount == 0 for amount in net.values()):
        return Built(None, doc_number, None, total, None,
                     note=f"no accounting effect: both sides of {what} are the same account "
                          "and class; marked without a document", cw_signed=total)
    lines = []
    for (account, klass), amount in net.items():
        if amount == 0:
            continue
        detail: dict[str, Any] = {"PostingType": "Debit" if amount > 0 else "Credit",
                                  "AccountRef": {"value": account}}
        if klass:
            detail["ClassRef"] = {"value": klass}
        lines.append({"DetailType": "JournalEntryLineDetail", "Amount": abs(amount),
                      "Description": texts[(account, klass)][:4000],
                      "JournalEntryLineDetail": detail})
    debit = sum((ln["Amount"] for ln in lines
                 if ln["JournalEntryLineDetail"]["PostingType"] == "Debit"), Decimal(0))
    payload: dict[str, Any] = {"DocNumber": doc_number, "Line": lines,
                               "PrivateNote": f"ConnectWise {what} · portal:{request_token}"}
    if day:
        payload["TxnDate"] = day.isoformat()
    return Built("JournalEntry", doc_number, _jsonable(payload), debit.quantize(
        CENT, ROUND_HALF_UP), None, cw_signed=total)

