"""Small HTML pages: deep links (/app/<entity>?txnId=) and the /_sim/ control page."""

from __future__ import annotations

import html
import json
from typing import Any

from werkzeug.wrappers import Request, Response

DEEP_LINKS = {"invoice": "Invoice", "creditmemo": "CreditMemo", "salesreceipt": "SalesReceipt",
              "bill": "Bill", "vendorcredit": "VendorCredit", "expense": "Purchase", "check": "Purchase", "purchase": "Purchase",
              "journal": "JournalEntry", "journalentry": "JournalEntry", "recvpayment": "Payment",
              "payment": "Payment", "customerdetail": "Customer", "customer": "Customer",
              "vendordetail": "Vendor", "vendor": "Vendor", "employee": "Employee", "item": "Item",
              "account": "Account"}


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
                    "</title><style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;"
                    "padding:1em;overflow:auto}</style></head><body>" + body + "</body></html>",
                    status=status, mimetype="text/html")


def deep_link(sb: Any, request: Request, name: str) -> Response:
    """What a user sees when the portal links to a QBO document."""
    entity = DEEP_LINKS.get(name.lower())
    txn_id = request.args.get("txnId") or request.args.get("nameId") or request.args.get("id")
    realm_id = request.args.get("realmId") or sb.default_realm()
    realm = sb.realms.get(realm_id or "")
    if entity is None or realm is None or not txn_id:
        return _page("Not found", "<h1>Page not found</h1>", 404)
    with sb.lock:
        obj = realm.get(entity, txn_id)
        text = json.dumps(obj, indent=2, sort_keys=True) if obj else None
    if text is None:
        return _page("Not found", f"<h1>{html.escape(entity)} {html.escape(txn_id)} not found</h1>", 404)
    title = f"{entity} {obj.get('DocNumber') or txn_id}"  # type: ignore[union-attr]
    company = realm.company_info.get("CompanyName", realm_id)
    return _page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(str(company))} "
                        f"(realm {html.escape(str(realm_id))})</p><pre>{html.escape(text)}</pre>")


def control_page(sb: Any) -> Response:
    """A tiny dashboard of the sandbox: companies, switches, fault rules, outbox."""
    companies = "".join(f"<li>{html.escape(r.company_info.get('CompanyName', ''))} — realm "
                        f"<code>{html.escape(rid)}</code></li>" for rid, r in sb.realms.items())
    switches = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in sorted(sb.switches.items()))
    rules = html.escape(json.dumps(sb.faults.rules(), indent=1))
    outbox = html.escape(json.dumps(sb.outbox[-20:], indent=1))
    return _page("QuickBooks sandbox", f"""<h1>QuickBooks Online sandbox</h1>
<p>Discovery: <code>{html.escape(sb.discovery_url())}</code></p>
<h2>Companies</h2><ul>{companies}</ul>
<h2>Switches</h2><table>{switches}</table>
<h2>Fault rules</h2><pre>{rules}</pre>
<h2>Outbox (last 20)</h2><pre>{outbox}</pre>
<form method="post" action="/_sim/reset"><button>Reset to the data set</button></form>""")


def mailbox_page(messages: list[dict[str, Any]], attached: bool) -> Response:
    """The mails the local SMTP sink received, newest first: what customers would get."""
    if not attached:
        return _page("Mailbox", "<h1>Mailbox</h1><p>No SMTP sink runs beside this sandbox "
                                "(`portal demo` starts one).</p>")
    parts = [f"<h1>Mailbox</h1><p>{len(messages)} message(s) received by the local SMTP "
             "sink.</p>"]
    for number, m in enumerate(reversed(messages), start=1):
        files = ", ".join(f"{html.escape(a['filename'] or '?')} ({html.escape(a['content_type'])}"
                          f", {a['size']} bytes)" for a in m.get("attachments") or [])
        parts.append(
            f"<article class=\"mail\" id=\"mail-{number}\"><h2>{html.escape(m['subject'])}</h2>"
            f"<p>From {html.escape(m['from'])} to {html.escape(m['to'])}"
            + (f", cc {html.escape(m['cc'])}" if m.get("cc") else "")
            + f" · {html.escape(m['received_at'])}</p>"
            + (f"<p>Attachments: {files}</p>" if files else "")
            + f"<pre>{html.escape(m['text'])}</pre></article>")
    return _page("Mailbox", "".join(parts))
