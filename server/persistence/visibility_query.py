"""Temporal's list-filter language (ListWorkflowExecutions / CountWorkflowExecutions) -> parameterized SQL.

Grammar (case-insensitive keywords)::

    query      := [expr] [GROUP BY ExecutionStatus | <a Keyword attribute>]    ORDER BY is refused for now
    expr       := and_expr (OR and_expr)*
    and_expr   := unary (AND unary)*
    unary      := NOT unary | '(' expr ')' | predicate
    predicate  := field op value | field [NOT] IN (value, ...) | field [NOT] BETWEEN value AND value
                | field [NOT] STARTS_WITH string | field IS [NOT] NULL

Custom search attributes come in as ``custom`` (alias -> (column, kind)): typed slot columns of
executions_visibility (see ``CUSTOM_SLOT_COLUMNS`` in schema.py). Messages for unknown attributes, wrong value
types and unsupported operators are Temporal's SQL visibility texts. Text and KeywordList matching use
``replace(column, needle, '') <> column``: portable, case-sensitive on both engines (the stored forms are built
by ``slot_value`` below).

Values are always bound as parameters (``?`` placeholders); the PostgreSQL layer renumbers them. Every
mistake raises InvalidArgument naming the problem, so a user can fix their query from the message alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.common.errors import InvalidArgument
from server.common.query_lexer import scan, unquote

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

_KEYWORDS = {
    "AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "STARTS_WITH", "ORDER", "GROUP", "BY", "LIKE", "TRUE", "FALSE",
}  # fmt: skip
# Search attribute kinds -> Temporal's type names (for messages) and the operators each accepts.
_TYPE_NAMES = {
    "keyword": "Keyword", "text": "Text", "keyword_list": "KeywordList", "int": "Int", "double": "Double",
    "bool": "Bool", "datetime": "Datetime", "status": "Keyword", "duration": "Int",
}  # fmt: skip
_RANGE_KINDS = {"keyword", "int", "double", "datetime", "status", "duration"}
_KIND_OPS = {
    "keyword_list": {"=", "!=", "IN", "NOT IN"},
    "text": {"=", "!="},
}
KEYWORD_LIST_SEP = "\x1f"
_WORD_RE = re.compile(r"\w+")


def text_words(text: str) -> list[str]:
    """Lower-cased words of a Text value or a Text query."""
    return _WORD_RE.findall(text.lower())


def slot_value(kind: str, value: Any) -> Any:
    """A decoded search attribute value as its slot column stores it."""
    if kind == "datetime":
        from server.persistence.sql.tx import to_micros

        return to_micros(value.astimezone(UTC))
    if kind == "keyword_list":
        return KEYWORD_LIST_SEP + KEYWORD_LIST_SEP.join(value) + KEYWORD_LIST_SEP
    if kind == "text":
        return " " + " ".join(text_words(value)) + " "
    if kind == "double":
        return float(value)
    if kind == "bool":
        return bool(value)
    return value


def slot_kind(slot: str) -> str | None:
    """``Keyword01`` -> ``keyword``, ``KeywordList02`` -> ``keyword_list``; None if not a slot name."""
    m = re.match(r"^(Bool|Datetime|Double|Int|KeywordList|Keyword|Text)(\d\d)$", slot)
    if m is None:
        return None
    return "keyword_list" if m.group(1) == "KeywordList" else m.group(1).lower()


def slot_column(slot: str) -> str:
    kind = slot_kind(slot)
    assert kind is not None, slot
    return f"{kind}{slot[-2:]}"


def custom_fields(aliases: dict[str, str] | None) -> dict[str, tuple[str, str]]:
    """A namespace's ``custom_search_attribute_aliases`` (slot -> alias) -> alias -> (SQL column, kind)."""
    out: dict[str, tuple[str, str]] = {}
    for slot, alias in (aliases or {}).items():
        kind = slot_kind(slot)
        if kind is not None:
            out[alias] = (slot_column(slot), kind)
    return out


