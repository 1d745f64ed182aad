"""The QBO query language: a lazy JavaCC-like lexer, a parser with Intuit's error texts, an executor."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import faults
from .util import parse_timestamp

KEYWORDS = {"select", "from", "where", "and", "or", "orderby", "order", "by", "asc", "desc",
            "startposition", "maxresults", "in", "like", "count", "iterator", "true", "false"}
NAMED_KEYWORDS = {"and": "<AND>", "or": "<OR>"}
AFTER_CONDITION = ["<EOF>", "<AND>", '"iterator"', '"maxresults"', "<OR>", '"order"', '"orderby"',
                   '"startposition"']
AFTER_ENTITY = ["<EOF>", '"iterator"', '"maxresults"', '"order"', '"orderby"', '"startposition"',
                '"where"']
OPERATORS = ("=", "<", ">", "<=", ">=", "!=")
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100

COMMON_FIELDS = ["Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime"]
TXN_FIELDS = ["DocNumber", "TxnDate", "TotalAmt", "CustomerRef", "DepartmentRef", "ClassRef",
              "CurrencyRef"]
QUERYABLE: dict[str, list[str]] = {
    "Invoice": TXN_FIELDS + ["ProjectRef", "SalesTermRef", "DueDate", "Balance", "EmailStatus",
                             "PrintStatus"],
    "CreditMemo": TXN_FIELDS + ["Balance", "RemainingCredit", "EmailStatus", "PrintStatus"],
    "SalesReceipt": TXN_FIELDS + ["Balance", "EmailStatus", "PrintStatus", "PaymentRefNum"],
    "Bill": ["DocNumber", "TxnDate", "TotalAmt", "VendorRef", "DueDate", "Balance", "APAccountRef",
             "DepartmentRef", "CurrencyRef"],
    "VendorCredit": ["DocNumber", "TxnDate", "TotalAmt", "VendorRef", "Balance", "APAccountRef",
                     "DepartmentRef", "CurrencyRef"],
    "Purchase": ["DocNumber", "TxnDate", "TotalAmt", "PaymentType", "AccountRef", "EntityRef",
                 "DepartmentRef", "Credit", "CurrencyRef"],
    "JournalEntry": ["DocNumber", "TxnDate", "TotalAmt", "Adjustment", "CurrencyRef"],
    "Payment": ["TxnDate", "TotalAmt", "CustomerRef", "PaymentRefNum", "UnappliedAmt",
                "DepositToAccountRef", "PaymentMethodRef", "CurrencyRef"],
    "Customer": ["DisplayName", "GivenName", "MiddleName", "FamilyName", "PrimaryEmailAddr", "Active",
                 "CompanyName", "Balance", "PrintOnCheckName", "FullyQualifiedName", "Job",
                 "ParentRef", "Level", "Taxable", "CurrencyRef"],
    "Vendor": ["DisplayName", "GivenName", "MiddleName", "FamilyName", "PrimaryEmailAddr", "Active",
               "CompanyName", "Balance", "PrintOnCheckName", "AcctNum", "Vendor1099", "CurrencyRef"],
    "Employee": ["DisplayName", "GivenName", "MiddleName", "FamilyName", "PrimaryEmailAddr", "Active",
                 "EmployeeNumber", "PrintOnCheckName"],
    "Item": ["Name", "Sku", "Type", "Active", "FullyQualifiedName", "ParentRef", "Level", "SubItem",
             "IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "Taxable", "UnitPrice",
             "QtyOnHand", "TrackQtyOnHand"],
    "Account": ["Name", "AccountType", "AccountSubType", "Classification", "Active", "AcctNum",
                "FullyQualifiedName", "ParentRef", "SubAccount", "CurrentBalance", "CurrencyRef"],
    "Class": ["Name", "Active", "FullyQualifiedName", "ParentRef", "SubClass"],
    "Department": ["Name", "Active", "FullyQualifiedName", "ParentRef", "SubDepartment"],
    "Term": ["Name", "Active", "Type", "DueDays"],
    "TaxCode": ["Name", "Active", "Taxable", "TaxGroup", "Hidden"],
    "TaxRate": ["Name", "Active", "RateValue", "AgencyRef"],
    "CompanyInfo": ["CompanyName", "Country"],
    "Preferences": [],
}
NAME_LISTS = ("Customer", "Vendor", "Employee", "Item", "Account", "Class", "Department", "Term",
              "TaxCode", "TaxRate")
INDEXED_NAME_FIELDS = {"displayname", "name", "fullyqualifiedname"}


@dataclass
class Token:
    """One lexical token, with the image and column the error texts need."""
    kind: str      # image for the error text: '"select"', '<IDENTIFIER>', '<STRING_LITERAL>' ...
    value: Any
    text: str
    column: int
    error: str | None = None


@dataclass
class Condition:
    """One WHERE term: property, operator, literal(s)."""
    field: str
    op: str
    values: list[Any]


@dataclass
class Query:
    """A parsed statement."""
    entity: str
    count: bool = False
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)
    start: int = 1
    max_results: int = DEFAULT_RESULTS


# lexer -----------------------------------------------------------------------------------------------
def _string_token(text: str, pos: int, strict_quotes: bool = True) -> tuple[Token, int]:
    out, i = [], pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "'":
            return Token("<STRING_LITERAL>", "".join(out), text[pos:i + 1], pos + 1), i + 1
        if strict_quotes and ch in "\u2018\u2019\u201c\u201d\u2013\u2014":
            msg = (f"Lexical error at line 1, column {i + 1}.  Encountered: \"\\u{ord(ch):04x}\" "
                   f"({ord(ch)}), after : \"{text[pos:i]}\"")
            return Token("<ERROR>", None, text[pos:i], pos + 1, msg), len(text)
        out.append(ch)
        i += 1
    msg = f"Lexical error at line 1, column {len(text) + 1}.  Encountered: <EOF> after : \"{text[pos:]}\""
    return Token("<ERROR>", None, text[pos:], pos + 1, msg), len(text)


def tokenize(text: str, strict_quotes: bool = True) -> list[Token]:
    """Tokens up to the first lexical error, which becomes an <ERROR> token raised when reached.

    `strict_quotes`: curly quotes and dashes inside literals are lexical errors, as observed on
    the live service (README §3; switch sim.qbo_query_rejects_curly_quotes).
    """
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'":
            tok, i = _string_token(text, i, strict_quotes)
            tokens.append(tok)
            if tok.error:
                return tokens
            continue
        two = text[i:i + 2]
        if two in ("<=", ">=", "!="):
            tokens.append(Token(f'"{two}"', two, two, i + 1))
            i += 2
            continue
        if ch in "=<>*,()":
            tokens.append(Token(f'"{ch}"', ch, ch, i + 1))
            i += 1
            continue
        match = re.match(r"-?\d+(\.\d+)?", text[i:]) if (ch.isdigit() or ch == "-") else None
        if match:
            raw = match.group(0)
            tokens.append(Token("<DECIMAL>" if "." in raw else "<INTEGER>", float(raw), raw, i + 1))
            i += len(raw)
            continue
        match = re.match(r"[A-Za-z_][A-Za-z0-9_.]*", text[i:])
        if match:
            raw = match.group(0)
            lower = raw.lower()
            kind = NAMED_KEYWORDS.get(lower) or (f'"{lower}"' if lower in KEYWORDS else "<IDENTIFIER>")
            tokens.append(Token(kind, raw, raw, i + 1))
            i += len(raw)
            continue
        msg = (f"Lexical error at line 1, column {i + 1}.  Encountered: \"{ch}\" ({ord(ch)}), "
               "after : \"\"")
        tokens.append(Token("<ERROR>", None, ch, i + 1, msg))
        return tokens
    tokens.append(Token("<EOF>", None, "", len(text) + 1))
    return tokens


# parser ------------------------------------------------------------------------------------------------
class Parser:
    """Recursive descent over the grammar of README §3; errors read like Intuit's JavaCC parser."""

    def __init__(self, text: str, strict_quotes: bool = True) -> None:
        self.tokens = tokenize(text, strict_quotes)
        self.pos = 0

    def peek(self) -> Token:
        """The next token; a lexical error surfaces only when the parser reaches it."""
        tok = self.tokens[self.pos]
        if tok.error:
            raise faults.query_parse(tok.error)
        return tok

    def take(self) -> Token:
        """Consume the next token."""
        tok = self.peek()
        if tok.kind != "<EOF>":
            self.pos += 1
        return tok

    def fail(self, expected: list[str]) -> faults.ApiFault:
        """A 4000 Fault worded like Intuit's JavaCC parser."""
        tok = self.peek()
        if tok.kind == "<EOF>":
            found = "Encountered \"<EOF>\""
        else:
            found = f"Encountered \" {tok.kind} \"{tok.text} \"\""
        lines = "".join(f"    {e}{' ' if e == '<EOF>' else ' ...'}\n" for e in expected)
        return faults.query_parse(f"{found} at line 1, column {tok.column}.\nWas expecting"
                                  f"{' one of' if len(expected) > 1 else ''}:\n{lines}    ")

    def expect(self, kinds: Iterable[str]) -> Token:
        """Consume a token of one of these kinds or fail listing them."""
        wanted = list(kinds)
        if self.peek().kind not in wanted:
            raise self.fail(wanted)
        return self.take()

    def parse(self) -> Query:
        """statement := SELECT (* | COUNT(*)) FROM entity [WHERE …] [tail]."""
        self.expect(['"select"'])
        count = False
        tok = self.expect(['"*"', '"count"'])
        if tok.kind == '"count"':
            self.expect(['"("'])
            self.expect(['"*"'])
            self.expect(['")"'])
            count = True
        while self.peek().kind == '","':
            self.take()
            self.expect(["<IDENTIFIER>"])
        self.expect(['","', '"from"'])
        entity = self.expect(["<IDENTIFIER>"]).value
        query = Query(entity=entity, count=count)
        if self.peek().kind == '"where"':
            self.take()
            query.conditions.append(self.condition())
            while self.peek().kind in ("<AND>", "<OR>"):
                if self.take().kind == "<OR>":
                    raise faults.query_invalid("OR operator in query is not supported")
                query.conditions.append(self.condition())
            self.tail(query, AFTER_CONDITION)
        else:
            self.tail(query, AFTER_ENTITY)
        return query

    def condition(self) -> Condition:
        """property (op literal | IN (literals) | LIKE pattern)."""
        name = self.expect(["<IDENTIFIER>"]).value
        ops = ['"="', '"<"', '">"', '"<="', '">="', '"!="', '"in"', '"like"']
        op_tok = self.expect(ops)
        op = op_tok.value.lower()
        if op == "in":
            self.expect(['"("'])
            values = [self.value()]
            while self.peek().kind == '","':
                self.take()
                values.append(self.value())
            self.expect(['","', '")"'])
            return Condition(name, "in", values)
        if op == "like":
            return Condition(name, "like", [self.expect(["<STRING_LITERAL>"]).value])
        return Condition(name, op, [self.value()])

    def value(self) -> Any:
        """A literal: quoted string, number, true or false."""
        tok = self.expect(["<STRING_LITERAL>", "<INTEGER>", "<DECIMAL>", '"true"', '"false"'])
        if tok.kind in ('"true"', '"false"'):
            return tok.kind == '"true"'
        return tok.value

    def tail(self, query: Query, expected: list[str]) -> None:
        """ORDERBY, STARTPOSITION, MAXRESULTS (capped at 1000)."""
        if self.peek().kind in ('"order"', '"orderby"'):
            if self.take().kind == '"order"':
                self.expect(['"by"'])
            query.order.append(self.order_item())
            while self.peek().kind == '","':
                self.take()
                query.order.append(self.order_item())
            expected = ["<EOF>", '","', '"asc"', '"desc"', '"maxresults"', '"startposition"']
        if self.peek().kind == '"startposition"':
            self.take()
            query.start = max(1, int(self.expect(["<INTEGER>"]).value))
            expected = ["<EOF>", '"maxresults"']
        if self.peek().kind == '"maxresults"':
            self.take()
            query.max_results = max(0, min(MAX_RESULTS, int(self.expect(["<INTEGER>"]).value)))
            expected = ["<EOF>"]
        if self.peek().kind == '"iterator"':
            self.take()
            self.expect(["<IDENTIFIER>", "<INTEGER>"])
        if self.peek().kind != "<EOF>":
            raise self.fail(expected)

    def order_item(self) -> tuple[str, bool]:
        """property [ASC|DESC]."""
        name = self.expect(["<IDENTIFIER>"]).value
        desc = False
        if self.peek().kind in ('"asc"', '"desc"'):
            desc = self.take().kind == '"desc"'
        return name, desc


