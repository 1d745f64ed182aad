"""QuickBooks setup tabs per company: view (admin, accountant) and save one tab (admin)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice

from portal.db import get_session
from portal.htmx import is_fragment_request, render
from portal.models import Company
from portal.routes.decorators import role_required
from portal.services import company_settings as cs
from portal.services import reference

bp = Blueprint("settings", __name__, url_prefix="/setup/quickbooks")

TEMPLATE = "settings/tabs.html"


def _company(company_id: int) -> Company:
    company = get_session().get(Company, company_id)
    if company is None:
        abort(404)
    return company


def _tab(company: Company, slug: str) -> cs.Tab:
    tab = cs.tab_for(company, slug)
    if tab is None:  # unknown, or Taxes under Automated Sales Tax
        abort(404)
    return tab


# ---- the form, built from the settings' declarations ------------------------------------

def _select_choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _field(setting: cs.Setting, company: Company, pairs: list[tuple[str, str]],
           current: Any) -> Field:
    """The WTForms field of one setting (validation stays in the service)."""
    kind = setting.kind
    options: dict[str, Any] = {"label": cs.label_of(setting, company),
                               "description": cs.hint_of(setting, company),
                               "id": f"setting-{setting.name}"}
    if isinstance(kind, cs.Bool):
        reason = cs.unavailable(setting)
        if reason:  # shown, greyed, with the reason (the service refuses it too)
            return BooleanField(render_kw={"disabled": True},
                                **{**options, "description": reason})
        return BooleanField(**options)
    if isinstance(kind, cs.Int):
        return StringField(render_kw={"type": "number", "min": kind.low, "max": kind.high,
                                      "inputmode": "numeric"}, **options)
    if isinstance(kind, cs.Dec):
        return StringField(render_kw={"inputmode": "decimal"}, **options)
    if isinstance(kind, cs.Day):
        return StringField(render_kw={"type": "date"}, **options)
    if isinstance(kind, cs.Multi):
        return SelectMultipleField(choices=_select_choices(pairs), validate_choice=False,
                                   render_kw={"size": min(8, max(3, len(pairs)))}, **options)
    if isinstance(kind, cs.QboObject):
        known = {value for value, _label in pairs}
        stale = [(current, f"{current} (no longer in the reference data)")] \
            if current and current not in known else []
        return SelectField(choices=_select_choices([("", "None")] + pairs + stale),
                           validate_choice=False, **options)
    if isinstance(kind, cs.Choice):
        return SelectField(choices=_select_choices(pairs), validate_choice=False, **options)
    if isinstance(kind, cs.LongText):
        return TextAreaField(render_kw={"rows": 12, "spellcheck": "false",
                                        "maxlength": kind.max_length}, **options)
    if isinstance(kind, cs.Lines):
        return TextAreaField(render_kw={"rows": 4, "spellcheck": "false"}, **options)
    if isinstance(kind, cs.Text):
        return StringField(render_kw={"maxlength": kind.max_length}, **options)
    return StringField(render_kw={"autocomplete": "off", "spellcheck": "false"}, **options)


def _form(company: Company, tab: cs.Tab, values: dict[str, Any]) -> FlaskForm:
    """A form class made for this company's tab, filled with `values` (never request data)."""
    session = get_session()

    class TabForm(FlaskForm):
        pass

    for setting in cs.settings_of(tab.slug, company, editable_only=True):
        pairs = cs.choices(session, company, setting)
        current = values.get(setting.name)
        setattr(TabForm, setting.name, _field(setting, company, pairs, current))
    return TabForm(formdata=None, data=values)


def _submitted(company: Company, tab: cs.Tab) -> dict[str, Any]:
    """The tab's values as posted. Checkboxes and multi-selects carry a hidden empty input,
    so an unticked box is "off"; a field absent from the request keeps its stored value."""
    data: dict[str, Any] = {}
    for setting in cs.settings_of(tab.slug, company, editable_only=True):
        if setting.name not in request.form:
            continue
        if isinstance(setting.kind, (cs.Bool, cs.Multi)):
            data[setting.name] = request.form.getlist(setting.name)
        else:
            data[setting.name] = request.form.get(setting.name, "")
    return data


