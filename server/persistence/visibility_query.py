"""Temporal's list-filter language (ListWorkflowExecutions / CountWorkflowExecutions) -> parameterized SQL.

Grammar (case-insensitive keywords)::

    query      := [expr] [GROUP BY ExecutionStatus]          ORDER BY is refused, as in Temporal's SQL stores
    expr       := and_expr (OR and_expr)*
    and_expr   := unary (AND unary)*
    unary      := NOT unary | '(' expr ')' | predicate
    predicate  := field op value | field [NOT] IN (value, ...) | field [NOT] BETWEEN value AND value
                | field [NOT] STARTS_WITH string | field IS [NOT] NULL

Values are always bound as parameters (``?`` placeholders); the PostgreSQL layer renumbers them. Every
mistake raises InvalidArgument naming the problem, so a user can fix their query from the message alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.common.errors import InvalidArgument

# WorkflowExecutionStatus names as the Temporal UI/CLI write them.
STATUS_NAMES: dict[str, int] = {
    "Running": 1,
    "Completed": 2,
    "Failed": 3,
    "Canceled": 4,
    "Terminated": 5,
    "ContinuedAsNew": 6,
    "TimedOut": 7,
    "Paused": 8,  # PauseWorkflowExecution
}

# Search attribute name -> (SQL expression, kind). Kinds: keyword, int, datetime, status, duration.
FIELDS: dict[str, tuple[str, str]] = {
    "WorkflowId": ("workflow_id", "keyword"),
    "RunId": ("run_id", "keyword"),
    "WorkflowType": ("workflow_type", "keyword"),
    "ExecutionStatus": ("status", "status"),
    "StartTime": ("start_time", "datetime"),
    "CloseTime": ("close_time", "datetime"),
    "ExecutionTime": ("execution_time", "datetime"),
    "ExecutionDuration": ("(close_time - execution_time)", "duration"),
    "TaskQueue": ("task_queue", "keyword"),
    "HistoryLength": ("history_length", "int"),
    "HistorySizeBytes": ("history_size_bytes", "int"),
    "StateTransitionCount": ("state_transition_count", "int"),
    "ParentWorkflowId": ("parent_workflow_id", "keyword"),
    "ParentRunId": ("parent_run_id", "keyword"),
    "RootWorkflowId": ("root_workflow_id", "keyword"),
    "RootRunId": ("root_run_id", "keyword"),
}
# Keyword columns that store "" for "absent": IS NULL must match those too.
_EMPTY_IS_NULL = {"parent_workflow_id", "parent_run_id", "root_workflow_id", "root_run_id"}

_KEYWORDS = {"AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "STARTS_WITH", "ORDER", "GROUP", "BY", "LIKE"}
_COMPARE = {"=": "=", "!=": "!=", "<>": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
      | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
      | (?P<ident>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op>!=|<>|>=|<=|=|>|<|\(|\)|,)
    )""",
    re.VERBOSE,
)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_MICROS = {
    "ns": 0.001,
    "us": 1,
    "µs": 1,
    "ms": 1000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
}


@dataclass
class _Tok:
    kind: str  # string | number | ident | keyword | op | end
    text: str
    value: Any = None
    pos: int = 0


