"""The Accounting API under /v3/company/{realmId}: reads, writes, query, CDC, send, PDF."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from . import entities, faults, pdf, query
from .batch import run_batch
from .context import Ctx
from .util import meta_time, parse_timestamp, response_time
from .writes import operation_of, perform


# single requests ---------------------------------------------------------------------------------
def envelope(sb: Any, body: dict[str, Any], add_time: bool = True) -> dict[str, Any]:
    """Add the response `time` the way every QBO answer carries it."""
    if add_time:
        body = {**body, "time": response_time(sb.clock.now())}
    return body


def json_answer(sb: Any, status: int, body: dict[str, Any], add_time: bool = True) -> Response:
    """A JSON answer in QBO's envelope."""
    return Response(json.dumps(envelope(sb, body, add_time)), status=status,
                    mimetype="application/json")


def fault_answer(sb: Any, fault: faults.ApiFault) -> Response:
    """Render a data-service Fault with its HTTP status."""
    return json_answer(sb, fault.status, {"Fault": fault.fault()})


def handle(sb: Any, request: Request, realm_id: str, parts: list[str]) -> Response:
    """Route one Accounting API call (auth, throttle and faults were handled by the caller)."""
    realm = sb.realms.get(realm_id)
    if realm is None:
        return json_answer(sb, 403, faults.gateway_body(403, "Company not found"), False)
    try:
        with sb.lock:
            ctx = sb.context(realm, allow_dup=_allow_dup(request))
            ctx.stale = realm_id in sb.stale_realms
            try:
                response = _route(sb, ctx, request, parts)
            finally:
                if ctx.stale_consumed:
                    sb.stale_realms.discard(realm_id)
        sb.after_write(ctx, wrote=request.method == "POST" and parts[:1] != ["query"])
        return response
    except faults.ApiFault as fault:
        return fault_answer(sb, fault)


def _allow_dup(request: Request) -> bool:
    return "allowduplicatedocnum" in str(request.args.get("include", "")).lower().split(",")


def _route(sb: Any, ctx: Ctx, request: Request, parts: list[str]) -> Response:
    head = parts[0] if parts else ""
    method = request.method
    if head == "query":
        text = request.args.get("query") if method == "GET" else request.get_data(as_text=True)
        answer = query.execute(ctx.realm, text or "", known=entities.SPECS.keys(), switches=ctx.switches,
                               render=lambda e, o: entities.render(ctx, e, o))
        return json_answer(sb, 200, {"QueryResponse": answer})
    if head == "batch" and method == "POST":
        return json_answer(sb, *run_batch(sb, ctx, request))
    if head == "cdc" and method == "GET":
        return json_answer(sb, 200, {"CDCResponse": [cdc(ctx, request.args)]})
    if head == "taxservice" and parts[1:] == ["taxcode"] and method == "POST":
        return json_answer(sb, 200, taxservice(ctx, request.get_json(silent=True) or {}), False)
    entity = entities.RESOURCES.get(head)
    if entity is None:
        return json_answer(sb, 404, {"Fault": faults.ApiFault(
            "2000", "Invalid or unsupported object name", f"Unsupported object: {head}", None).fault()})
    if method == "GET":
        return _read(sb, ctx, request, entity, parts[1:])
    if method == "POST" and len(parts) == 3 and parts[2] == "send":
        return json_answer(sb, 200, {entity: send(sb, ctx, entity, parts[1], request.args.get("sendTo"))})
    if method == "POST" and len(parts) == 1:
        body = request.get_json(force=True, silent=True)
        status, payload, add_time = perform(ctx, entity, body, operation_of(request.args))
        return json_answer(sb, status, payload, add_time)
    return json_answer(sb, 405, {"Fault": faults.unsupported(method.lower()).fault()})


def _read(sb: Any, ctx: Ctx, request: Request, entity: str, rest: list[str]) -> Response:
    realm = ctx.realm
    if entity == "Preferences":
        return json_answer(sb, 200, {"Preferences": realm.preferences})
    if entity == "CompanyInfo":
        if rest and rest[0] != realm.realm_id:
            raise faults.not_found()
        return json_answer(sb, 200, {"CompanyInfo": realm.company_info})
    if not rest:
        raise faults.unsupported("read")
    obj = realm.get(entity, rest[0])
    if obj is None:
        raise faults.not_found()
    if len(rest) == 2 and rest[1] == "pdf":
        data = pdf.render_pdf(pdf.document_lines(entity, obj, realm.company_info))
        return Response(data, mimetype="application/pdf")
    shown = entities.render(ctx, entity, obj)
    if entity == "Invoice" and "invoicelink" in str(request.args.get("include") or "").lower():
        link = invoice_link(ctx, obj)
        shown = {**shown, "InvoiceLink": link} if link else shown
    return json_answer(sb, 200, {entity: shown})


