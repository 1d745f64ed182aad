"""Pages of the setup guide whose features are still to come: each says so plainly."""

from __future__ import annotations

from flask import Blueprint

from portal.htmx import render
from portal.routes.decorators import role_required

email = Blueprint("email", __name__, url_prefix="/email")


def _coming(title: str, summary: str):  # type: ignore[no-untyped-def]
    return render("placeholder.html", title=title, summary=summary)


@email.get("/", endpoint="index")
@role_required("admin", "accountant")
def email_index():  # type: ignore[no-untyped-def]
    return _coming("Email", "Email invoices with a payment link, and the send log.")
