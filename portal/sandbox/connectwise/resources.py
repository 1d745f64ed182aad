"""Read-only reference collections (companies, members, GL accounts, tax codes…) and system info."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from . import permissions as P
from .context import Ctx
from .defaults import complete, complete_all
from .errors import not_found
from .glexport import LEVEL_WORDS

# path (lower case, under apis/3.0/) -> (table, schema, permission function)
COLLECTIONS: dict[str, tuple[str, str, tuple[str, str]]] = {
    "company/companies": ("companies", "Company", P.COMPANY),
    "company/contacts": ("contacts", "Contact", P.CONTACTS),
    "finance/glaccounts": ("gl_accounts", "GLAccount", P.TABLE_SETUP),
    "finance/taxcodes": ("tax_codes", "TaxCode", P.TABLE_SETUP),
    "finance/billingterms": ("billing_terms", "BillingTerm", P.TABLE_SETUP),
    "finance/billingstatuses": ("billing_statuses", "BillingStatus", P.TABLE_SETUP),
    "finance/currencies": ("currencies", "FinanceCurrency", P.TABLE_SETUP),
    "finance/accountingpackages": ("accounting_packages", "AccountingPackage", P.TABLE_SETUP),
    "finance/accountingpackagesetup": ("accounting_package_setup", "AccountingPackageSetup",
                                       P.TABLE_SETUP),
    "procurement/catalog": ("catalog", "CatalogItem", P.CATALOG),
    "procurement/products": ("products", "ProductItem", P.PRODUCTS),
    "procurement/types": ("product_types", "ProductType", P.CATALOG),
    "procurement/unitofmeasures": ("uoms", "UnitOfMeasure", P.TABLE_SETUP),
    "system/members": ("members", "Member", P.MEMBERS),
    "system/locations": ("locations", "Location", P.TABLE_SETUP),
    "time/workroles": ("work_roles", "WorkRole", P.TIME),
    "time/worktypes": ("work_types", "WorkType", P.TIME),
    "time/entries": ("time_entries", "TimeEntry", P.TIME),
    "expense/types": ("expense_types", "ExpenseType", P.TABLE_SETUP),
    "expense/entries": ("expense_entries", "ExpenseEntry", P.EXPENSES),
    "project/tickets": ("project_tickets", "ProjectTicket", P.PROJECT_TICKETS),
    "service/tickets": ("service_tickets", "Ticket", P.SERVICE_TICKETS),
}


def _rows(ctx: Ctx, table: str) -> list[dict[str, Any]]:
    rows = ctx.store.rows(table)
    if table in ("expense_entries", "time_entries"):
        return [r for r in rows if ctx.visible(r.get("locationId"))]
    if table == "currencies":
        return [_finance_currency(r) for r in rows]
    return list(rows)


def _finance_currency(record: dict[str, Any]) -> dict[str, Any]:
    """/finance/currencies answers FinanceCurrency, whose currencyCode is a reference object
    (CurrencyCodeReference), unlike the currency references embedded in invoices."""
    code = record.get("currencyCode")
    if isinstance(code, str):
        record = {**record, "currencyCode": {"id": record.get("id"), "name": code}}
    return complete(dict(record), "FinanceCurrency")


def collection_list(ctx: Ctx, path: str) -> Response:
    """GET on a reference collection: a bare array page."""
    table, schema, _ = COLLECTIONS[path]
    return ctx.list(_rows(ctx, table), schema)


def collection_count(ctx: Ctx, path: str) -> Response:
    """GET …/count on a reference collection."""
    table, schema, _ = COLLECTIONS[path]
    return ctx.count(_rows(ctx, table), schema)


def collection_get(ctx: Ctx, path: str, id: int) -> Response:
    """GET …/{id} on a reference collection."""
    table, _, _ = COLLECTIONS[path]
    rec = ctx.store.get(table, id)
    if rec is not None and table == "currencies":
        rec = _finance_currency(rec)
    if rec is not None and table in ("expense_entries", "time_entries") and not ctx.visible(
            rec.get("locationId")):
        rec = None
    return ctx.one(rec, f"{path.split('/')[-1]} {id}")


def sites(ctx: Ctx, id: int, sub: int | None = None, counting: bool = False) -> Response:
    """GET /company/companies/{id}/sites[/count|/{siteId}]."""
    if ctx.store.get("companies", id) is None:
        raise not_found(f"Company {id} was not found.")
    rows = [s for s in ctx.store.rows("sites") if s["company"]["id"] == id]
    if counting:
        return ctx.count(rows, "CompanySite")
    if sub is not None:
        return ctx.one(next((r for r in rows if r["id"] == sub), None), "Site")
    return ctx.list(rows, "CompanySite")


def tax_code_levels(ctx: Ctx, id: int, sub: int | None = None, counting: bool = False) -> Response:
    """GET /finance/taxCodes/{id}/taxCodeLevels: the six level columns as TaxCodeLevel rows."""
    code = ctx.store.get("tax_codes", id)
    if code is None:
        raise not_found(f"Tax code {id} was not found.")
    rows = []
    for n, word in enumerate(LEVEL_WORDS, start=1):
        if not code.get(f"level{word}Rate") and not code.get(f"level{word}TaxCodeXref"):
            continue
        rows.append({"id": n, "taxLevel": n, "taxRate": code.get(f"level{word}Rate"),
                     "rateType": code.get(f"level{word}RateType", "Percent"),
                     "taxableMax": code.get(f"level{word}TaxableMax"),
                     "caption": code.get(f"level{word}Caption"),
                     "taxCodeXref": code.get(f"level{word}TaxCodeXref"),
                     "agencyXref": code.get(f"level{word}AgencyXref"),
                     "taxServicesFlag": code.get(f"level{word}ServicesFlag"),
                     "taxExpensesFlag": code.get(f"level{word}ExpensesFlag"),
                     "taxProductsFlag": code.get(f"level{word}ProductsFlag"), "_info": {}})
    complete_all(rows, "TaxCodeLevel")
    if counting:
        return ctx.count(rows, "TaxCodeLevel")
    if sub is not None:
        return ctx.one(next((r for r in rows if r["id"] == sub), None), "Tax code level")
    return ctx.list(rows, "TaxCodeLevel")


def system_info(ctx: Ctx) -> Response:
    """GET /system/info: the Info object of the connection test."""
    return ctx.json(complete(dict(ctx.store.meta.get("system_info") or {}), "Info"))
