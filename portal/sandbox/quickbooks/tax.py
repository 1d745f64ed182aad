"""Sales tax: US manual (TxnTaxCodeRef), US Automated Sales Tax, and non-US per-line tax codes."""

from __future__ import annotations

from typing import Any

from . import faults
from .context import Ctx, resolve
from .prefs import is_us
from .util import money

# A small AST rate table by ship-to state (percent); sandbox AST is not Intuit's engine either.
AST_RATES: dict[str, list[tuple[str, float]]] = {
    "CA": [("California State", 6.0), ("California District", 1.25)],
    "NY": [("New York State", 4.0), ("New York City", 4.5), ("Metropolitan Commuter", 0.375)],
    "TX": [("Texas State", 6.25), ("Texas Local", 2.0)],
    "WA": [("Washington State", 6.5), ("Washington Local", 3.6)],
    "FL": [("Florida State", 6.0), ("Florida County", 1.0)],
    "IL": [("Illinois State", 6.25), ("Illinois Local", 4.0)],
    "MA": [("Massachusetts State", 6.25)],
    "NJ": [("New Jersey State", 6.625)],
    "PA": [("Pennsylvania State", 6.0)],
    "GA": [("Georgia State", 4.0), ("Georgia Local", 4.0)],
    "CO": [("Colorado State", 2.9), ("Colorado Local", 4.0)],
    "OR": [], "DE": [], "MT": [], "NH": [], "AK": [],
}


def _tax_line(amount: float, net: float, percent: float, rate_ref: dict[str, Any]) -> dict[str, Any]:
    return {"DetailType": "TaxLineDetail", "Amount": money(amount),
            "TaxLineDetail": {"NetAmountTaxable": money(net), "TaxPercent": percent,
                              "TaxRateRef": rate_ref, "PercentBased": True}}


def _ship_state(ctx: Ctx, obj: dict[str, Any]) -> str:
    for addr in (obj.get("ShipAddr"), obj.get("BillAddr")):
        if isinstance(addr, dict) and addr.get("CountrySubDivisionCode"):
            return str(addr["CountrySubDivisionCode"]).upper()
    return ""


def _company_state(ctx: Ctx, company: dict[str, Any]) -> str:
    return str((company.get("CompanyAddr") or {}).get("CountrySubDivisionCode") or "").upper()


def ast_tax(ctx: Ctx, obj: dict[str, Any], taxable: float, company: dict[str, Any]) -> dict[str, Any]:
    """AST: honour a supplied TotalTax (spread over the rates), else compute from the state table."""
    state = _ship_state(ctx, obj) or _company_state(ctx, company)
    rates = AST_RATES.get(state, [])
    supplied = (obj.get("TxnTaxDetail") or {}).get("TotalTax")
    total_rate = sum(rate for _, rate in rates)
    lines: list[dict[str, Any]] = []
    if supplied is not None:
        total = money(supplied)
        remaining = total
        for index, (name, rate) in enumerate(rates):
            share = remaining if index == len(rates) - 1 else money(total * rate / total_rate)
            remaining = money(remaining - share)
            lines.append(_tax_line(share, taxable, rate, {"value": f"AST-{state}-{index + 1}",
                                                          "name": name}))
        return {"TotalTax": total, "TaxLine": lines}
    for index, (name, rate) in enumerate(rates):
        lines.append(_tax_line(taxable * rate / 100, taxable, rate,
                               {"value": f"AST-{state}-{index + 1}", "name": name}))
    return {"TotalTax": money(sum(line["Amount"] for line in lines)), "TaxLine": lines}


def _code_rates(ctx: Ctx, code: dict[str, Any], list_key: str) -> list[tuple[dict[str, Any], float]]:
    details = (code.get(list_key) or {}).get("TaxRateDetail") or []
    found = []
    for detail in details:
        rate = ctx.realm.get("TaxRate", (detail.get("TaxRateRef") or {}).get("value"))
        if rate is not None:
            found.append((rate, float(rate.get("RateValue", 0) or 0)))
    return found


