"""Contract: the ConnectWise sandbox's answers validate against the vendor's OpenAPI schemas.

Every GET collection of the OpenAPI subset that the sandbox serves is checked (each record
of the first page), then one record by id and its child collections, plus the GL export
and batch creation. A copy of the schemas is kept in tests/contract/data (source noted there).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

pytestmark = pytest.mark.contract
SPEC = json.loads((Path(__file__).parent / "data" / "cw_openapi_responses.json").read_text())


def _convert(schema: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable` becomes a null type, refs point at the copy."""
    if isinstance(schema, dict):
        out = {k: _convert(v) for k, v in schema.items() if k not in ("nullable", "format",
                                                                       "example")}
        if schema.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        if "$ref" in out:
            out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/definitions/")
        return out
    if isinstance(schema, list):
        return [_convert(v) for v in schema]
    return schema


@lru_cache(maxsize=None)
def _definitions() -> dict[str, Any]:
    return {name: _convert(s) for name, s in SPEC["components"]["schemas"].items()}


def validator(path: str, method: str = "get", status: str = "200") -> Draft7Validator:
    schema = _convert(SPEC["paths"][path][method][status])
    return Draft7Validator({**schema, "definitions": _definitions()})


def problems(path: str, body: Any, method: str = "get", status: str = "200") -> list[str]:
    return [f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(path, method, status).iter_errors(body)]


COLLECTIONS = sorted(p for p, ops in SPEC["paths"].items()
                     if "get" in ops and "{" not in p and not p.endswith("/count")
                     and (not p.endswith("/info") or p == "/system/info"))


def test_every_served_collection_and_its_records_match_the_schemas(api):
    checked, errors = [], []
    for path in COLLECTIONS:
        response = api("GET", path, params={"pageSize": 25})
        if response.status_code == 404:
            continue  # not an endpoint this portal uses
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        body = response.json()
        errors += problems(path, body)
        checked.append(path)
        if isinstance(body, list) and body and f"{path}/{{id}}" in SPEC["paths"]:
            first = body[0].get("id")
            one = api("GET", f"{path}/{first}")
            assert one.status_code == 200, (path, first)
            errors += problems(f"{path}/{{id}}", one.json())
            checked.append(f"{path}/{{id}}")
            for child in SPEC["paths"]:
                match = re.fullmatch(re.escape(path) + r"/\{parentId\}/(\w+)", child)
                if match and "get" in SPEC["paths"][child]:
                    sub = api("GET", f"{path}/{first}/{match.group(1)}")
                    if sub.status_code == 200:
                        errors += problems(child, sub.json())
                        checked.append(child)
    assert errors == []
    for needed in ("/company/companies", "/company/contacts", "/finance/accounting/batches",
                   "/finance/accounting/unpostedinvoices", "/finance/accounting/unpostedexpenses",
                   "/finance/accounting/unpostedprocurement", "/finance/glAccounts",
                   "/finance/taxCodes", "/finance/billingTerms", "/finance/invoices",
                   "/procurement/products", "/procurement/catalog", "/procurement/types",
                   "/procurement/purchaseorders", "/system/members", "/expense/types",
                   "/system/locations", "/system/info"):
        if needed in SPEC["paths"]:  # the subset covers most, not all, of them
            assert needed in checked, needed
    assert len(checked) >= 30


def test_gl_export_and_batch_creation_match_the_schemas(api):
    invoices = api("GET", "/finance/accounting/unpostedinvoices", params={"pageSize": 3}).json()
    export = api("POST", "/finance/accounting/export", json={
        "batchIdentifier": "contract-export", "exportInvoicesFlag": True,
        "includedInvoiceIds": [i["billingLogId"] for i in invoices]})
    assert export.status_code == 200
    assert problems("/finance/accounting/export", export.json(), "post") == []
    gl_ids = [int(x) for t in export.json()["transactions"] for x in t["glEntryIds"].split(",")]
    created = api("POST", "/finance/accounting/batches", json={
        "batchIdentifier": "contract-batch", "exportInvoicesFlag": True,
        "processedRecordIds": gl_ids})
    assert created.status_code == 201, created.text
    status = "201" if "201" in SPEC["paths"]["/finance/accounting/batches"]["post"] else "200"
    assert problems("/finance/accounting/batches", created.json(), "post", status) == []
