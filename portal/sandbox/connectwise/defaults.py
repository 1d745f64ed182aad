"""Every field of a record as ConnectWise sends it, not only those the demo data sets.

Real responses carry every flag and amount of a record, false and 0 included (the samples
of CW-REF: an unposted invoice with all six tax-level flags and amounts, an invoice with
`restrictDownpaymentFlag: false` and `expenseTotal: 0.0`). They carry the settings a member
or a record always has (a member's invoicing display options, a ticket's billing options),
and they leave out what is null (CW-REF §4). So a record is completed, field by field of
its schema (schema_fields.SCHEMAS):

- a value from VALUES (a constant, or a function of the record), where None means the real
  API sends null, which is left out on the wire;
- otherwise false for a flag and 0 for an amount.

A field of a served record kind that is neither set nor listed here is missing from the
answers; the contract test (tests/contract/test_cw_record_fields.py) names it.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable

from .schema_fields import SCHEMAS

# Stored tables and the record kind each one serves.
TABLE_SCHEMAS = {
    "companies": "Company", "contacts": "Contact", "sites": "CompanySite",
    "gl_accounts": "GLAccount", "tax_codes": "TaxCode", "billing_terms": "BillingTerm",
    "billing_statuses": "BillingStatus", "accounting_packages": "AccountingPackage",
    "accounting_package_setup": "AccountingPackageSetup", "catalog": "CatalogItem",
    "products": "ProductItem", "product_types": "ProductType", "uoms": "UnitOfMeasure",
    "members": "Member", "locations": "Location", "work_roles": "WorkRole",
    "work_types": "WorkType", "time_entries": "TimeEntry", "expense_types": "ExpenseType",
    "expense_entries": "ExpenseEntry", "project_tickets": "ProjectTicket",
    "service_tickets": "Ticket", "invoices": "Invoice", "payments": "InvoicePayment",
    "batches": "AccountingBatch", "gl_entries": "GLEntry", "purchase_orders": "PurchaseOrder",
    "po_lines": "PurchaseOrderLineItem",
}
# Parts of a GL export that are completed with the export (the rest are reference objects).
NESTED_PREFIX = "GLExport"

GUID_SPACE = uuid.UUID("3c1e4d52-7a0b-4f57-9d1e-6a1b2c3d4e5f")
UNITED_STATES = {"id": 1, "name": "United States"}
EASTERN = {"id": 1, "name": "GMT-5/Eastern Time: US & Canada"}
SERVICES = {"id": 1, "name": "Services"}
LEVELS = ("One", "Two", "Three", "Four", "Five", "Six")


def nulls(names: str) -> dict[str, None]:
    """Fields the real API leaves null (so out of the answer) for these records."""
    return dict.fromkeys(names.split())


def _guid(kind: str) -> Callable[[dict[str, Any]], str]:
    """A mobileGuid as records touched by the mobile app carry one; stable per record."""
    return lambda r: str(uuid.uuid5(GUID_SPACE, f"{kind}/{r.get('id')}"))


def _same_as(field: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: copy.deepcopy(r.get(field))


def _phone(r: dict[str, Any]) -> str | None:
    items = r.get("communicationItems") or []
    return next((i.get("value") for i in items if i.get("communicationType") == "Phone"), None)


def _time_end(r: dict[str, Any]) -> str | None:
    try:
        start = datetime.strptime(str(r.get("timeStart")), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return (start + timedelta(hours=float(r.get("actualHours") or 0))).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _closed_date(r: dict[str, Any]) -> str | None:
    return (r.get("_info") or {}).get("lastUpdated") if r.get("closedFlag") else None


def _ticket(record_type: str, board: str) -> dict[str, Any]:
    """Service and project tickets: billing options, board and the rest as a ticket has them."""
    return {
        "recordType": record_type, "board": {"id": 1 if record_type == "ServiceTicket" else 2,
                                             "name": board},
        "billTime": "Billable", "billExpenses": "Billable", "billProducts": "Billable",
        "closedDate": _closed_date, "closedBy": lambda r: "admin" if r.get("closedFlag") else None,
        "mobileGuid": _guid(record_type), "location": None, "department": None,
        **nulls("addressLine1 addressLine2 agreement agreementType automaticEmailCc city contact "
                "contactEmailAddress contactEmailLookup contactName contactPhoneExtension "
                "contactPhoneNumber country currency customFields duration estimatedStartDate "
                "initialDescription initialInternalAnalysis initialResolution item "
                "knowledgeBaseCategoryId knowledgeBaseLinkId knowledgeBaseLinkType "
                "knowledgeBaseSubCategoryId lagDays opportunity owner predecessorId "
                "predecessorType priority requiredDate resources serviceLocation site siteName "
                "source stateIdentifier subBillingMethod subDateAccepted subType type workRole "
                "workType zip processNotifications skipCallback"),
    }


_GL_XREFS = ("cogsXref inventoryXref priceLevelXref uomScheduleXref locationXref subCategory "
             "salesCode taxNote")
_GL_EXTRA = _GL_XREFS + " shipmentMethod warehouseBin warehouseSite"

VALUES: dict[str, dict[str, Any]] = {
    "Company": {
        "mobileGuid": _guid("Company"), "timeZoneSetup": EASTERN,
        **nulls("addressLine2 billToCompany calendar companyEntityType customFields dateAcquired "
                "dateDeleted deletedBy facebookUrl faxNumber integratorTags invoiceCCEmailAddress "
                "invoiceDeliveryMethod invoiceTemplate leadSource linkedInUrl market "
                "numberOfEmployees ownershipType parentCompany pricingSchedule resellerIdentifier "
                "revenueYear sicCode taxIdentifier territoryManager twitterUrl website "
                "yearEstablished " + " ".join(f"userDefinedField{n}" for n in range(1, 11))),
    },
    "Contact": {
        "mobileGuid": _guid("Contact"), "defaultPhoneNbr": _phone,
        "defaultPhoneType": lambda r: "Direct" if _phone(r) else None,
        "country": UNITED_STATES, "ignoreDuplicates": None,
        **nulls("addressLine1 addressLine2 anniversary assistantContact birthDay children city "
                "companyLocation customFields defaultMergeContactId defaultPhoneExtension "
                "department facebookUrl gender integratorTags linkedInUrl managerContact "
                "nickName photo portalPassword portalSecurityLevel presence relationship "
                "relationshipOverride school securityIdentifier significantOther site state "
                "title twitterUrl typeIds types zip "
                + " ".join(f"userDefinedField{n}" for n in range(1, 11))),
    },
    "CompanySite": {
        "mobileGuid": _guid("CompanySite"), "country": UNITED_STATES, "timeZone": EASTERN,
        **nulls("addressFormat addressLine2 calendar customFields entityType faxNumber "
                "phoneNumber phoneNumberExt taxCode"),
    },
    "GLAccount": nulls("salesCode " + " ".join(f"segment{n} cogs{n}" for n in range(2, 11))),
    "GLEntry": nulls("salesCode inventory productId "
                     + " ".join(f"cogs{n}" for n in range(1, 11))
                     + " " + " ".join(f"segment{n}" for n in range(3, 11))),
    "TaxCode": {
        "country": UNITED_STATES, "cancelDate": None,
        # write-only switches of the tax code screen, never read back
        **nulls("addAllExpenseTypes addAllProductTypes addAllWorkRoles removeAllExpenseTypes "
                "removeAllProductTypes removeAllWorkRoles expenseTypeIds productTypeIds "
                "workRoleIds"),
        **{f"level{w}RateType": "Percent" for w in LEVELS},
        **nulls(" ".join(f"level{w}Caption level{w}TaxCodeXref level{w}AgencyXref"
                         for w in LEVELS[2:])),
    },
    "FinanceCurrency": {"reportFormat": None},
    "ExpenseType": nulls("reimbursementRate"),  # mileage types only
    "CatalogItem": {
        "billableOption": "Billable", "priceAttribute": "FixedFee", "vendorSku": "",
        "recurringCycleType": "ContractYear",
        **nulls("agreementType connectWiseID customFields entityType manufacturer "
                "manufacturerPartNumber minStockLevel notes recurringBillCycle sla"),
    },
    "ProductItem": {
        "vendorSku": "",
        # null in the real sample; the rest only for cancelled, forecast or warehouse items
        **nulls("discount calculatedPrice calculatedCost"),
        **nulls("agreement asioSubscriptionsID cancelledBy cancelledDate cancelledReason "
                "customFields entityType forecastDetailId forecastStatus integrationXRef "
                "internalNotes invoiceGrouping needToOrderQuantity opportunity phase project "
                "purchaseDate recurring salesOrder serialNumberIds shipSet sla "
                "subContractorShipToId ticket vendor warehouse warehouseBin warehouseBinId "
                "warehouseBinIdObject warehouseId warehouseIdObject addComponentsFlag "
                "bypassForecastUpdate ignorePricingSchedulesFlag"),
    },
    "Member": {
        "invoiceScreenDefaultTabFormat": "ShowInvoicingTab",
        "invoicingDisplayOptions": "RemainOnInvoicingScreen",
        "agreementInvoicingDisplayOptions": "RemainOnInvoicingScreen",
        "companyActivityTabFormat": "SummaryList", "invoiceTimeTabFormat": "SummaryList",
        "globalSearchDefaultTicketFilter": "OpenRecords", "globalSearchDefaultSort": "None",
        "phoneIntegrationType": "NONE", "daysTolerance": 0, "timeZone": EASTERN,
        "country": UNITED_STATES, "type": {"id": 1, "name": "Employee"},
        "primaryEmail": _same_as("officeEmail"), "defaultDepartment": SERVICES,
        "serviceDefaultLocation": _same_as("defaultLocation"),
        "projectDefaultLocation": _same_as("defaultLocation"),
        "scheduleDefaultLocation": _same_as("defaultLocation"),
        "salesDefaultLocation": _same_as("defaultLocation"),
        "serviceDefaultDepartment": SERVICES, "projectDefaultDepartment": SERVICES,
        "scheduleDefaultDepartment": SERVICES, "includeInUtilizationReportingFlag": True,
        "enableMobileFlag": True, "toastNotificationFlag": True,
        # write-only: credentials and the copy-from-member options of a create
        **nulls("password token clientId copyPodLayouts copySharedDefaultViews "
                "copyColumnLayoutsAndFilters fromMemberRecId fromMemberTemplateRecId"),
        **nulls("authenticationServiceType calendar customFields directionalSync "
                "employeeIdentifer excludedProjectBoardIds excludedServiceBoardIds "
                "expenseApprover homeEmail homeExtension homePhone inactiveDate lastLogin "
                "ldapConfiguration ldapUserName mapiName memberPersonas middleInitial "
                "mobileEmail mobileExtension mobilePhone notes office365 officeExtension "
                "officePhone phoneSource photo projectDefaultBoard reportCard reportsTo "
                "serviceBoardTeamIds serviceDefaultBoard serviceLocation signature "
                "ssoSettings stsUserAdminUrl teams timeApprover timeSheetStartDate title "
                "warehouse warehouseBin"),
    },
    "Location": {
        "timeZoneSetup": EASTERN,
        **nulls("calendar departmentIds manager overrideAddressLine1 overrideAddressLine2 "
                "overrideCity overrideCountry overrideFaxNumber overridePhoneNumber "
                "overrideState overrideZip owaUrl payrollXref salesRep workRoleIds"),
    },
    "WorkRole": nulls("integrationXref locationIds addAllAgreementExclusions addAllLocations "
                      "removeAllLocations"),
    "WorkType": {"costMultiplier": 1.0, "utilizationFlag": True, "accrualType": None,
                 **nulls("integrationXRef addAllAgreementExclusions")},
    "TimeEntry": {
        "status": lambda r: "Billed" if r.get("invoice") else "ApprovedByTierTwo",
        "invoiceFlag": lambda r: bool(r.get("invoice")),
        "invoiceHours": lambda r: float(r.get("hoursBilled") or 0.0),
        "extendedInvoiceAmount": lambda r: round(float(r.get("hoursBilled") or 0.0)
                                                 * float(r.get("hourlyRate") or 0.0), 2),
        "dateEntered": _same_as("timeStart"), "timeEnd": _time_end,
        "enteredBy": lambda r: (r.get("member") or {}).get("identifier"),
        "mobileGuid": _guid("TimeEntry"), "businessUnitId": 1, "department": SERVICES,
        **nulls("activity agreement agreementType businessGroupDesc companyType customFields "
                "emailCc hourlyCost internalNotes invoiceReady location locationName "
                "opportunityRecid phase project projectActivity taxCode territory ticketBoard "
                "ticketStatus ticketSubType ticketType timeSheet"),
    },
    "ExpenseEntry": {
        "mobileGuid": _guid("ExpenseEntry"),
        **nulls("agreement customFields invoice phase project taxes ticket "
                "odometerStart odometerEnd"),
    },
    "Ticket": {
        **_ticket("ServiceTicket", "Service Board"), "severity": "Medium", "impact": "Medium",
        **nulls("billingMethod dateResolved dateResplan dateResponded escalationLevel "
                "escalationStartDateUTC externalXRef initialDescriptionFrom integratorTags "
                "mergedParentTicket minutesBeforeWaiting minutesWaiting parentTicketId poNumber "
                "resPlanMinutes resolveMinutes resolvedBy resplanBy resplanSkippedMinutes "
                "respondMinutes respondedBy respondedSkippedMinutes sla slaStatus team"),
    },
    "ProjectTicket": {**_ticket("ProjectTicket", "Projects"),
                      **nulls("scheduleStartDate scheduleEndDate tasks wbsCode")},
    "Invoice": {
        "topComment": "", "bottomComment": "", "templateSetupId": 1, "emailTemplateId": 1,
        "addToBatchEmailList": True,
        **nulls("adjustedBy adjustmentReason billingSetupReference billingSiteAddressLine2 "
                "customFields internalNotes invoiceTemplate phase salesOrder shipToAttention "
                "shippingSiteAddressLine2 unbatchedBatch applyToId"),
    },
    "InvoicePayment": nulls("aRPaymentAccount paymentAccount paymentSyncDate paymentSyncStatus "
                            "glBatchID wisePayPayment credit source"),
    "UnpostedPayments": nulls("aRPaymentAccount paymentAccount paymentSyncDate "
                              "paymentSyncStatus wisePayPayment source"),
    "UnpostedInvoice": nulls("departmentId department stateTaxXref countyTaxXref cityTaxXref "
                             "countryTaxXref compositeTaxXref levelSixTaxXref"),
    "UnpostedExpense": nulls("agreement chargeCode project projectPhase taxCode ticket "
                             "departmentId stateTaxXref countyTaxXref cityTaxXref "
                             "countryTaxXref compositeTaxXref levelSixTaxXref"),
    "UnpostedProcurement": nulls("trackingNumber departmentId stateTaxXref countyTaxXref "
                                 "cityTaxXref countryTaxXref compositeTaxXref levelSixTaxXref"),
    "BatchEntry": nulls("adjustmentDetail costOfGoodsSoldAccountNumber expense item lineItem "
                        "purchaseOrder salesCode transfer invoice"),
    "PurchaseOrder": {
        "location": None, "businessUnit": SERVICES,
        # write-only switches of a PO update
        **nulls("updateShipmentInfo updateVendorOrderNumber"),
        **nulls("cancelReason closedBy customFields customerCity customerContact "
                "customerCountry customerExtension customerName customerPhone customerSite "
                "customerSiteName customerState customerStreetLine1 customerStreetLine2 "
                "customerZip dateClosed freightPackingSlip internalNotes shipmentDate "
                "shipmentMethod shippingInstructions trackingNumber vendorOrderNumber warehouse "
                "warehouseContact"),
    },
    "PurchaseOrderLineItem": nulls(
        "canceledBy canceledReason customFields dateCanceled dateCanceledUtc expectedArrivalDate "
        "expectedShipDate internalNotes salesOrder shipDate shipSet shipmentMethod "
        "trackingNumber unbatchedRecId vendorOrderNumber vendorSku warehouse warehouseBin"),
    "GLExportVendor": nulls("contact"),
    "GLExportTransaction": nulls("purchaseOrder salesRepId salesRepName shipContact"),
    "GLExportExpense": nulls("project"),
    "GLExportPurchaseTransaction": nulls(
        "cityTaxXref countyTaxXref stateTaxXref taxAgencyXref purchaseHeaderTaxGroup "
        "shipToCompanyAccountNumber shipToCompanyType shipToContact shipToSite shipToTaxGroup"),
    "GLExportInventoryTransfer": nulls(
        _GL_XREFS + " bin costAccountNumber currency salesDescription serialNumbers "
        "transferFromBin transferToBin unitOfMeasure warehouse"),
    "GLExportTransactionDetail": nulls(_GL_EXTRA + " taxCode taxLevels"),
    "GLExportPurchaseTransactionDetail": nulls(
        _GL_EXTRA + " currency purchaseHeaderTaxGroup taxCode vendorAccountNumber vendorNumber"),
    "GLExportPurchaseTransactionDetailTax": nulls(_GL_EXTRA + " currency"),
}


def _fixed(value: Any) -> Callable[[dict[str, Any]], Any]:
    if isinstance(value, (dict, list)):
        return lambda _r: copy.deepcopy(value)
    return lambda _r: value


@lru_cache(maxsize=None)
def _plan(schema: str) -> tuple[tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...],
                                tuple[tuple[str, str], ...]]:
    """What `complete` does for a schema: (field, value maker) pairs to fill in, and the
    (field, schema) pairs of nested GL export parts."""
    table = VALUES.get(schema, {})
    fills, nested = [], []
    for name, kind in SCHEMAS.get(schema, {}).items():
        value = table.get(name, False if kind == "bool" else 0.0 if kind == "num" else None)
        if value is not None:
            fills.append((name, value if callable(value) else _fixed(value)))
        part = kind.strip("[]")
        if part.startswith("ref:" + NESTED_PREFIX):
            nested.append((name, part[4:]))
    return tuple(fills), tuple(nested)


def complete(record: dict[str, Any], schema: str) -> dict[str, Any]:
    """Add, in place, the fields of `schema` the record lacks (see the module docstring);
    the parts of a GL export are completed with it. Returns the record."""
    fills, nested = _plan(schema)
    for name, make in fills:
        if name not in record:
            record[name] = make(record)
    for name, part in nested:
        value = record.get(name)
        for child in value if isinstance(value, list) else [value] if value else []:
            if isinstance(child, dict):
                complete(child, part)
    return record


def complete_all(records: Any, schema: str) -> list[dict[str, Any]]:
    """`complete` over records; returns them as a list."""
    return [complete(r, schema) for r in records]