def us_manual_tax(ctx: Ctx, obj: dict[str, Any], taxable: float) -> dict[str, Any]:
    """US without AST: the transaction's TxnTaxCodeRef (a tax group) gives the rates."""
    detail = obj.get("TxnTaxDetail") or {}
    code = resolve(ctx, detail.get("TxnTaxCodeRef"), "TaxCode")
    if code is None:
        return {"TotalTax": money(detail.get("TotalTax", 0) or 0)}
    lines = [_tax_line(taxable * rate / 100, taxable, _num(rate), {"value": tax_rate["Id"]})
             for tax_rate, rate in _code_rates(ctx, code, "SalesTaxRateList")]
    total = money(sum(line["Amount"] for line in lines))
    supplied = detail.get("TotalTax")
    if supplied is not None and ctx.switches["sim.qbo_us_manual_honours_total_tax"]:
        total = money(supplied)  # [uncertain] QuickBooks keeps a supplied total (SPEC 7.4)
    return {"TxnTaxCodeRef": {"value": code["Id"]}, "TotalTax": total, "TaxLine": lines}


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def line_tax_codes(ctx: Ctx, lines: list[tuple[float, Any]], list_key: str,
                   inclusive: bool) -> tuple[dict[str, Any], float]:
    """Non-US: each line's TaxCodeRef brings its rates; tax is reported per rate."""
    per_rate: dict[str, list[float]] = {}
    rate_values: dict[str, float] = {}
    for amount, code_ref in lines:
        code = resolve(ctx, code_ref, "TaxCode")
        if code is None:
            continue
        rates = _code_rates(ctx, code, list_key)
        combined = sum(rate for _, rate in rates)
        net = amount / (1 + combined / 100) if inclusive else amount
        for tax_rate, rate in rates:
            bucket = per_rate.setdefault(tax_rate["Id"], [0.0, 0.0])
            bucket[0] += net
            bucket[1] += net * rate / 100
            rate_values[tax_rate["Id"]] = rate
    tax_lines = [_tax_line(tax, net, _num(rate_values[rid]), {"value": rid})
                 for rid, (net, tax) in per_rate.items()]
    total = money(sum(line["Amount"] for line in tax_lines))
    return {"TotalTax": total, "TaxLine": tax_lines}, total


def sales_tax(ctx: Ctx, obj: dict[str, Any], regular: list[dict[str, Any]], company: dict[str, Any],
              discount: float, subtotal: float) -> tuple[dict[str, Any] | None, float, bool]:
    """TxnTaxDetail for a sales form, the tax to add to the total, and whether amounts include tax."""
    settings = ctx.settings
    if not settings.get("using_sales_tax"):
        return {"TotalTax": 0}, 0.0, False
    if is_us(settings):
        taxable = sum(_amount(line) for line in regular
                      if _detail(line).get("TaxCodeRef", {}).get("value") == "TAX")
        if obj.get("ApplyTaxAfterDiscount") and subtotal:
            taxable = taxable * (1 - discount / subtotal)
        taxable = money(taxable)
        detail = ast_tax(ctx, obj, taxable, company) if settings.get("ast") \
            else us_manual_tax(ctx, obj, taxable)
        return detail, float(detail["TotalTax"]), False
    mode = obj.setdefault("GlobalTaxCalculation", "TaxExcluded")
    if mode == "NotApplicable":
        if obj.get("TxnTaxDetail"):
            raise faults.ApiFault("6170", "Invalid TxnTaxDetail Error",
                                  "Business Validation Error: TxnTaxDetail is not allowed when "
                                  "GlobalTaxCalculation is NotApplicable", "")
        return None, 0.0, False
    pairs = [(_amount(line), _detail(line).get("TaxCodeRef")) for line in regular]
    detail, total = line_tax_codes(ctx, pairs, "SalesTaxRateList", mode == "TaxInclusive")
    supplied = (obj.get("TxnTaxDetail") or {}).get("TaxLine")
    if supplied and mode == "TaxExcluded" and ctx.switches["sim.qbo_nonus_honours_tax_lines"]:
        # [uncertain] QuickBooks keeps the tax lines it is given (SPEC 7.4)
        lines = [dict(line, Amount=money(line.get("Amount", 0) or 0)) for line in supplied]
        total = money(sum(line["Amount"] for line in lines))
        detail = {"TotalTax": total, "TaxLine": lines}
    return detail, (0.0 if mode == "TaxInclusive" else total), mode == "TaxInclusive"


def purchase_tax(ctx: Ctx, obj: dict[str, Any], lines: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, float]:
    """Bills and expenses: non-US companies apply the purchase rates of each line's code."""
    if is_us(ctx.settings) or not ctx.settings.get("using_sales_tax"):
        supplied = obj.get("TxnTaxDetail")
        return ({"TotalTax": money(supplied.get("TotalTax", 0) or 0)} if isinstance(supplied, dict)
                else None), 0.0
    mode = obj.setdefault("GlobalTaxCalculation", "TaxExcluded")
    if mode == "NotApplicable":
        return None, 0.0
    pairs = [(_amount(line), _detail(line).get("TaxCodeRef")) for line in lines]
    detail, total = line_tax_codes(ctx, pairs, "PurchaseTaxRateList", mode == "TaxInclusive")
    return detail, (0.0 if mode == "TaxInclusive" else total)


def _detail(line: dict[str, Any]) -> dict[str, Any]:
    return line.get(line.get("DetailType", ""), {}) or {}


def _amount(line: dict[str, Any]) -> float:
    return float(line.get("Amount", 0) or 0)
