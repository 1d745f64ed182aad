"""Fixed names of the demo MSP: locations, people, customers, vendors, accounts, products, taxes."""

from __future__ import annotations

COMPANY_NAME = "Northwind Managed IT"
COMPANY_ID = "northwind"
CODEBASE = "v4_6_release/"
CREDENTIALS = {"company_id": COMPANY_ID, "public_key": "NwDemoPublicKey0001",
               "private_key": "NwDemoPrivateKey0001-DoNotUseInProduction",
               "client_id": "3a7f2c1e-9b4d-4e8a-a1c2-5d6e7f8a9b0c", "member_id": 13}
QBO_APP = {"client_id": "ABnorthwindDemoPortalClientId0000000000000001",
           "client_secret": "demoNorthwindClientSecret00000000000001",
           "redirect_uris": ["http://127.0.0.1:5000/setup/quickbooks/callback"]}
US_REALM = "9130355377384946"
CA_REALM = "9130355377384947"

# id, name, level (1 = Corporate, top of the structure); territories are locations too.
LOCATIONS = [(1, "Corporate", 1), (2, "East", 2), (3, "West", 2)]
TERRITORIES = [(4, "Northeast Territory"), (5, "Pacific Territory")]

WORK_ROLES = [(1, "Engineer", 150.0), (2, "Consultant", 175.0), (3, "Project Manager", 160.0)]
WORK_TYPES = [(1, "Remote", 1.0), (2, "On-Site", 1.0), (3, "After Hours", 1.5)]

# identifier, first, last, work role id, location id, vendor number (None = missing on purpose)
MEMBERS = [
    ("achen", "Alex", "Chen", 1, 2, "V1001"), ("mgarcia", "Maria", "Garcia", 1, 2, "V1002"),
    ("jokafor", "James", "Okafor", 2, 3, "V1003"), ("kpatel", "Kiran", "Patel", 1, 3, None),
    ("sliu", "Sarah", "Liu", 3, 1, "V1005"), ("dsmith", "Daniel", "Smith", 1, 2, "V1006"),
    ("ebrown", "Emma", "Brown", 2, 1, "V1007"), ("rnovak", "Robert", "Novak", 1, 3, "V1008"),
    ("lwilson", "Laura", "Wilson", 3, 2, "V1009"), ("tnguyen", "Thanh", "Nguyen", 1, 3, "V1010"),
    ("cmartin", "Chloe", "Martin", 2, 2, "V1011"), ("bjones", "Ben", "Jones", 1, 1, "V1012"),
]
API_MEMBER = ("qbsync", "QuickBooks", "Sync")
PAYROLL_TWIN = "mgarcia"        # a QBO payroll Employee has this member's name
NO_VENDOR_NUMBER = "kpatel"

# GL account strings (CW side) = QBO FullyQualifiedName (the default Name matching mode)
AR = "Accounts Receivable"
AP = "Accounts Payable"
SALES_TAX = "Sales Tax Payable"
DEPOSITS = "Customer Deposits"
INVENTORY = "Inventory Asset"
MANAGED = "Sales:Managed Services"
PROFESSIONAL = "Sales:Professional Services"
PROJECTS = "Sales:Project Services"
HARDWARE = "Sales:Hardware"
SOFTWARE = "Sales:Software Licenses"
CLOUD = "Sales:Cloud Services"           # missing in QuickBooks on purpose
COGS_HW = "Cost of Goods Sold:Hardware"
COGS_SW = "Cost of Goods Sold:Software"
FREIGHT = "Cost of Goods Sold:Freight In"
SHRINKAGE = "Cost of Goods Sold:Inventory Shrinkage"
REIMBURSE = "Employee Reimbursements"
CARD = "Company Amex"
CHECKING = "Operating Checking"

CLASS_MANAGED = "Services:Managed"
CLASS_PROJECTS = "Services:Projects"
CLASS_HARDWARE = "Products:Hardware"
CLASS_SOFTWARE = "Products:Software"