def parse(text: str, strict_quotes: bool = True) -> Query:
    """Parse a statement or raise the 4000 Fault QBO gives."""
    if not isinstance(text, str) or not text.strip():
        raise faults.query_parse("Encountered \"<EOF>\" at line 1, column 1.\nWas expecting:\n"
                                 "    \"select\" ...\n    ")
    return Parser(text.strip(), strict_quotes).parse()


# executor -------------------------------------------------------------------------------------------
def canonical_entity(name: str, known: Iterable[str]) -> str:
    """Entity names are case-insensitive in queries; unknown ones give 4001."""
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    raise faults.query_invalid(f"Entity {name} is not supported")


def _field_path(entity: str, name: str) -> str:
    lowered = name.lower()
    for candidate in COMMON_FIELDS + QUERYABLE.get(entity, []):
        if candidate.lower() == lowered:
            return candidate
    raise faults.query_invalid(f"property '{name}' is not queryable")


def _get(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, dict):
        if "value" in value:
            return value["value"]
        if "Address" in value:
            return value["Address"]
    return value


def _comparable(field_value: Any, literal: Any, path: str, case_sensitive: bool) -> tuple[Any, Any] | None:
    if field_value is None:
        return None
    if path.startswith("MetaData."):
        left, right = parse_timestamp(field_value), parse_timestamp(str(literal))
        return None if left is None or right is None else (left, right)
    if isinstance(field_value, bool):
        right = literal if isinstance(literal, bool) else str(literal).lower() == "true"
        return field_value, right
    if isinstance(field_value, (int, float)):
        try:
            return float(field_value), float(literal)
        except (TypeError, ValueError):
            return None
    left, right = str(field_value), str(literal)
    if not case_sensitive:
        left, right = left.casefold(), right.casefold()
    return left, right