def invoice_link(ctx: Ctx, obj: dict[str, Any]) -> str | None:
    """The customer's pay link ([QBO-REF] 14.1): only with online payment allowed on the
    invoice and a customer email; an empty answer under `sim.qbo_invoice_link` false."""
    if not ctx.switches.get("sim.qbo_invoice_link", True):
        return None
    if not (obj.get("AllowOnlineCreditCardPayment") or obj.get("AllowOnlineACHPayment")):
        return None
    customer = ctx.realm.get("Customer", (obj.get("CustomerRef") or {}).get("value", "")) or {}
    email = (obj.get("BillEmail") or {}).get("Address") or \
        (customer.get("PrimaryEmailAddr") or {}).get("Address")
    if not email:
        return None
    return (f"https://connect.intuit.com/portal/app/CommerceNetwork/view/"
            f"scs-v1-{ctx.realm.realm_id}-{obj['Id']}")


def send(sb: Any, ctx: Ctx, entity: str, entity_id: str, send_to: str | None) -> dict[str, Any]:
    """Email a sales form: records the mail in the outbox every time (no de-duplication)."""
    obj = ctx.realm.get(entity, entity_id)
    if obj is None:
        raise faults.not_found()
    limit = int(ctx.switches.get("sim.qbo_email_daily_limit") or 0)
    day = meta_time(ctx.now)[:10]
    if limit and ctx.realm.emails_sent[day] >= limit:
        raise faults.business("You have reached the daily email limit for this sandbox company.")
    if send_to:
        obj["BillEmail"] = {"Address": send_to}
    address = (obj.get("BillEmail") or {}).get("Address")
    if not address:
        raise faults.ApiFault("6420", "Email address is required",
                              "Business Validation Error: An email address is required to send "
                              "this transaction.", "")
    ctx.realm.emails_sent[day] += 1
    obj["EmailStatus"] = "EmailSent"
    obj["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": meta_time(ctx.now)}
    sb.outbox_add({"realmId": ctx.realm.realm_id, "entity": entity, "id": entity_id, "to": address,
                   "DocNumber": obj.get("DocNumber"), "TotalAmt": obj.get("TotalAmt"),
                   "subject": f"{entity} {obj.get('DocNumber') or entity_id} from "
                              f"{ctx.realm.company_info.get('CompanyName')}",
                   "at": meta_time(ctx.now)})
    ctx.event(entity, entity_id, "Emailed")
    return entities.render(ctx, entity, obj)


def cdc(ctx: Ctx, args: Any) -> dict[str, Any]:
    """Changes since a moment (at most 30 days back, 1000 objects), deletions as stubs."""
    names = [n.strip() for n in str(args.get("entities") or "").split(",") if n.strip()]
    if not names:
        raise faults.required("entities")
    since_text = args.get("changedSince")
    if not since_text:
        raise faults.required("changedSince")
    since = parse_timestamp(since_text)
    if since is None:
        raise faults.ApiFault("2060", "Invalid Date Format", f"Invalid Date Format : {since_text}",
                              "changedSince")
    since = max(since, ctx.now - 30 * 86400)
    blocks, budget = [], 1000
    for name in names:
        entity = next((e for e in entities.SPECS if e.lower() == name.lower()), None)
        if entity is None:
            raise faults.query_invalid(f"Entity {name} is not supported")
        rows = [entities.render(ctx, entity, o) for o in ctx.realm.all(entity)
                if ctx.realm.updated.get((entity, o["Id"]), 0) > since]
        rows += [{"Id": i, "status": "Deleted", "domain": "QBO",
                  "MetaData": {"LastUpdatedTime": meta_time(at)}}
                 for i, at in ctx.realm.tombstones[entity].items() if at > since]
        rows = rows[:budget]
        budget -= len(rows)
        if rows:
            blocks.append({entity: rows, "startPosition": 1, "maxResults": len(rows)})
    return {"QueryResponse": blocks or [{}]}


def taxservice(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """POST /taxservice/taxcode: create a tax code and its new rates in one call."""
    name = body.get("TaxCode")
    if not name:
        raise faults.required("TaxCode")
    details = body.get("TaxRateDetails") or []
    if not details:
        raise faults.required("TaxRateDetails")
    seeding, ctx.seeding = ctx.seeding, True
    try:
        sales, purchase = [], []
        for detail in details:
            rate = ctx.realm.get("TaxRate", detail.get("TaxRateId")) if detail.get("TaxRateId") else None
            if rate is None:
                rate = entities.create(ctx, "TaxRate", {"Name": detail.get("TaxRateName"),
                                                        "RateValue": detail.get("RateValue", 0),
                                                        "AgencyRef": {"value": str(detail.get("TaxAgencyId", "1"))}})
                detail["TaxRateId"] = rate["Id"]
            target = purchase if detail.get("TaxApplicableOn") == "Purchase" else sales
            target.append({"TaxRateRef": {"value": rate["Id"]}, "TaxTypeApplicable": "TaxOnAmount",
                           "TaxOrder": 0})
        code = entities.create(ctx, "TaxCode", {"Name": name, "SalesTaxRateList": {"TaxRateDetail": sales},
                                                "PurchaseTaxRateList": {"TaxRateDetail": purchase}})
    finally:
        ctx.seeding = seeding
    return {"TaxCode": name, "TaxCodeId": code["Id"], "TaxRateDetails": details}
