"""The `conditions` / `childConditions` query language: tokenizer, parser and evaluator (CW-REF §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from .errors import CwError, bad_request
from .schema_fields import SCHEMAS

KEYWORDS = {"and", "or", "not", "in", "like", "contains", "true", "false", "null"}
COMPARISONS = {"=", "!=", "<>", "<", "<=", ">", ">="}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.|"")*")
  | (?P<date>\[[^\]]*\])
  | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][\w]*(?:/[A-Za-z_][\w]*)*)
""", re.VERBOSE)


class ConditionError(CwError):
    """A malformed or unanswerable condition; always a 400, never a 500."""

    def __init__(self, message: str, field: str = "conditions") -> None:
        err = bad_request(message, field=field if field != "conditions" else "",
                          resource="conditions")
        super().__init__(err.status, err.code, err.message, err.errors)


@dataclass(frozen=True)
class DateLit:
    """A bracketed date-time literal such as `[2025-01-31T00:00:00Z]`."""

    value: datetime


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split a condition string into tokens; an unknown character is a 400 naming its position."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConditionError(f"Unexpected character '{text[pos]}' at position {pos + 1} "
                                 f"in conditions '{text}'.")
        kind = m.lastgroup or ""
        if kind != "ws":
            value = m.group(kind)
            if kind == "word" and value.lower() in KEYWORDS:
                kind = value.lower()
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    return tokens


def parse_date(text: str) -> datetime | None:
    """Lenient date-time parse (ISO with or without zone, or a bare date); None when not a date."""
    raw = text.strip()
    if not raw:
        return None
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