@dataclass
class VisibilityFilter:
    """A parsed query: ``where`` is a SQL boolean expression over executions_visibility columns."""

    where: str = "1 = 1"
    params: list[Any] = field(default_factory=list)
    group_by_status: bool = False


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def _tokenize(query: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while True:
        while pos < len(query) and query[pos].isspace():
            pos += 1
        if pos >= len(query):
            break
        m = _TOKEN_RE.match(query, pos)
        if m is None or m.end() == pos:
            raise InvalidArgument(f"invalid query: unexpected character {query[pos]!r} at position {pos}")
        text = m.group(m.lastgroup or "").strip()
        start = m.start(m.lastgroup or 0)
        if m.lastgroup == "string":
            tokens.append(_Tok("string", text, _unquote(text), start))
        elif m.lastgroup == "number":
            tokens.append(_Tok("number", text, float(text) if "." in text else int(text), start))
        elif m.lastgroup == "ident":
            if text.startswith("`"):
                tokens.append(_Tok("ident", text, text[1:-1], start))
            elif text.upper() in _KEYWORDS:
                tokens.append(_Tok("keyword", text.upper(), None, start))
            else:
                tokens.append(_Tok("ident", text, text, start))
        else:
            tokens.append(_Tok("op", text, None, start))
        pos = m.end()
    tokens.append(_Tok("end", "end of query", None, len(query)))
    return tokens


def parse_time(text: str, name: str = "time") -> int:
    """RFC3339 string -> microseconds since the epoch (fractions past microseconds are truncated)."""
    from server.persistence.sql.tx import to_micros

    s = text.strip()
    m = re.match(r"^(.*?\d\d:\d\d:\d\d)(\.\d+)?(Z|z|[+-]\d\d:?\d\d)?$", s)
    if m is None:
        raise InvalidArgument(f"invalid query: {name} value {text!r} is not an RFC3339 time")
    frac = (m.group(2) or "")[:7]
    tz = m.group(3) or "+00:00"
    tz = "+00:00" if tz in ("Z", "z") else tz
    try:
        value = datetime.fromisoformat(m.group(1).replace(" ", "T") + frac + tz)
    except ValueError as e:
        raise InvalidArgument(f"invalid query: {name} value {text!r} is not an RFC3339 time ({e})") from None
    return to_micros(value.astimezone(UTC))


def _parse_duration(text: str, name: str) -> int:
    """Go-style duration ("1h30m", "250ms") -> microseconds."""
    s = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_MICROS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise InvalidArgument(
            f"invalid query: {name} value {text!r} is not a duration (like '90s' or '1h30m')"
        )
    return int(total)


# Bounds that keep a hostile query from reaching a recursion limit here or an expression-depth limit in the
# database (SQLite refuses expression trees deeper than 1,000): far beyond any query a person writes.
MAX_NESTING = 100
MAX_PREDICATES = 500
MAX_VALUES = 1000


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = _tokenize(query)
        self.i = 0
        self.params: list[Any] = []
        self.depth = 0
        self.predicates = 0

    def peek(self, offset: int = 0) -> _Tok:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.peek().kind == "keyword" and self.peek().text in words

    def expect_kw(self, word: str) -> None:
        tok = self.next()
        if tok.kind != "keyword" or tok.text != word:
            raise InvalidArgument(f"invalid query: expected {word} at position {tok.pos}, found {tok.text!r}")

    def expect_op(self, op: str) -> None:
        tok = self.next()
        if tok.kind != "op" or tok.text != op:
            raise InvalidArgument(f"invalid query: expected {op!r} at position {tok.pos}, found {tok.text!r}")

    def parse(self) -> VisibilityFilter:
        result = VisibilityFilter()
        if self.peek().kind != "end" and not self.is_kw("ORDER", "GROUP"):
            result.where = self.expr()
        if self.is_kw("ORDER"):
            raise InvalidArgument("invalid query: ORDER BY is not supported; results are newest first")
        if self.is_kw("GROUP"):
            self.next()
            self.expect_kw("BY")
            tok = self.next()
            if tok.kind != "ident" or tok.value != "ExecutionStatus":
                raise InvalidArgument(
                    f"invalid query: GROUP BY supports only ExecutionStatus, not {tok.text!r}"
                )
            result.group_by_status = True
        tok = self.peek()
        if tok.kind != "end":
            raise InvalidArgument(f"invalid query: unexpected {tok.text!r} at position {tok.pos}")
        result.params = self.params
        return result

    def expr(self) -> str:
        parts = [self.and_expr()]
        while self.is_kw("OR"):
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.unary()]
        while self.is_kw("AND"):
            self.next()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def unary(self) -> str:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise InvalidArgument(f"invalid query: nested deeper than {MAX_NESTING} levels")
            if self.is_kw("NOT"):
                self.next()
                return f"(NOT {self.unary()})"
            tok = self.peek()
            if tok.kind == "op" and tok.text == "(":
                self.next()
                inner = self.expr()
                self.expect_op(")")
                return f"({inner})"
            self.predicates += 1
            if self.predicates > MAX_PREDICATES:
                raise InvalidArgument(f"invalid query: more than {MAX_PREDICATES} conditions")
            sql = self.predicate()
            if len(self.params) > MAX_VALUES:
                raise InvalidArgument(f"invalid query: more than {MAX_VALUES} values")
            return sql
        finally:
            self.depth -= 1

    def predicate(self) -> str:
        tok = self.next()
        if tok.kind != "ident":
            raise InvalidArgument(
                f"invalid query: expected a search attribute name at position {tok.pos}, found {tok.text!r}"
            )
        name = tok.value
        if name not in FIELDS:
            raise InvalidArgument(
                f"invalid query: unknown or unsupported search attribute {name!r} "
                f"(supported: {', '.join(sorted(FIELDS))})"
            )
        column, kind = FIELDS[name]
        negate = False
        if self.is_kw("NOT"):
            self.next()
            negate = True
            if not self.is_kw("IN", "BETWEEN", "STARTS_WITH"):
                raise InvalidArgument(f"invalid query: expected IN, BETWEEN or STARTS_WITH after {name} NOT")
        op = self.next()
        if op.kind == "op" and op.text in _COMPARE:
            return f"{column} {_COMPARE[op.text]} {self.bind(name, kind)}"
        if op.kind == "keyword" and op.text == "IN":
            self.expect_op("(")
            values = [self.bind(name, kind)]
            while self.peek().kind == "op" and self.peek().text == ",":
                self.next()
                values.append(self.bind(name, kind))
            self.expect_op(")")
            return f"{column} {'NOT IN' if negate else 'IN'} ({', '.join(values)})"
        if op.kind == "keyword" and op.text == "BETWEEN":
            low = self.bind(name, kind)
            self.expect_kw("AND")
            high = self.bind(name, kind)
            return f"{column} {'NOT BETWEEN' if negate else 'BETWEEN'} {low} AND {high}"
        if op.kind == "keyword" and op.text == "STARTS_WITH":
            if kind != "keyword":
                raise InvalidArgument(f"invalid query: STARTS_WITH applies to keyword attributes, not {name}")
            prefix = self.value(name)
            if not isinstance(prefix, str):
                raise InvalidArgument(f"invalid query: STARTS_WITH needs a string for {name}")
            self.params.extend([len(prefix), prefix])
            cond = f"substr({column}, 1, ?) = ?"
            return f"(NOT {cond})" if negate else cond
        if op.kind == "keyword" and op.text == "IS":
            is_not = self.is_kw("NOT")
            if is_not:
                self.next()
            self.expect_kw("NULL")
            if column in _EMPTY_IS_NULL:
                return (
                    f"({column} IS NOT NULL AND {column} <> '')"
                    if is_not
                    else f"({column} IS NULL OR {column} = '')"
                )
            return f"{column} IS {'NOT ' if is_not else ''}NULL"
        raise InvalidArgument(
            f"invalid query: unsupported operator {op.text!r} after {name} at position {op.pos}"
        )

    def value(self, name: str) -> Any:
        tok = self.next()
        if tok.kind not in ("string", "number"):
            raise InvalidArgument(
                f"invalid query: expected a value for {name} at position {tok.pos}, found {tok.text!r}"
            )
        return tok.value

    def bind(self, name: str, kind: str) -> str:
        raw = self.value(name)
        self.params.append(_convert(name, kind, raw))
        return "?"