# id, identifier, description, product type id, income, cogs, inventory, price, cost,
# taxable, serialized, category
PRODUCT_TYPES = [(1, "Inventory Part", "Inventory Part"), (2, "Non-Inventory Part",
                                                           "Non-Inventory Part"),
                 (3, "Service", "Service"), (4, "Other Charge", "Other Charge")]
CATALOG = [
    (1, "Hardware:Laptops:DELL-L5440", "Dell Latitude 5440 laptop", 1, HARDWARE, COGS_HW,
     INVENTORY, 1299.0, 980.0, True, False),
    (2, "Hardware:Network:FW-FG60F", "Fortinet FortiGate 60F firewall", 1, HARDWARE, COGS_HW,
     INVENTORY, 899.0, 640.0, True, True),
    (3, "Hardware:Cables:CAT6-10", "Cat6 patch cable 10 ft", 2, HARDWARE, COGS_HW, INVENTORY,
     12.0, 3.5, True, False),
    (4, "M365-BP", "Microsoft 365 Business Premium", 2, SOFTWARE, COGS_SW, INVENTORY, 22.0,
     18.5, False, False),
    (5, "AZURE-CSP", "Azure consumption (CSP)", 3, CLOUD, COGS_SW, INVENTORY, 1.0, 0.85, False,
     False),
    (6, "BACKUP-TB", "Cloud backup per TB", 3, MANAGED, COGS_SW, INVENTORY, 95.0, 40.0, False,
     False),
    (7, "SHIPPING", "Shipping and handling", 4, HARDWARE, FREIGHT, INVENTORY, 25.0, 25.0, False,
     False),
    (8, "HAAS-WS", "Hardware as a service workstation", 2, MANAGED, COGS_HW, INVENTORY, 79.0,
     45.0, False, False),
]
SERIALIZED = "Hardware:Network:FW-FG60F"
MISMATCHED_ITEM = "M365-BP"       # QBO binds it to Sales:Hardware; CW posts it to Software

# id, name, due days, Xref (None = missing on purpose)
BILLING_TERMS = [(1, "Net 30", 30, "Net 30"), (2, "Net 15", 15, "Net 15"),
                 (3, "Due on Receipt", 0, "Due on receipt"), (4, "Net 45", 45, None)]

# id, identifier, description, levels [(rate %, caption, xref, agency)]
TAX_CODES = [
    (1, "NYC", "New York City", [(4.0, "NY State", "NY State", "NYS DTF"),
                                 (4.5, "NYC", "NYC Local", "NYC DOF")]),
    (2, "NJ", "New Jersey", [(6.625, "NJ State", "NJ State", "NJ Taxation")]),
    (3, "EXEMPT", "Tax exempt", []),
    (4, "ON", "Ontario HST", [(13.0, "HST ON", "HST ON", "CRA")]),
]

EXPENSE_TYPES = [(1, "Mileage", "Travel:Mileage"), (2, "Meals", "Travel:Meals"),
                 (3, "Lodging", "Travel:Lodging"), (4, "Parts and Supplies", "Parts and Supplies"),
                 (5, "Office Supplies", "Office Supplies")]

