"""The route table: path patterns under `apis/3.0/`, their handlers and the permission each needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from . import accounting, invoices, procurement, resources
from . import permissions as P

Permission = tuple[tuple[str, str], str] | None


@dataclass(frozen=True)
class Route:
    """One method + path pattern; `{name}` segments take integers."""

    method: str
    pattern: tuple[str, ...]
    handler: Callable[..., Any]
    permission: Permission
    fixed: dict[str, Any] = field(default_factory=dict)

    def match(self, method: str, parts: list[str]) -> dict[str, Any] | None:
        """The path parameters when `parts` fits the pattern (any method), else None."""
        if len(parts) != len(self.pattern):
            return None
        params: dict[str, Any] = {}
        for want, got in zip(self.pattern, parts):
            if want.startswith("{"):
                if not got.lstrip("-").isdigit():
                    return None
                params[want[1:-1]] = int(got)
            elif want != got:
                return None
        return params


ROUTES: list[Route] = []


def add(method: str, path: str, handler: Callable[..., Any], permission: Permission,
        **fixed: Any) -> None:
    """Register one route (paths are matched in lower case)."""
    ROUTES.append(Route(method, tuple(path.lower().split("/")), handler, permission, fixed))


def _children(base: str, handler: Callable[..., Any], perm: Permission) -> None:
    """`base`, `base/count` and `base/{sub}` for a child collection under `{id}`."""
    add("GET", base, handler, perm)
    add("GET", base + "/count", partial(handler, counting=True), perm)
    add("GET", base + "/{sub}", handler, perm)


def _build() -> None:
    add("GET", "system/info", resources.system_info, None)
    for path, (_, _, function) in resources.COLLECTIONS.items():
        perm = (function, "inquire")
        add("GET", path, partial(resources.collection_list, path=path), perm)
        add("GET", path + "/count", partial(resources.collection_count, path=path), perm)
        add("GET", path + "/{id}", partial(resources.collection_get, path=path), perm)
    _children("company/companies/{id}/sites", resources.sites, (P.COMPANY, "inquire"))
    _children("finance/taxcodes/{id}/taxcodelevels", resources.tax_code_levels,
              (P.TABLE_SETUP, "inquire"))

    acc_read = (P.ACCOUNTING, "inquire")
    for name in ("invoices", "expenses", "procurement"):
        base = f"finance/accounting/unposted{name}"
        add("GET", base, partial(accounting.unposted_list, name=name), acc_read)
        add("GET", base + "/count", partial(accounting.unposted_count, name=name), acc_read)
        add("GET", base + "/{id}", partial(accounting.unposted_get, name=name), acc_read)
        _children(base + "/{id}/taxablelevels", partial(accounting.taxable_levels, name=name),
                  acc_read)
    add("GET", "finance/accounting/unpostedpayments", accounting.unposted_payments, acc_read)
    add("GET", "finance/accounting/unpostedpayments/count",
        partial(accounting.unposted_payments, counting=True), acc_read)
    add("GET", "finance/accounting/unpostedpayments/{id}", accounting.unposted_payments, acc_read)
    add("POST", "finance/accounting/export", accounting.export, acc_read)
    add("GET", "finance/accounting/batches", accounting.batch_list, acc_read)
    add("GET", "finance/accounting/batches/count", accounting.batch_count, acc_read)
    add("GET", "finance/accounting/batches/{id}", accounting.batch_get, acc_read)
    add("POST", "finance/accounting/batches", accounting.batch_create, (P.ACCOUNTING, "add"))
    add("DELETE", "finance/accounting/batches/{id}", accounting.batch_delete,
        (P.ACCOUNTING, "delete"))
    add("POST", "finance/accounting/batches/{id}/export", accounting.batch_export, acc_read)
    _children("finance/accounting/batches/{id}/entries", accounting.batch_entries, acc_read)

    inv_read = (P.INVOICING, "inquire")
    add("GET", "finance/invoices", invoices.invoice_list, inv_read)
    add("GET", "finance/invoices/count", invoices.invoice_count, inv_read)
    add("GET", "finance/invoices/{id}", invoices.invoice_get, inv_read)
    add("GET", "finance/invoices/{id}/pdf", invoices.invoice_pdf_get, inv_read)
    _children("finance/invoices/{id}/glentries", invoices.gl_entries, inv_read)
    add("GET", "finance/invoices/{id}/payments", invoices.payment_list, inv_read)
    add("GET", "finance/invoices/{id}/payments/count", invoices.payment_count, inv_read)
    add("GET", "finance/invoices/{id}/payments/{pid}", invoices.payment_get, inv_read)
    add("POST", "finance/invoices/{id}/payments", invoices.payment_create, (P.INVOICING, "edit"))
    add("PATCH", "finance/invoices/{id}/payments/{pid}", invoices.payment_patch,
        (P.INVOICING, "edit"))
    add("PUT", "finance/invoices/{id}/payments/{pid}", invoices.payment_put,
        (P.INVOICING, "edit"))
    add("DELETE", "finance/invoices/{id}/payments/{pid}", invoices.payment_delete,
        (P.INVOICING, "delete"))

    po_read = (P.PURCHASE_ORDERS, "inquire")
    add("GET", "procurement/purchaseorders", procurement.po_list, po_read)
    add("GET", "procurement/purchaseorders/count", procurement.po_count, po_read)
    add("GET", "procurement/purchaseorders/{id}", procurement.po_get, po_read)
    _children("procurement/purchaseorders/{id}/lineitems", procurement.line_items, po_read)
    add("POST", "procurement/purchaseorders/{id}/unbatch", procurement.unbatch,
        (P.PURCHASE_ORDERS, "edit"))
    add("POST", "procurement/purchaseorders/{id}/rebatch", procurement.rebatch,
        (P.PURCHASE_ORDERS, "edit"))


_build()


def find(method: str, parts: list[str]) -> tuple[Route | None, dict[str, Any], bool]:
    """The route for a request: (route, params, path_known). path_known without a route → 405."""
    known = False
    for route in ROUTES:
        params = route.match(method, parts)
        if params is None:
            continue
        known = True
        if route.method == method:
            return route, params, True
    return None, {}, known
