"""Every reference sample in data/ reproduced field for field by the sandbox over real HTTP."""

from __future__ import annotations

from datetime import date

from conftest import company, compare, sample

MODERN = {"CurrencyRef", "AllowIPNPayment", "AllowOnlinePayment", "AllowOnlineCreditCardPayment",
          "AllowOnlineACHPayment"}
CREW = [{"DefinitionId": "1", "Name": "Crew #", "Type": "StringType"}]
FINCH = {"City": "Bayshore", "Line1": "4581 Finch St.", "PostalCode": "94326", "CountrySubDivisionCode": "CA"}


def test_invoice_create_response(launch):
    amy = {"Id": "1", "DisplayName": "Amy's Bird Sanctuary", "BillAddr": FINCH, "ShipAddr": FINCH}
    seed = {"Id": "200", "DocNumber": "1068", "CustomerRef": {"value": "1"},
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 1,
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}
    qbo = launch(company({"Customer": [amy], "Invoice": [seed]}, custom_txn_numbers=False,
                         custom_fields=CREW, default_terms="3"))
    answer = qbo.post("invoice?minorversion=75", sample("invoice_create_request_minimal.json"))
    assert answer.status_code == 200
    expected = sample("invoice_create_response.json")
    compare(answer.json(), expected, extra_ok=MODERN,
            ignore={"time", "Invoice.Id", "Invoice.TxnDate", "Invoice.DueDate", "Invoice.MetaData",
                    "Invoice.ShipAddr.Id", "Invoice.BillAddr.Id", "Invoice.ProjectRef"})
    invoice = answer.json()["Invoice"]
    assert (date.fromisoformat(invoice["DueDate"]) - date.fromisoformat(invoice["TxnDate"])).days == 30
    assert invoice["MetaData"]["CreateTime"] == invoice["MetaData"]["LastUpdatedTime"]


def _invoice_239(**extra):
    return {"Id": "239", "DocNumber": "1070", "TxnDate": "2015-07-24", "DueDate": "2015-08-23",
            "CustomerRef": {"value": "1"},
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 150.0,
                      "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}}}], **extra}


def test_invoice_update_response_sparse(launch):
    amy = {"Id": "1", "DisplayName": "Amy's Bird Sanctuary", "BillAddr": FINCH, "ShipAddr": FINCH}
    qbo = launch(company({"Customer": [amy], "Invoice": [_invoice_239(ProjectRef={"value": "39298045"})]},
                         custom_fields=CREW), switches={"sim.qbo_address_latlong": False})
    body = {"Id": "239", "SyncToken": "0", "sparse": True, "CustomerMemo": {"value": "Added customer memo."}}
    answer = qbo.post("invoice", body)
    compare(answer.json(), sample("invoice_update_response.json"), extra_ok=MODERN,
            ignore={"time", "Invoice.MetaData", "Invoice.ShipAddr.Id", "Invoice.BillAddr.Id"})


def test_invoice_sparse_update_request_changes_one_field(launch):
    qbo = launch(company({"Invoice": [_invoice_239(Id="238")]}))
    answer = qbo.post("invoice", sample("invoice_sparse_update_request.json")).json()["Invoice"]
    assert answer["DueDate"] == "2015-09-30" and answer["SyncToken"] == "1"
    assert answer["TotalAmt"] == 150.0 and answer["DocNumber"] == "1070"


def test_invoice_query_response(launch):
    qbo = launch(company({"Invoice": [_invoice_239()]}), switches={"sim.qbo_query_total_count": True})
    expected = sample("invoice_query_response.json")
    answer = qbo.query("select * from Invoice where id = '239'")
    compare(answer.json(), expected, extra_ok=MODERN,
            ignore={"time", "QueryResponse.Invoice.*.MetaData"})


def test_invoice_read_us_tax(launch):
    expected = sample("invoice_read_response_us_tax.json")["Invoice"]
    customer = {"Id": "24", "DisplayName": "Sonnenschein Family Store",
                "PrimaryEmailAddr": {"Address": "Familiystore@intuit.com"},
                "BillAddr": {k: v for k, v in expected["BillAddr"].items() if k != "Id"},
                "ShipAddr": {k: v for k, v in expected["ShipAddr"].items() if k != "Id"}}
    items = [{"Id": i, "Name": n, "Type": "Service", "IncomeAccountRef": {"value": "1"}, "Taxable": True}
             for i, n in (("5", "Rock Fountain"), ("11", "Pump"), ("3", "Concrete"))]
    seed = {k: expected[k] for k in ("TxnDate", "SalesTermRef", "DocNumber", "CustomerMemo", "ProjectRef",
                                     "LinkedTxn", "CustomField", "Id")}
    seed.update(CustomerRef={"value": "24"}, TxnTaxDetail={"TxnTaxCodeRef": {"value": "2"}},
                Line=[{k: v for k, v in line.items() if k not in ("LineNum", "Id")}
                      for line in expected["Line"][:3]])
    qbo = launch(company({"Customer": [customer], "Item": items,
                          "TaxRate": [{"Id": "3", "Name": "California", "RateValue": 8}],
                          "TaxCode": [{"Id": "2", "Name": "California", "TaxGroup": True,
                                       "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": "3"}}]}}],
                          "Invoice": [seed]}, custom_fields=CREW))
    compare(qbo.get("invoice/130").json(), sample("invoice_read_response_us_tax.json"), extra_ok=MODERN,
            ignore={"time", "Invoice.MetaData", "Invoice.ShipAddr.Id", "Invoice.BillAddr.Id"})


