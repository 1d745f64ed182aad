"""Pages of the setup guide whose features are still to come: each says so plainly."""

from __future__ import annotations

from flask import Blueprint, abort

from portal.htmx import render
from portal.routes.decorators import ALL_ROLES, role_required

BATCH_KINDS = {"invoices": "Invoices", "expenses": "Expenses", "inventory": "Inventory",
               "payments": "Payment sync"}

batches = Blueprint("batches", __name__, url_prefix="/batches")
email = Blueprint("email", __name__, url_prefix="/email")


def _coming(title: str, summary: str):  # type: ignore[no-untyped-def]
    return render("placeholder.html", title=title, summary=summary)


@batches.get("/new/<kind>")
@role_required("admin", "accountant")
def new(kind: str):  # type: ignore[no-untyped-def]
    if kind not in BATCH_KINDS:
        abort(404)
    return _coming(f"Run new batch: {BATCH_KINDS[kind]}",
                   "Pick unposted ConnectWise transactions and post them to QuickBooks Online.")


@batches.get("/", endpoint="index")
@role_required(*ALL_ROLES)
def batches_index():  # type: ignore[no-untyped-def]
    return _coming("Review batches", "Every batch with its records, colours and messages.")


@batches.get("/clear")
@role_required("admin")
def clear():  # type: ignore[no-untyped-def]
    return _coming("Clear old transactions", "Mark transactions already in QuickBooks as "
                   "exported so they are never posted.")


@email.get("/", endpoint="index")
@role_required("admin", "accountant")
def email_index():  # type: ignore[no-untyped-def]
    return _coming("Email", "Email invoices with a payment link, and the send log.")