def _form_values(company: Company, tab: cs.Tab, settings: cs.CompanySettings,
                 submitted: dict[str, Any] | None) -> dict[str, Any]:
    """What the fields show: the stored values, overlaid with what was just posted."""
    values = cs.form_values(settings, tab.slug, company)
    for name, raw in (submitted or {}).items():
        kind = cs.BY_NAME[name].kind
        if isinstance(kind, cs.Bool):
            values[name] = kind.parse(raw, [])
        elif isinstance(kind, cs.Multi):
            values[name] = [v for v in raw if v]
        else:
            values[name] = raw
    return values


def _panel(company: Company, tab: cs.Tab, *, submitted: dict[str, Any] | None = None,
           errors: list[cs.SettingError] | None = None, toast: str | None = None) -> str:
    """The page, or block tab_panel for htmx: tab list, the tab's form, its read-only parts."""
    session = get_session()
    settings = cs.get_settings(session, company)
    form = _form(company, tab, _form_values(company, tab, settings, submitted))
    messages: dict[str, list[str]] = {}
    for error in errors or []:
        messages.setdefault(error.name, []).append(error.message)
    for name, texts in messages.items():
        if name in form:
            form[name].errors = texts
    tax_codes = dict(reference.choices(session, company.id, "TaxCode")) \
        if tab.slug == "taxes" else {}
    return render(TEMPLATE, "tab_panel", company=company, tabs=cs.visible_tabs(company),
                  tab=tab, form=form, settings=settings,
                  tab_settings=cs.settings_of(tab.slug, company, editable_only=True),
                  can_edit=_can_edit(tab), error_count=len(messages),
                  other_errors=[m for n, texts in messages.items() if n not in form
                                for m in texts],
                  version=cs.shown_version(session, company), tax_codes=tax_codes,
                  toast=toast, autosync=_autosync_view(company) if tab.slug == "autosync"
                  else None)


# The Email tab is the accountant's (SPEC 0.1 step 6); every other tab is the admin's.
EDITORS = {"email": ("admin", "accountant")}


def _can_edit(tab: cs.Tab) -> bool:
    return current_user.role.value in EDITORS.get(tab.slug, ("admin",))


def _autosync_view(company: Company):  # type: ignore[no-untyped-def]
    from portal.services import autosync

    return next((v for v in autosync.overview(get_session()) if v.company.id == company.id),
                None)


# ---- routes -----------------------------------------------------------------------------

@bp.get("/<int:company_id>/settings")
@role_required("admin", "accountant")
def index(company_id: int):  # type: ignore[no-untyped-def]
    """The first tab."""
    _company(company_id)
    return redirect(url_for("settings.tab", company_id=company_id, tab="company"), 302)


@bp.get("/<int:company_id>/settings/<tab>")
@role_required("admin", "accountant")
def tab(company_id: int, tab: str):  # type: ignore[no-untyped-def]
    """One tab: the whole page, or block tab_panel when htmx follows a tab link."""
    company = _company(company_id)
    current = _tab(company, tab)
    return _panel(company, current)


@bp.post("/<int:company_id>/settings/<tab>")
@role_required("admin", "accountant")
def update(company_id: int, tab: str):  # type: ignore[no-untyped-def]
    """Save one tab: every field is validated; any error saves nothing (422)."""
    session = get_session()
    company = _company(company_id)
    current = _tab(company, tab)
    if not _can_edit(current):
        from portal.services import audit

        audit.record(session, "authz.denied", result="denied", target_type="endpoint",
                     target_id=request.endpoint)
        session.commit()
        abort(403)
    data = _submitted(company, current)
    result = cs.save_tab(session, company, current.slug, data, current_user)
    if isinstance(result, list):
        session.rollback()
        return _panel(company, current, submitted=data, errors=result), 422
    session.commit()
    message = f"{current.title} settings saved (version {result.number})."
    if not is_fragment_request():
        flash(message, "success")
        return redirect(url_for("settings.tab", company_id=company.id, tab=current.slug), 303)
    return _panel(company, current, toast=message)