def test_invoice_send_response(launch):
    expected = sample("invoice_send_response_excerpt.json")["Invoice"]
    lines = expected["Line"]
    seed = {k: expected[k] for k in ("TxnDate", "SalesTermRef", "DocNumber", "PrivateNote", "CustomerMemo",
                                     "Deposit", "DepositToAccountRef", "ClassRef", "DepartmentRef", "Id")}
    seed.update(CustomerRef={"value": "15"}, TxnTaxDetail={"TxnTaxCodeRef": {"value": "5"}},
                Line=[{k: v for k, v in lines[0].items() if k not in ("LineNum", "Id")}, lines[2], lines[3]])
    data = {"Customer": [{"Id": "15", "DisplayName": "Mr V3 Service Customer Jr2"}],
            "Item": [{"Id": "2", "Name": "Hours", "Type": "Service", "IncomeAccountRef": {"value": "1"}}],
            "Account": [{"Id": "30", "Name": "Discounts given", "AccountType": "Income"}],
            "Class": [{"Id": "200900000000000003901", "Name": "Class 1"}],
            "Department": [{"Id": "1", "Name": "Mountain View"}],
            "Term": [{"Id": "4", "Name": "Net 60", "DueDays": 60}],
            "TaxRate": [{"Id": "2", "Name": "State", "RateValue": 10}],
            "TaxCode": [{"Id": "5", "Name": "State", "SalesTaxRateList":
                         {"TaxRateDetail": [{"TaxRateRef": {"value": "2"}}]}}],
            "Invoice": [seed]}
    qbo = launch(company(data, allow_shipping=True, class_tracking="txn", location_tracking=True))
    answer = qbo.post("invoice/96/send?sendTo=test%40intuit.com", headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 200, answer.text
    compare(answer.json(), sample("invoice_send_response_excerpt.json"), subset=True,
            ignore={"time", "Invoice.DeliveryInfo.DeliveryTime"})
    assert qbo.sandbox.outbox[-1]["to"] == "test@intuit.com"


def test_invoice_void_response(launch):
    expected = sample("invoice_void_response_excerpt.json")
    old_enums = {"SALES_ITEM_LINE_DETAIL": "SalesItemLineDetail", "SUB_TOTAL_LINE_DETAIL": "SubTotalLineDetail",
                 "NOT_SET": "NotSet", "NEED_TO_PRINT": "NeedToPrint"}
    inv = expected["Invoice"]
    inv["PrintStatus"], inv["EmailStatus"] = old_enums[inv["PrintStatus"]], old_enums[inv["EmailStatus"]]
    for line in inv["Line"]:
        line["DetailType"] = old_enums[line["DetailType"]]
    seed = {"Id": "129", "TxnDate": "2014-11-09", "SalesTermRef": {"value": "3"}, "DocNumber": "1036",
            "CustomerRef": {"value": "8"}, "CustomerMemo": inv["CustomerMemo"],
            "Line": [{"Description": "Sod", "DetailType": "SalesItemLineDetail", "Amount": 50.0,
                      "SalesItemLineDetail": {"TaxCodeRef": {"value": "TAX"}, "Qty": 5, "ItemRef": {"value": "14"}}}]}
    qbo = launch(company({"Customer": [{"Id": "8", "DisplayName": "0969 Ocean View Road",
                                        "PrimaryEmailAddr": {"Address": "Sporting_goods@intuit.com"}}],
                          "Item": [{"Id": "14", "Name": "Sod", "Type": "Service", "IncomeAccountRef": {"value": "1"}}],
                          "Invoice": [seed]}))
    answer = qbo.post("invoice?operation=void", sample("invoice_void_request.json"))
    compare(answer.json(), expected, subset=True, ignore={"time", "Invoice.MetaData"})


def test_delete_answers(launch):
    seed = _invoice_239(Id="33")
    payment = {"Id": "73", "CustomerRef": {"value": "1"}, "TotalAmt": 5}
    qbo = launch(company({"Invoice": [seed], "Payment": [payment]}))
    request = sample("invoice_delete_request_response.json")
    qbo.sandbox.realms[qbo.realm].get("Invoice", "33")["SyncToken"] = "3"
    answer = qbo.post("invoice?operation=delete", request["request"])
    compare(answer.json(), request["response"], ignore={"time"})
    answer = qbo.post("payment?operation=delete", {"Id": "73", "SyncToken": "0"})
    compare(answer.json(), sample("payment_delete_response.json"), ignore={"time"})
    assert qbo.get("invoice/33").json()["Fault"]["Error"][0]["code"] == "610"


def test_payment_query_response(launch):
    qbo = launch(company({"Account": [{"Id": "4", "Name": "Cash Drawer", "AccountType": "Other Current Asset"}],
                          "Customer": [{"Id": "20", "DisplayName": "Red Rock Diner"}],
                          "Invoice": [{"Id": "70", "DocNumber": "1024", "CustomerRef": {"value": "20"},
                                       "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 126.0,
                                                 "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}],
                          "Payment": [{"Id": "163", "TxnDate": "2015-01-16", "TotalAmt": 65.0,
                                       "CustomerRef": {"value": "20"}, "ProjectRef": {"value": "39298034"},
                                       "DepositToAccountRef": {"value": "4"},
                                       "Line": [{"Amount": 55.0, "LinkedTxn": [{"TxnId": "70", "TxnType": "Invoice"}]}]}]}))
    answer = qbo.query("select * from Payment").json()
    expected = sample("payment_query_response_excerpt.json")
    compare(answer, expected, extra_ok=MODERN,
            ignore={"time", "QueryResponse.maxResults", "QueryResponse.Payment.*.MetaData"})


def test_payment_void_response(launch):
    expected = sample("payment_void_response.json")
    parent = {"Id": "5", "DisplayName": "Freeman Sporting Goods"}
    job = {"Id": "9", "DisplayName": "55 Twin Lane", "ParentRef": {"value": "5"}}
    payment = {"Id": "33", "SyncToken": "1", "TxnDate": "2014-11-07", "TotalAmt": 20.0,
               "CustomerRef": {"value": "9"}, "PaymentMethodRef": {"value": "2"},
               "DepositToAccountRef": {"value": "35"}, "ProjectRef": {"value": "39298234"}}
    qbo = launch(company({"Customer": [parent, job], "Payment": [payment]}))
    answer = qbo.post("payment?operation=update&include=void", sample("payment_void_request.json"))
    compare(answer.json(), expected, extra_ok=MODERN, ignore={"time", "Payment.MetaData"})


def test_payment_applies_invoice_and_credit_memo(launch):
    line = [{"DetailType": "SalesItemLineDetail", "Amount": 50.0, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
    cm_line = [{"DetailType": "SalesItemLineDetail", "Amount": 10.0, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
    qbo = launch(company({"Customer": [{"Id": "2", "DisplayName": "Two"}],
                          "Invoice": [{"Id": "67", "CustomerRef": {"value": "2"}, "Line": line}],
                          "CreditMemo": [{"Id": "68", "CustomerRef": {"value": "2"}, "Line": cm_line}]}))
    answer = qbo.post("payment", sample("payment_apply_invoice_and_creditmemo_example.json"))
    payment = answer.json()["Payment"]
    assert payment["UnappliedAmt"] == 0
    invoice = qbo.get("invoice/67").json()["Invoice"]
    assert invoice["Balance"] == 30.0 and invoice["SyncToken"] == "1"
    assert invoice["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert qbo.get("creditmemo/68").json()["CreditMemo"]["Balance"] == 0
    assert qbo.get("customer/2").json()["Customer"]["Balance"] == 30.0


def test_invoice_with_payment_linkedtxn(launch):
    qbo = launch(company())
    invoice = qbo.post("invoice", sample("invoice_create_request_minimal.json")).json()["Invoice"]
    payment = qbo.post("payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 40,
                                   "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                                          "TxnType": "Invoice"}]}]}).json()["Payment"]
    read = qbo.get(f"invoice/{invoice['Id']}").json()
    compare(read, sample("invoice_with_payment_linkedtxn_excerpt.json"), subset=True,
            ignore={"Invoice.Id", "Invoice.SyncToken", "Invoice.DocNumber", "Invoice.TxnDate",
                    "Invoice.MetaData", "Invoice.LinkedTxn.*.TxnId", "Invoice.CustomField"})
    assert read["Invoice"]["LinkedTxn"][0]["TxnId"] == payment["Id"]
    assert read["Invoice"]["Balance"] == 60.0 and read["Invoice"]["SyncToken"] == "1"


def test_query_empty_and_count(launch):
    invoices = [{"Id": str(100 + i), "CustomerRef": {"value": "1"},
                 "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 1.0,
                           "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]} for i in range(42)]
    qbo = launch(company({"Invoice": invoices}))
    compare(qbo.query("select * from Invoice where DocNumber = 'nope'").json(),
            sample("query_empty_response.json"), ignore={"time"})
    compare(qbo.query("SELECT COUNT(*) FROM Invoice").json(), sample("query_count_response.json"),
            ignore={"time"})


def test_batch_response(launch):
    receipt = {"Id": "11", "SyncToken": "1", "TxnDate": "2015-08-25", "PaymentRefNum": "10264",
               "DocNumber": "1003", "PrivateNote": "A private note.", "CustomerRef": {"value": "6"},
               "DepositToAccountRef": {"name": "Checking", "value": "35"},
               "PaymentMethodRef": {"name": "Check", "value": "2"},
               "CustomerMemo": {"value": "Thank you for your business and have a great day!"},
               "Line": [{"Description": "Custom Design", "DetailType": "SalesItemLineDetail", "Amount": 337.5,
                         "SalesItemLineDetail": {"TaxCodeRef": {"value": "NON"}, "Qty": 4.5, "UnitPrice": 75,
                                                 "ItemRef": {"name": "Design", "value": "4"}}}]}
    qbo = launch(company({"Customer": [{"Id": "6", "DisplayName": "Dylan Sollfrank",
                                        "BillAddr": {"Line1": "Dylan Sollfrank"}},
                                       {"Id": "7", "DisplayName": "Smith Family Store"}],
                          "Item": [{"Id": "4", "Name": "Design", "Type": "Service", "IncomeAccountRef": {"value": "1"}}],
                          "SalesReceipt": [receipt]}, custom_fields=CREW))
    answer = qbo.post("batch", sample("batch_request.json"))
    assert answer.status_code == 200
    compare(answer.json(), sample("batch_response.json"),
            ignore={"time", "BatchItemResponse.*.QueryResponse.SalesReceipt.*.MetaData",
                    "BatchItemResponse.*.QueryResponse.SalesReceipt.*.BillAddr.Id"})


def test_fault_samples(launch):
    qbo = launch(company({"CreditMemo": [{"Id": "111", "DocNumber": "1234", "CustomerRef": {"value": "1"},
                                          "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 5.0,
                                                    "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}]}))
    cm = {"DocNumber": "1234", "CustomerRef": {"value": "1"},
          "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 5.0, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}
    answer = qbo.post("creditmemo", cm)
    assert answer.status_code == 400
    compare(answer.json(), sample("fault_duplicate_docnumber_6140.json"), ignore={"time"})
    je = {"Line": [{"DetailType": "JournalEntryLineDetail", "Amount": 5.0,
                    "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "39"}}}]}
    answer = qbo.post("journalentry", je)
    assert answer.status_code == 400
    compare(answer.json(), sample("fault_business_validation_6000.json"), ignore={"time"})
    purchase = {"AccountRef": {"value": "35"}, "Line": [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 9.0,
                                                         "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "60"}}}]}
    answer = qbo.post("purchase", purchase)
    assert answer.status_code == 400
    compare(answer.json(), sample("fault_required_param_2020.json"), ignore={"time"})
    answer = qbo.query("select * from Customer where DisplayName = 'Geeks 'R Us'")
    assert answer.status_code == 400
    compare(answer.json(), sample("fault_query_parse_4000.json"), ignore={"time"}, extra_ok={"type"})
    answer = qbo.session.get(qbo.path("companyinfo/" + qbo.realm), headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    compare(answer.json(), sample("fault_401_gateway_observed.json"))
    assert qbo.post("journalentry", sample("journalentry_create_request_docs_sample.json")).status_code == 200


def test_void_quirks(launch):
    bill = {"Id": "80", "VendorRef": {"value": "50"},
            "Line": [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 10.0,
                      "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "60"}}}]}
    purchase = {**bill, "Id": "81", "PaymentType": "Cash", "AccountRef": {"value": "35"}}
    purchase.pop("VendorRef")
    je = {**sample("journalentry_create_request_docs_sample.json"), "Id": "82"}
    qbo = launch(company({"Bill": [bill], "Purchase": [purchase], "JournalEntry": [je]}))
    answer = qbo.post("bill?operation=void", {"Id": "80", "SyncToken": "0"})
    assert answer.status_code == 200
    compare(answer.json(), sample("void_bill_observed_http200_systemfault.json"))
    answer = qbo.post("purchase?operation=void", {"Id": "81", "SyncToken": "0"})
    assert answer.status_code == 400
    compare(answer.json(), sample("void_unsupported_purchase_observed.json"), ignore={"time"})
    answer = qbo.post("journalentry?operation=void", {"Id": "82", "SyncToken": "0"})
    assert answer.status_code == 200
    compare(answer.json(), sample("void_journalentry_observed_http200_empty.json"), ignore={"time"})
    assert qbo.get("journalentry/82").json()["JournalEntry"]["TotalAmt"] == 100.0
    qbo.sandbox.switches.update({"sim.qbo_void_journalentry_noop": False, "sim.qbo_void_purchase_unsupported": False,
                                 "sim.qbo_void_bill_http200_fault": False})
    assert qbo.post("journalentry?operation=void", {"Id": "82", "SyncToken": "0"}).json()["JournalEntry"]["TotalAmt"] == 0
    assert qbo.post("purchase?operation=void", {"Id": "81", "SyncToken": "0"}).json()["Purchase"]["PrivateNote"] == "Voided"
    answer = qbo.post("bill?operation=void", {"Id": "80", "SyncToken": "0"})
    assert answer.status_code == 400 and answer.json()["Fault"]["Error"][0]["code"] == "500"
    answer = qbo.post("customer?operation=delete", {"Id": "1", "SyncToken": "0"})
    assert answer.status_code == 400 and answer.json()["Fault"]["Error"][0]["code"] == "500"
