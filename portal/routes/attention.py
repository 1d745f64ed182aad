"""Needs attention: marking an item handled (the card lives on the dashboard)."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block

from portal.db import get_session
from portal.htmx import is_fragment_request
from portal.routes.decorators import role_required
from portal.services import attention

bp = Blueprint("attention", __name__, url_prefix="/attention")


def card_context() -> dict:  # type: ignore[type-arg]
    session = get_session()
    return {"attention_items": attention.open_items(session),
            "attention_open": attention.open_count(session),
            "attention_label": attention.label}


@bp.post("/<int:item_id>/handled")
@role_required("admin", "accountant")
def handled(item_id: int):  # type: ignore[no-untyped-def]
    """Close one item (audited); an item already closed by someone else is simply gone."""
    attention.mark_handled(get_session(), item_id, current_user)
    if is_fragment_request():
        return render_block("dashboard/index.html", "attention_card", **card_context())
    return redirect(url_for("dashboard.index"), 303)