# name, account id (finance "Account ID"), tax code id, location id, terms id
CUSTOMERS = [
    ("Acme Corp", "ACME", 3, 2, 1), ("O'Neil Dental", "ONEIL", 3, 2, 1),
    ("Blue Harbor Law", "BLUEHL", 3, 3, 1), ("Summit Partners", "SUMMIT", 3, 3, 2),
    ("Pinnacle Dental", "PINNDENT", 1, 2, 1), ("Lakeside Networks", "LAKESIDE", 3, 2, 1),
    ("Rheinland Logistik GmbH", "RHEIN", 3, 1, 1),
    ("Harborview Health:Harborview Clinic", "HVCLINIC", 3, 2, 1),
    ("Harborview Health:Harborview Labs", "HVLABS", 3, 2, 2),
    ("Keystone Group:Keystone Logistics", "KEYLOG", 3, 3, 1),
    ("Bayside Veterinary", "BAYVET", 3, 2, 1), ("Cedar Ridge Realty", "CEDAR", 3, 3, 1),
    ("Maplewood Accounting", "MAPLE", 3, 2, 2), ("Northgate Engineering", "NGATE", 3, 2, 1),
    ("Riverbend Credit Union", "RIVER", 3, 3, 1), ("Stonebridge Architects", "STONE", 3, 2, 1),
    ("Willow Creek Schools", "WILLOW", 3, 3, 3), ("Granite Peak Outfitters", "GRANITE", 3, 3, 1),
    ("Oakhurst Family Medicine", "OAKMED", 3, 2, 1), ("Silverline Logistics", "SILVER", 3, 3, 2),
    ("Brightwater Foods", "BRIGHT", 3, 2, 1), ("Evergreen Insurance", "EVERINS", 3, 3, 1),
    ("Foxglove Marketing", "FOXGLOVE", 3, 2, 1), ("Ironwood Manufacturing", "IRONWOOD", 3, 3, 1),
    ("Juniper Legal Group", "JUNIPER", 3, 2, 4), ("Kingsley Auto Group", "KINGSLEY", 3, 3, 1),
    ("Lighthouse Nonprofit", "LIGHT", 3, 2, 3), ("Meridian Capital", "MERIDIAN", 1, 2, 1),
    ("Northstar Pediatrics", "NSTAR", 1, 2, 1), ("Orchard Hill Winery", "ORCHARD", 2, 2, 1),
    ("Parkside Dentistry", "PARKSIDE", 1, 2, 1), ("Quarry Lane Builders", "QUARRY", 2, 3, 1),
    ("Redwood Analytics", "REDWOOD", 1, 3, 2), ("Sterling Wealth", "STERLING", 1, 2, 1),
    ("Tidewater Marine", "TIDE", 2, 3, 1), ("Union Square Bistro", "UNIONSQ", 1, 2, 3),
    ("Valley Orthopedics", "VALLEY", 1, 3, 1), ("Westfield Library", "WESTLIB", 2, 3, 3),
    ("Yellowstone Outdoor", "YELLOW", 2, 3, 1), ("Zephyr Aviation", "ZEPHYR", 1, 2, 1),
    ("Atlas Freight", "ATLAS", 2, 2, 1), ("Beacon Hill Partners", "BEACON", 1, 2, 1),
    ("Crescent Hotels", "CRESCENT", 2, 3, 4), ("Delta Research Labs", "DELTA", 1, 2, 1),
    ("Emerald City Events", "EMERALD", 2, 3, 1),
]
EUR_CUSTOMER = "Rheinland Logistik GmbH"
VENDOR_AND_CUSTOMER = "Lakeside Networks"
MISSING_PARENT = "Keystone Group"
# name, vendor id
VENDORS = [("Ingram Micro", "INGRAM"), ("TD SYNNEX", "SYNNEX"), ("Dell Technologies", "DELL"),
           ("Pax8", "PAX8"), ("Amazon Business", "AMAZON"), ("CDW", "CDW"),
           ("Fortinet", "FORTINET")]

# QBO near-misses of CW customers (CW name, QBO DisplayName, kind)
NEAR_MISSES = [("Acme Corp", "ACME Corp (ACME)", "case"),
               ("O'Neil Dental", "O\u2019Neil Dental", "quote"),
               ("Blue Harbor Law", "Blue  Harbor Law", "whitespace"),
               ("Summit Partners", "Summit Partners ", "whitespace")]
VENDOR_NAMED_LIKE_CUSTOMER = ("Pinnacle Dental", "Pinnacle Dental (PINNDENT)")
