"""The seeded demo data set both sandboxes load: an MSP in ConnectWise and its QuickBooks books."""

from __future__ import annotations

from typing import Any

from . import connectwise as _cw
from . import names as N
from . import quickbooks as _qbo

__all__ = ["generate", "CURATED"]


def generate(seed: int = 42, scale: int = 0, expenses: int = 0,
             receipts: int = 0) -> dict[str, Any]:
    """Build the data set: `{"connectwise": {...}, "quickbooks": {...}}`.

    The same seed gives identical output. The curated cases (SPEC §17.4, named in CURATED)
    sit at fixed ids whatever the seed; the seed varies amounts, dates and lines. `scale`
    adds that many generated invoices, with customers, expenses and receipts, for benchmarks;
    `expenses` adds that many reimbursable expenses over 13 weeks (about 12 report groups a
    week, one per member), for the expense benchmark; `receipts` adds that many POs of four
    lines with one receipt each, for the procurement benchmark.
    """
    cw = _cw.build(seed, max(0, int(scale)), max(0, int(expenses)), max(0, int(receipts)))
    return {"connectwise": cw, "quickbooks": _qbo.build(cw)}


def _numbers(ids: Any) -> list[str]:
    return [_cw.number_of(i) for i in ids]


CURATED: dict[str, Any] = {
    "connectwise": {
        "company_id": N.COMPANY_ID,
        "credentials": dict(N.CREDENTIALS),
        "locations": {"Corporate": 1, "East": 2, "West": 3},
        "territories": {name: lid for lid, name in N.TERRITORIES},
        "member_without_vendor_number": N.NO_VENDOR_NUMBER,
        "member_named_like_qbo_employee": {"identifier": N.PAYROLL_TWIN, "name": "Maria Garcia"},
        "sub_customers": [c[0] for c in N.CUSTOMERS if ":" in c[0]],
        "sub_customer_parent_missing_in_qbo": N.MISSING_PARENT,
        "vendor_also_customer": N.VENDOR_AND_CUSTOMER,
        "eur_customer": N.EUR_CUSTOMER,
        "serialized_product": N.SERIALIZED,
        "product_types": [t[1] for t in N.PRODUCT_TYPES],
        "credit_memo_numbers": _numbers(_cw.CREDIT_MEMOS),
        "zero_invoice_number": _cw.number_of(_cw.ZERO_INVOICE),
        "no_gl_entries_invoice_number": _cw.number_of(_cw.NO_GL_INVOICE),
        "posted_invoice_numbers": _numbers(list(range(1, _cw.BATCHED + 1))
                                           + [_cw.BATCHED_CREDIT_MEMO]),
        "closed_batch_ids": list(range(1, _cw.CLOSED_BATCHES + 1)),
        "expense_ids": {"unapproved": [i + 1 for i in range(70) if _cw.EXPENSE_PLAN[i] ==
                                       "Unapproved"],
                        "personal": [i + 1 for i in range(70) if _cw.EXPENSE_PLAN[i] ==
                                     "Personal"],
                        "non_reimbursable_card": [i + 1 for i in range(70) if
                                                  _cw.EXPENSE_PLAN[i] == "NonReimbursable"],
                        "member_without_vendor_number": [4, 18],
                        "non_reimbursable_advance": [_cw.ADVANCE_EXPENSE],
                        "reimbursable_refund": [_cw.REFUND_EXPENSE],
                        "card_refund": [_cw.CARD_REFUND_EXPENSE],
                        "card_pair": [_cw.CARD_REFUND_EXPENSE, _cw.CARD_PAIR_EXPENSE]},
        "purchase_orders": {"partial_receipt": "NW-PO-0003", "freight": "NW-PO-0007",
                            "drop_ship": "NW-PO-0011", "return": "NW-PO-0005",
                            "blank_vendor_invoice": "NW-PO-0015",
                            "purchase_tax_us": f"NW-PO-{_cw.TAXED_US_PO:04d}",
                            "purchase_tax_canada": f"NW-PO-{_cw.TAXED_CA_PO:04d}"},
        "partial_receipt_vendor_invoice_number": "INV-88003",
        "adjustment_ids": [1, 2],
        "transfer_ids": [1],
        "two_level_tax_code": "NYC",
        "billing_term_without_xref": "Net 45",
        "gl_account_missing_in_qbo": N.CLOUD,
    },
    "quickbooks": {
        "realm_us": N.US_REALM,
        "realm_canada": N.CA_REALM,
        "app_client_id": N.QBO_APP["client_id"],
        "near_miss_customers": [{"cw": cw, "qbo": qbo, "kind": kind}
                                for cw, qbo, kind in N.NEAR_MISSES],
        "vendor_named_like_customer": {"cw_customer": N.VENDOR_NAMED_LIKE_CUSTOMER[0],
                                       "qbo_vendor": N.VENDOR_NAMED_LIKE_CUSTOMER[1]},
        "docnumber_collision": {"doc_number": _cw.number_of(_cw.COLLIDING_INVOICE),
                                "qbo_invoice_id": "401"},
        "missing_account": N.CLOUD,
        "item_account_mismatch": {"item": N.MISMATCHED_ITEM, "qbo_account": "Sales:Hardware",
                                  "cw_account": N.SOFTWARE},
        "paid_invoice_numbers": _numbers(range(1, _cw.BATCHED + 1)),
        "partially_paid_invoice_numbers": _numbers([17, 18]),
        "overpaid_invoice_number": _cw.number_of(15),  # 25.00 unapplied on its payment
        "wisepay_invoice_number": _cw.number_of(_cw.WISEPAY_INVOICE),
        "credit_memo_payment": {"payment_id": "520",
                                "invoice_numbers": _numbers([19, 20]),
                                "credit_memo_number": _cw.number_of(_cw.BATCHED_CREDIT_MEMO)},
        "payroll_employee_named_like_member": "Maria Garcia",
        "canada_tax_codes": {"GST": 1, "HST ON": 1, "GST/QST QC": 2},
    },
}