class _Parser:
    """Recursive descent: `or` binds looser than `and`; both associate left; `not` is prefix."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        """The next token, or None at the end."""
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, *kinds: str) -> Token:
        """Consume the next token, which must be one of `kinds`."""
        tok = self.peek()
        if tok is None:
            raise ConditionError(f"Unexpected end of conditions '{self.text}'; expected "
                                 f"{' or '.join(kinds)}.")
        if kinds and tok.kind not in kinds:
            raise ConditionError(f"Unexpected '{tok.text}' at position {tok.pos + 1} in conditions "
                                 f"'{self.text}'; expected {' or '.join(kinds)}.")
        self.i += 1
        return tok

    def parse(self) -> tuple:
        """The whole expression; trailing tokens are an error."""
        if not self.tokens:
            raise ConditionError("The conditions parameter is empty.")
        node = self.expr()
        tok = self.peek()
        if tok is not None:
            raise ConditionError(f"Unexpected '{tok.text}' at position {tok.pos + 1} in conditions "
                                 f"'{self.text}'.")
        return node

    def expr(self) -> tuple:
        """or-expression (loosest binding)."""
        parts = [self.conj()]
        while self.peek() is not None and self.peek().kind == "or":
            self.i += 1
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conj(self) -> tuple:
        """and-expression."""
        parts = [self.unary()]
        while self.peek() is not None and self.peek().kind == "and":
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def unary(self) -> tuple:
        """`not`, a parenthesised group, or a comparison."""
        tok = self.peek()
        if tok is not None and tok.kind == "not":
            self.i += 1
            return ("not", self.unary())
        if tok is not None and tok.kind == "lparen":
            self.i += 1
            node = self.expr()
            self.take("rparen")
            return node
        return self.comparison()

    def comparison(self) -> tuple:
        """field op value, field [not] in (…), field [not] like|contains value."""
        field = self.take("word")
        negate = False
        tok = self.take("op", "not", "in", "like", "contains")
        if tok.kind == "not":
            negate = True
            tok = self.take("in", "like", "contains")
        if tok.kind == "in":
            self.take("lparen")
            values = [self.value()]
            while self.peek() is not None and self.peek().kind == "comma":
                self.i += 1
                values.append(self.value())
            self.take("rparen")
            return ("in", field.text, values, negate)
        if tok.kind in ("like", "contains"):
            value = self.value()
            if not isinstance(value, str):
                raise ConditionError(f"'{tok.text}' needs a quoted string after {field.text}.",
                                     field.text)
            return (tok.kind, field.text, value, negate)
        op = "!=" if tok.text == "<>" else tok.text
        return ("cmp", field.text, op, self.value())

    def value(self) -> Any:
        """A literal: string, number, boolean, null or [date-time]."""
        tok = self.take("string", "number", "true", "false", "null", "date")
        if tok.kind == "string":
            inner = tok.text[1:-1].replace('""', '"')
            return re.sub(r"\\(.)", r"\1", inner)
        if tok.kind == "number":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind in ("true", "false"):
            return tok.kind == "true"
        if tok.kind == "null":
            return None
        parsed = parse_date(tok.text[1:-1])
        if parsed is None:
            raise ConditionError(f"'{tok.text}' at position {tok.pos + 1} is not a valid date-time; "
                                 "use [YYYY-MM-DDTHH:MM:SSZ].")
        return DateLit(parsed)


def parse(text: str) -> tuple:
    """Parse a conditions string into a small tuple tree (raises ConditionError)."""
    return _Parser(text).parse()


def field_kind(schema: str, path: str) -> str:
    """The kind of `path` in `schema` (see schema_fields); unknown fields are a 400."""
    kind = "ref:" + schema
    for part in path.split("/"):
        base = kind.strip("[]")
        if base == "object":
            return "object"
        if not base.startswith("ref:"):
            raise ConditionError(f"Unknown field '{path}' for conditions on {schema}.", path)
        props = SCHEMAS.get(base[4:])
        if props is None:
            return "object"
        match = next((k for k in props if k.lower() == part.lower()), None)
        if match is None:
            raise ConditionError(f"Unknown field '{path}' for conditions on {schema}.", path)
        kind = props[match]
    return kind


def _check(node: tuple, schema: str) -> None:
    tag = node[0]
    if tag in ("or", "and"):
        for child in node[1]:
            _check(child, schema)
        return
    if tag == "not":
        _check(node[1], schema)
        return
    kind = field_kind(schema, node[1]).strip("[]")
    if tag in ("like", "contains") and kind not in ("str", "object", "dt"):
        raise ConditionError(f"'{tag}' works on string fields only; {node[1]} is not a string.",
                             node[1])
    if tag == "cmp" and node[2] in ("<", "<=", ">", ">=") and kind == "bool":
        raise ConditionError(f"'{node[2]}' cannot compare the boolean field {node[1]}.", node[1])
    if tag == "cmp" and kind in ("int", "num") and isinstance(node[3], str):
        try:
            float(node[3])
        except ValueError:
            raise ConditionError(f"The value \"{node[3]}\" is not a number; {node[1]} is numeric.",
                                 node[1]) from None


def compile_conditions(text: str, schema: str | None = None) -> Callable[[dict], bool]:
    """Parse, check the fields against the schema, and return a predicate over records."""
    tree = parse(text)
    if schema is not None:
        _check(tree, schema)
    return lambda record: evaluate(tree, record)


def compile_child_conditions(text: str, schema: str | None = None) -> Callable[[dict], bool]:
    """childConditions: true when one element of the array satisfies the whole expression."""
    tree = parse(text)
    if schema is not None:
        _check(tree, schema)
    arrays = {p.split("/")[0].lower() for p in _paths(tree)}
    if len(arrays) != 1:
        return lambda record: evaluate(tree, record)
    array = arrays.pop()
    stripped = _strip(tree)

    def predicate(record: dict) -> bool:
        key = next((k for k in record if k.lower() == array), None)
        items = record.get(key) if key else None
        if not isinstance(items, list):
            return False
        return any(evaluate(stripped, item) for item in items if isinstance(item, dict))
    return predicate


def _paths(node: tuple) -> list[str]:
    if node[0] in ("or", "and"):
        return [p for child in node[1] for p in _paths(child)]
    if node[0] == "not":
        return _paths(node[1])
    return [node[1]]


def _strip(node: tuple) -> tuple:
    if node[0] in ("or", "and"):
        return (node[0], [_strip(c) for c in node[1]])
    if node[0] == "not":
        return ("not", _strip(node[1]))
    rest = node[1].split("/", 1)
    return (node[0], rest[1] if len(rest) > 1 else rest[0], *node[2:])


def resolve(record: Any, path: str) -> list[Any]:
    """Every value at `path` (arrays fan out), case-insensitive keys; [None] when absent."""
    values = [record]
    for part in path.split("/"):
        nxt: list[Any] = []
        low = part.lower()
        for value in values:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    key = part if part in item else next(
                        (k for k in item if k.lower() == low), None)
                    nxt.append(item.get(key) if key is not None else None)
                else:
                    nxt.append(None)
        values = nxt
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat or [None]


def evaluate(node: tuple, record: dict) -> bool:
    """Evaluate a parsed condition against one stored record."""
    tag = node[0]
    if tag == "or":
        return any(evaluate(c, record) for c in node[1])
    if tag == "and":
        return all(evaluate(c, record) for c in node[1])
    if tag == "not":
        return not evaluate(node[1], record)
    values = resolve(record, node[1])
    if tag == "cmp":
        op, literal = node[2], node[3]
        if op == "!=":
            return not any(_equal(v, literal) for v in values)
        if op == "=":
            return any(_equal(v, literal) for v in values)
        return any(_order(v, op, literal) for v in values)
    if tag == "in":
        hit = any(_equal(v, lit) for v in values for lit in node[2])
        return hit != node[3]
    if tag == "contains":
        needle = node[2].casefold()
        hit = any(isinstance(v, str) and needle in v.casefold() for v in values)
        return hit != node[3]
    if tag == "like":
        pattern = _like_regex(node[2])
        hit = any(isinstance(v, str) and pattern.fullmatch(v.casefold()) is not None
                  for v in values)
        return hit != node[3]
    raise ConditionError(f"Unsupported condition {tag}.")


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"([%*])", pattern.casefold())
    return re.compile("".join(".*" if p in ("%", "*") else re.escape(p) for p in parts), re.S)


def _coerce(value: Any, literal: Any) -> tuple[Any, Any] | None:
    """Bring a stored value and a literal to comparable types, or None when they cannot be."""
    if isinstance(literal, DateLit):
        when = parse_date(value) if isinstance(value, str) else None
        return (when, literal.value) if when is not None else None
    if isinstance(literal, bool) or isinstance(value, bool):
        return (value, literal) if isinstance(value, bool) and isinstance(literal, bool) else None
    if isinstance(literal, (int, float)):
        if isinstance(value, (int, float)):
            return float(value), float(literal)
        if isinstance(value, str):
            try:
                return float(value), float(literal)
            except ValueError:
                return None
        return None
    if isinstance(literal, str):
        if isinstance(value, str):
            return value.casefold(), literal.casefold()
        if isinstance(value, (int, float)):
            try:
                return float(value), float(literal)
            except ValueError:
                return None
    return None


def _equal(value: Any, literal: Any) -> bool:
    if literal is None:
        return value is None
    pair = _coerce(value, literal)
    return pair is not None and pair[0] == pair[1]


def _order(value: Any, op: str, literal: Any) -> bool:
    if literal is None or value is None:
        return False
    pair = _coerce(value, literal)
    if pair is None:
        return False
    a, b = pair
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