def _go_repr(value: Any) -> tuple[str, str]:
    """A query literal as Go's ``%#v`` and ``%T`` show it (Temporal's wrong-type message)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int64"
    if isinstance(value, float):
        return repr(value), "float64"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"', "string"


def _value_type_error(name: str, kind: str, value: Any) -> InvalidArgument:
    shown, go_type = _go_repr(value)
    return InvalidArgument(
        f"invalid query: invalid expression: invalid value type for search attribute {name} of type "
        f"{_TYPE_NAMES[kind]}: {shown} (type: {go_type})"
    )


def _operator_error(name: str, kind: str, op: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid query: operation is not supported: operator '{op.upper()}' not supported for "
        f"{_TYPE_NAMES[kind]} type search attribute '{name}'"
    )
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
    # GROUP BY a Keyword attribute: its SQL column (None for none or ExecutionStatus).
    group_by: str | None = None


def _tokenize(query: str) -> list[_Tok]:
    tokens: list[_Tok] = []

    def error(pos: int) -> InvalidArgument:
        return InvalidArgument(f"invalid query: unexpected character {query[pos]!r} at position {pos}")

    for m in scan(query, _TOKEN_RE, error):
        text = m.group(m.lastgroup or "").strip()
        start = m.start(m.lastgroup or 0)
        if m.lastgroup == "string":
            tokens.append(_Tok("string", text, unquote(text), start))
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
    def __init__(self, query: str, custom: dict[str, tuple[str, str]] | None = None) -> None:
        self.tokens = _tokenize(query)
        self.i = 0
        self.params: list[Any] = []
        self.depth = 0
        self.predicates = 0
        self.custom = custom or {}

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

    def field(self, name: str) -> tuple[str, str]:
        if name in FIELDS:
            return FIELDS[name]
        if name in self.custom:
            return self.custom[name]
        raise InvalidArgument(
            f"invalid query: invalid expression: column name '{name}' is not a valid search attribute"
        )

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
            if tok.kind != "ident":
                raise InvalidArgument(f"invalid query: expected a search attribute after GROUP BY, found {tok.text!r}")
            column, kind = self.field(tok.value)
            if kind == "status":
                result.group_by_status = True
            elif kind == "keyword" and tok.value in self.custom:  # system Keywords are refused, as in Temporal
                result.group_by = column
            else:
                raise InvalidArgument(
                    "invalid query: operation is not supported: 'GROUP BY' clause is not supported for "
                    f"search attribute {tok.value}"
                )
            if self.peek().kind == "op" and self.peek().text == ",":
                raise InvalidArgument(
                    "invalid query: operation is not supported: 'GROUP BY' clause supports only a single field"
                )
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
        column, kind = self.field(name)
        negate = False
        if self.is_kw("NOT"):
            self.next()
            negate = True
            if not self.is_kw("IN", "BETWEEN", "STARTS_WITH"):
                raise InvalidArgument(f"invalid query: expected IN, BETWEEN or STARTS_WITH after {name} NOT")
        op = self.next()
        allowed = _KIND_OPS.get(kind)
        if op.kind == "op" and op.text in _COMPARE:
            sql_op = _COMPARE[op.text]
            if allowed is not None and sql_op not in allowed:
                raise _operator_error(name, kind, sql_op)
            if kind == "keyword_list":
                return self.contains(column, [self.bind(name, kind)], negate=sql_op == "!=")
            if kind == "text":
                return self.text_match(column, self.bind(name, kind), negate=sql_op == "!=")
            return f"{column} {sql_op} {self.placeholder(name, kind)}"
        if op.kind == "keyword" and op.text == "IN":
            if allowed is not None and "IN" not in allowed:
                raise _operator_error(name, kind, "not in" if negate else "in")
            self.expect_op("(")
            values = [self.bind(name, kind)]
            while self.peek().kind == "op" and self.peek().text == ",":
                self.next()
                values.append(self.bind(name, kind))
            self.expect_op(")")
            if kind == "keyword_list":
                return self.contains(column, values, negate=negate)
            self.params.extend(values)
            marks = ", ".join(_mark(v) for v in values)
            return f"{column} {'NOT IN' if negate else 'IN'} ({marks})"
        if op.kind == "keyword" and op.text == "BETWEEN":
            if kind not in _RANGE_KINDS:
                raise InvalidArgument(
                    "invalid query: invalid expression: cannot do range condition on search attribute "
                    f"'{name}' of type {_TYPE_NAMES[kind]}"
                )
            low = self.placeholder(name, kind)
            self.expect_kw("AND")
            high = self.placeholder(name, kind)
            return f"{column} {'NOT BETWEEN' if negate else 'BETWEEN'} {low} AND {high}"
        if op.kind == "keyword" and op.text == "STARTS_WITH":
            if kind != "keyword":
                raise _operator_error(name, kind, "not starts_with" if negate else "starts_with")
            prefix = self.value(name)
            if not isinstance(prefix, str) or isinstance(prefix, bool):
                raise _value_type_error(name, kind, prefix)
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

    def contains(self, column: str, values: list[Any], *, negate: bool) -> str:
        """KeywordList membership: ``=`` is "contains", IN is "contains any"; NULL lists match neither form."""
        conds = []
        for v in values:
            self.params.append(KEYWORD_LIST_SEP + v + KEYWORD_LIST_SEP)
            conds.append(f"replace({column}, ?, '') <> {column}")
        any_of = conds[0] if len(conds) == 1 else "(" + " OR ".join(conds) + ")"
        return f"(NOT {any_of})" if negate else any_of

    def text_match(self, column: str, text: str, *, negate: bool) -> str:
        """Text match: every word of the value is a word of the attribute (case-insensitive)."""
        words = text_words(text)
        if not words:
            return f"({column} IS NOT NULL)" if negate else "(1 = 0)"
        conds = []
        for w in words:
            self.params.append(f" {w} ")
            conds.append(f"replace({column}, ?, '') <> {column}")
        match = "(" + " AND ".join(conds) + ")"
        return f"(NOT {match})" if negate else match

    def value(self, name: str) -> Any:
        tok = self.next()
        if tok.kind == "keyword" and tok.text in ("TRUE", "FALSE"):
            return tok.text == "TRUE"
        if tok.kind not in ("string", "number"):
            raise InvalidArgument(
                f"invalid query: expected a value for {name} at position {tok.pos}, found {tok.text!r}"
            )
        return tok.value

    def bind(self, name: str, kind: str) -> Any:
        return _convert(name, kind, self.value(name))

    def placeholder(self, name: str, kind: str) -> str:
        value = self.bind(name, kind)
        self.params.append(value)
        return _mark(value)


def _mark(value: Any) -> str:
    # A fraction compared with an integer column: typed so PostgreSQL does not insist on an integer parameter.
    return "CAST(? AS DOUBLE PRECISION)" if isinstance(value, float) else "?"


def _convert(name: str, kind: str, raw: Any) -> Any:
    is_bool = isinstance(raw, bool)
    if kind in ("keyword", "text", "keyword_list"):
        if not isinstance(raw, str):
            raise _value_type_error(name, kind, raw)
        return raw
    if kind in ("int", "double"):
        if is_bool or not isinstance(raw, int | float):
            raise _value_type_error(name, kind, raw)
        if kind == "double":
            return float(raw)
        return int(raw) if isinstance(raw, float) and raw.is_integer() else raw
    if kind == "bool":
        if not is_bool:
            raise _value_type_error(name, kind, raw)
        return raw
    if kind == "status":
        if not is_bool and isinstance(raw, int) and raw in STATUS_NAMES.values():
            return raw
        if isinstance(raw, str) and raw in STATUS_NAMES:
            return STATUS_NAMES[raw]
        raise InvalidArgument(
            f"invalid query: ExecutionStatus value {raw!r} is not one of {', '.join(STATUS_NAMES)}"
        )
    if kind == "datetime":
        if isinstance(raw, int) and not is_bool:
            return raw // 1000  # integer values are nanoseconds since the epoch, as in Temporal
        if isinstance(raw, str):
            try:
                return parse_time(raw, name)
            except InvalidArgument:
                raise InvalidArgument(
                    f"invalid query: invalid expression: unable to parse datetime '{raw}'"
                ) from None
        raise _value_type_error(name, kind, raw)
    if kind == "duration":
        if isinstance(raw, int) and not is_bool:
            return raw // 1000  # nanoseconds
        if isinstance(raw, str):
            return _parse_duration(raw, name)
        raise InvalidArgument(f"invalid query: {name} needs a duration, got {raw!r}")
    raise AssertionError(kind)


def parse_query(query: str, custom: dict[str, tuple[str, str]] | None = None) -> VisibilityFilter:
    """Parse a list filter. Empty/whitespace query matches everything. ``custom``: see ``custom_fields``."""
    if not query or not query.strip():
        return VisibilityFilter()
    return _Parser(query, custom).parse()
