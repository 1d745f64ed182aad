"""The sidebar, in the order of the setup guide, showing what the user's role may open."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request, url_for
from flask_login import current_user

# label, endpoint, args, children
SIDEBAR: list[tuple[str, str | None, dict[str, str], list[tuple[str, str, dict[str, str]]]]] = [
    ("Dashboard", "dashboard.index", {}, []),
    ("Set up ConnectWise", "setup.connectwise", {}, []),
    ("Set up QuickBooks Online", "setup.quickbooks", {}, []),
    ("Mappings", "mappings.index", {}, []),
    ("Run new batch", None, {}, [
        ("Invoices", "batches.new", {"kind": "invoices"}),
        ("Expenses", "batches.new", {"kind": "expenses"}),
        ("Inventory", "batches.new", {"kind": "inventory"}),
        ("Payment sync", "payments.index", {}),
    ]),
    ("Review batches", "batches.index", {}, []),
    ("Email", "email.index", {}, []),
    ("Users", "users.index", {}, []),
    ("Audit log", "audit.index", {}, []),
]


@dataclass
class NavItem:
    label: str
    url: str = ""
    current: bool = False
    children: list["NavItem"] = field(default_factory=list)


def allowed(endpoint: str) -> bool:
    """Whether the signed-in user's role may open `endpoint` (its @role_required)."""
    view = current_app.view_functions[endpoint]
    roles = getattr(view, "_portal_roles", ())
    return current_user.is_authenticated and current_user.role.value in roles


def first_allowed(links: Iterable[tuple[str, Iterable[tuple[str, Any]]]]) -> str | None:
    """The URL of the first (endpoint, arguments) the user may open, or None."""
    for endpoint, args in links:
        if allowed(endpoint):
            return url_for(endpoint, **dict(args))
    return None


def _item(label: str, endpoint: str, args: dict[str, str]) -> NavItem:
    url = url_for(endpoint, **args)
    return NavItem(label, url, current=request.path == url)


def nav_items() -> list[NavItem]:
    items: list[NavItem] = []
    for label, endpoint, args, children in SIDEBAR:
        if endpoint is None:
            kids = [_item(c_label, c_ep, c_args) for c_label, c_ep, c_args in children
                    if allowed(c_ep)]
            if kids:
                items.append(NavItem(label, children=kids))
        elif allowed(endpoint):
            items.append(_item(label, endpoint, args))
    return items
