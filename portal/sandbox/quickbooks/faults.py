"""Fault bodies exactly as QBO shapes them: data-service Faults and the gateway's lower-case ones."""

from __future__ import annotations

from typing import Any

NOT_FOUND_DETAIL = ("Object Not Found : Something you're trying to use has been made inactive. "
                    "Check the fields with accounts, customers, items, vendors or employees.")
DUPLICATE_NAME_DETAIL = ("The name supplied already exists. : Another customer, vendor or employee "
                         "is already using this \nname. Please use a different name.")
STALE_DETAIL = ("Stale Object Error : You and root were working on this at the same time. "
                "root finished before you did, so your work was not saved.")


class ApiFault(Exception):
    """A data-service Fault: raised anywhere in a handler, rendered by the router."""

    def __init__(self, code: str, message: str, detail: str, element: str | None = "",
                 *, status: int = 400, fault_type: str = "ValidationFault") -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = str(code)
        self.message = message
        self.detail = detail
        self.element = element
        self.status = status
        self.fault_type = fault_type

    def error(self) -> dict[str, Any]:
        """One entry of `Fault.Error`; `element` is left out when unknown."""
        entry: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element is not None:
            entry["element"] = self.element
        return entry

    def fault(self) -> dict[str, Any]:
        """The `Fault` object (without `time`), also used for batch items."""
        return {"Error": [self.error()], "type": self.fault_type}


def not_found() -> ApiFault:
    """610: missing Id, or a referenced list object that is inactive."""
    return ApiFault("610", "Object Not Found", NOT_FOUND_DETAIL)


def duplicate_name(detail: str = DUPLICATE_NAME_DETAIL) -> ApiFault:
    """6240: names are unique across Customer, Vendor and Employee."""
    return ApiFault("6240", "Duplicate Name Exists Error", detail)


def stale() -> ApiFault:
    """5010: the SyncToken sent is older than the stored one."""
    return ApiFault("5010", "Stale Object Error", STALE_DETAIL)


def required(field: str) -> ApiFault:
    """2020 with `element` naming the missing field."""
    return ApiFault("2020", "Required param missing, need to supply the required value for the API",
                    f"Required parameter {field} is missing in the request", field)


def too_long(field: str, length: int, maximum: int) -> ApiFault:
    """2050, e.g. a DocNumber over 21 characters."""
    return ApiFault("2050", "Invalid String Length",
                    "String length specified does not match the supported length. "
                    f"Min:0 Max:{maximum} supported. Supplied length:{length}", field)


def invalid_reference(kind_plural: str, ref_id: str) -> ApiFault:
    """2500: a reference to an Id that does not exist."""
    return ApiFault("2500", "Invalid Reference Id",
                    f"Invalid Reference Id : {kind_plural} element id {ref_id} not found", "")


def business(detail: str) -> ApiFault:
    """6000 (generic business validation) with QBO's Detail prefix."""
    return ApiFault("6000", "A business validation error has occurred while processing your request",
                    f"Business Validation Error: {detail}", "")


def duplicate_docnumber(doc_number: str, txn_type: str, txn_id: str) -> ApiFault:
    """6140, naming the document that already holds the number."""
    return ApiFault("6140", "Duplicate Document Number Error",
                    "Duplicate Document Number Error : You must specify a different number. "
                    f"This number has already been used. DocNumber={doc_number} is assigned to "
                    f"TxnType={txn_type} with TxnId={txn_id}", "")


def unsupported(operation: str) -> ApiFault:
    """Code 500 "Unsupported Operation" (HTTP 400)."""
    return ApiFault("500", "Unsupported Operation", f"Operation {operation} is not supported.",
                    "Operation")


def system_fault(detail: str = "System Failure Error: java.lang.UnsupportedOperationException",
                 element: str | None = "SystemFailureError", status: int = 500) -> ApiFault:
    """10000 SystemFault, the answer whose outcome is unknown to the client."""
    return ApiFault("10000", "An application error has occurred while processing your request",
                    detail, element, status=status, fault_type="SystemFault")


def query_parse(detail: str) -> ApiFault:
    """4000: the statement does not parse."""
    return ApiFault("4000", "Error parsing query", f"QueryParserError: {detail}", None)


def query_invalid(detail: str) -> ApiFault:
    """4001: it parses but asks for something QBO refuses."""
    return ApiFault("4001", "The query is invalid", f"QueryValidationError: {detail}", None)


def gateway_body(status: int, detail: str) -> dict[str, Any]:
    """The API gateway's own bodies (401/403/429): lower-case keys, message packed in one string."""
    table = {401: ("AuthenticationFailed", "003200", "3200", "AUTHENTICATION"),
             403: ("ApplicationAuthorizationFailed", "003100", "3100", "AUTHORIZATION"),
             429: ("ThrottleExceeded", "003001", "3001", "SERVICE")}
    name, long_code, code, kind = table[status]
    return {"fault": {"error": [{"message": f"message={name}; errorCode={long_code}; statusCode={status}",
                                 "detail": detail, "code": code}], "type": kind}}


def throttle_body() -> dict[str, Any]:
    """The 429 body clients match on (examples/fault_429_throttle.json)."""
    return {"Fault": {"Error": [{"Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                 "Detail": "Throttling limits exceeded.", "code": "3001"}],
                      "type": "SERVICE"}}
