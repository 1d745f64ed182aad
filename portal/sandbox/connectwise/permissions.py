"""Security roles of API members: the permission table of SPEC §3.2 and the System Level rule."""

from __future__ import annotations

from typing import Any

VERBS = ("add", "edit", "delete", "inquire")
ALL = list(VERBS)

COMPANY = ("Companies", "Company Maintenance")
CONTACTS = ("Companies", "Contacts")
ACCOUNTING = ("Finance", "Accounting Interface")
INVOICING = ("Finance", "Invoicing")
CATALOG = ("Procurement", "Product Catalog")
PRODUCTS = ("Procurement", "Products")
PURCHASE_ORDERS = ("Procurement", "Purchase Orders")
PROJECT_TICKETS = ("Project", "Project Tickets")
SERVICE_TICKETS = ("Service Desk", "Service Tickets")
MEMBERS = ("System", "Member Maintenance")
TABLE_SETUP = ("System", "Table Setup")
EXPENSES = ("Time & Expense", "Expense Report Entry")
TIME = ("Time & Expense", "Time Entry")

FUNCTIONS = (COMPANY, CONTACTS, ACCOUNTING, INVOICING, CATALOG, PRODUCTS, PURCHASE_ORDERS,
             PROJECT_TICKETS, SERVICE_TICKETS, MEMBERS, TABLE_SETUP, EXPENSES, TIME)


def key(function: tuple[str, str]) -> str:
    """The string form used in data files and `/_sim/role`: `Module.Function`."""
    return f"{function[0]}.{function[1]}"


def admin_role() -> dict[str, list[str]]:
    """Every function with every verb."""
    return {key(f): list(ALL) for f in FUNCTIONS}


def recommended_role() -> dict[str, list[str]]:
    """The "QuickBooks Sync" role SPEC §3.2 recommends (inquire everywhere, plus the writes)."""
    role = {key(f): ["inquire"] for f in FUNCTIONS}
    role[key(ACCOUNTING)] = list(ALL)
    role[key(INVOICING)] = ["edit", "delete", "inquire"]
    role[key(PURCHASE_ORDERS)] = ["edit", "inquire"]
    return role


def normalise(permissions: Any) -> dict[str, list[str]]:
    """Accept `{"Finance.Accounting Interface": ["add", …]}` or `"all"`; lower-case verbs."""
    if permissions in ("all", "*", "admin"):
        return admin_role()
    if permissions in ("recommended",):
        return recommended_role()
    if not isinstance(permissions, dict):
        raise ValueError("permissions must be an object of 'Module.Function': [verbs], "
                         "or 'all' / 'recommended'")
    out: dict[str, list[str]] = {}
    for name, verbs in permissions.items():
        if verbs in ("all", "All", "*"):
            verbs = list(ALL)
        if not isinstance(verbs, list) or any(str(v).lower() not in VERBS for v in verbs):
            raise ValueError(f"verbs for {name} must be a list of {', '.join(VERBS)}")
        out[str(name)] = [str(v).lower() for v in verbs]
    return out


def allows(role: dict[str, list[str]], function: tuple[str, str], verb: str) -> bool:
    """True when the role grants `verb` on the function (keys compared case-insensitively)."""
    wanted = key(function).casefold()
    for name, verbs in role.items():
        if name.casefold() == wanted:
            return verb in verbs
    return False