def _like(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _matcher(cond: Condition, case_sensitive: bool) -> Callable[[dict[str, Any]], bool]:
    path = cond.field
    if cond.op == "like":
        rx = _like(str(cond.values[0]), case_sensitive)
        return lambda obj: (v := _get(obj, path)) is not None and rx.match(str(v)) is not None

    def check(obj: dict[str, Any]) -> bool:
        """True when any literal satisfies the operator."""
        value = _get(obj, path)
        for literal in cond.values:
            pair = _comparable(value, literal, path, case_sensitive)
            if pair is None:
                continue
            left, right = pair
            if cond.op in ("=", "in") and left == right:
                return True
            if cond.op == "!=" and left != right:
                return True
            try:
                if (cond.op == "<" and left < right) or (cond.op == ">" and left > right) or \
                        (cond.op == "<=" and left <= right) or (cond.op == ">=" and left >= right):
                    return True
            except TypeError:
                return False
        return False
    return check


def _candidates(realm: Any, entity: str, conditions: list[Condition]) -> list[dict[str, Any]] | None:
    """Use the dict indexes for Id, DocNumber and name equality before scanning."""
    for cond in conditions:
        if cond.op not in ("=", "in"):
            continue
        key = cond.field.lower()
        if key == "id":
            return [o for o in (realm.get(entity, str(v).strip()) for v in cond.values) if o]
        if key == "docnumber":
            ids = [i for v in cond.values for i in realm.find_by_doc_number(entity, str(v))]
            return [realm.get(entity, i) for i in ids]
        if key in INDEXED_NAME_FIELDS and entity in NAME_LISTS:
            found = []
            for v in cond.values:
                if entity in ("Customer", "Vendor", "Employee") and key == "displayname":
                    hit = realm.find_person(str(v))
                    if hit and hit[0] == entity:
                        found.append(realm.get(entity, hit[1]))
                    continue
                if entity not in ("Customer", "Vendor", "Employee") and key == "fullyqualifiedname":
                    hit_id = realm.find_named(entity, str(v))
                    if hit_id:
                        found.append(realm.get(entity, hit_id))
                    continue
                return None
            return found
    return None


def _sort_key(path: str) -> Callable[[dict[str, Any]], tuple]:
    def key(obj: dict[str, Any]) -> tuple:
        """Missing values first, then numbers, then strings (case-folded)."""
        value = _get(obj, path)
        if value is None:
            return (0, 0, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (1, float(value), "")
        if path == "Id" and str(value).isdigit():
            return (1, float(value), "")
        return (2, 0, str(value).casefold())
    return key


def execute(realm: Any, text: str, *, known: Iterable[str], switches: dict[str, Any],
            render: Callable[[str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Run a statement against one company; returns the QueryResponse object."""
    query = parse(text, bool(switches.get("sim.qbo_query_rejects_curly_quotes", True)))
    entity = canonical_entity(query.entity, known)
    for cond in query.conditions:
        cond.field = _field_path(entity, cond.field)
    order = [(_field_path(entity, name), desc) for name, desc in query.order]
    case_sensitive = bool(switches.get("sim.qbo_query_case_sensitive"))
    if entity == "CompanyInfo":
        rows: list[dict[str, Any]] = [realm.company_info]
    elif entity == "Preferences":
        rows = [realm.preferences]
    else:
        found = _candidates(realm, entity, query.conditions)
        rows = found if found is not None else list(realm.all(entity))
    matchers = [_matcher(c, case_sensitive) for c in query.conditions]
    if entity in NAME_LISTS and switches.get("sim.qbo_query_active_only") and \
            not any(c.field == "Active" for c in query.conditions):
        matchers.append(lambda obj: obj.get("Active", True) is not False)
    rows = [r for r in rows if all(m(r) for m in matchers)]
    if query.count:
        return {"totalCount": len(rows)}
    for path, desc in reversed(order):
        rows.sort(key=_sort_key(path), reverse=desc)
    page = rows[query.start - 1: query.start - 1 + query.max_results]
    if not page:
        return {}
    answer: dict[str, Any] = {entity: [render(entity, r) for r in page],
                              "startPosition": query.start, "maxResults": len(page)}
    if switches.get("sim.qbo_query_total_count"):
        answer["totalCount"] = len(page)
    return answer