def _convert(name: str, kind: str, raw: Any) -> Any:
    if kind == "keyword":
        if not isinstance(raw, str):
            raise InvalidArgument(f"invalid query: {name} needs a string value, got {raw!r}")
        return raw
    if kind == "int":
        if isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                raise InvalidArgument(f"invalid query: {name} needs an integer, got {raw!r}") from None
        if isinstance(raw, float):
            raise InvalidArgument(f"invalid query: {name} needs an integer, got {raw!r}")
        return raw
    if kind == "status":
        if isinstance(raw, int) and raw in STATUS_NAMES.values():
            return raw
        if isinstance(raw, str) and raw in STATUS_NAMES:
            return STATUS_NAMES[raw]
        raise InvalidArgument(
            f"invalid query: ExecutionStatus value {raw!r} is not one of {', '.join(STATUS_NAMES)}"
        )
    if kind == "datetime":
        if isinstance(raw, int):
            return raw // 1000  # integer values are nanoseconds since the epoch, as in Temporal
        if isinstance(raw, str):
            return parse_time(raw, name)
        raise InvalidArgument(f"invalid query: {name} needs an RFC3339 time, got {raw!r}")
    if kind == "duration":
        if isinstance(raw, int):
            return raw // 1000  # nanoseconds
        if isinstance(raw, str):
            return _parse_duration(raw, name)
        raise InvalidArgument(f"invalid query: {name} needs a duration, got {raw!r}")
    raise AssertionError(kind)


def parse_query(query: str) -> VisibilityFilter:
    """Parse a list filter. Empty/whitespace query matches everything."""
    if not query or not query.strip():
        return VisibilityFilter()
    return _Parser(query).parse()
