"""Temporal's list-filter language (ListWorkflowExecutions / CountWorkflowExecutions) -> parameterized SQL.

Grammar (case-insensitive keywords)::

    query      := [expr] [GROUP BY ExecutionStatus | <a Keyword attribute>] [ORDER BY field [ASC|DESC], ...]
    expr       := and_expr (OR and_expr)*
    and_expr   := unary (AND unary)*
    unary      := NOT unary | '(' expr ')' | predicate
    predicate  := field op value | field [NOT] IN (value, ...) | field [NOT] BETWEEN value AND value
                | field [NOT] STARTS_WITH string | field IS [NOT] NULL

Custom search attributes come in as ``custom`` (alias -> (column, kind)): typed slot columns of
executions_visibility (see ``CUSTOM_SLOT_COLUMNS`` in schema.py). Messages for unknown attributes, wrong value
types and unsupported operators are Temporal's SQL visibility texts. Text and KeywordList matching use
``replace(column, needle, '') <> column``: portable, case-sensitive on both engines (the stored forms are built
by ``slot_value`` below). On PostgreSQL the same matches compile to array containment on the stored words/items
(``pg_array_expression``), which a GIN expression index serves; the results are identical.

Values are always bound as parameters (``?`` placeholders); the PostgreSQL layer renumbers them. Every
mistake raises InvalidArgument naming the problem, so a user can fix their query from the message alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from server.common.errors import InvalidArgument
from server.common.query_lexer import scan, unquote
from server.persistence.schema import PREDEFINED_COLUMNS
from server.persistence.visibility_values import (
    KEYWORD_LIST_SEP,
    STATUS_NAMES,
    TYPE_NAMES,
    convert,
    custom_fields,
    mark,
    operator_error,
    parse_time,
    slot_column,
    slot_kind,
    slot_value,
    text_words,
    value_type_error,
)

__all__ = [  # the literal helpers are re-exported: callers import the query layer only
    "STATUS_NAMES", "VisibilityFilter", "custom_fields", "parse_query", "parse_time", "slot_column", "slot_kind",
    "slot_value", "pg_array_expression",
]  # fmt: skip

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
# Predefined attributes (TemporalChangeVersion, BuildIds, TemporalScheduledById...) have columns of their own.
FIELDS.update(PREDEFINED_COLUMNS)
# Keyword columns that store "" for "absent": IS NULL must match those too.
_EMPTY_IS_NULL = {"parent_workflow_id", "parent_run_id", "root_workflow_id", "root_run_id"}

_KEYWORDS = {
    "AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "STARTS_WITH", "ORDER", "GROUP", "BY", "LIKE", "TRUE", "FALSE",
    "ASC", "DESC",
}  # fmt: skip
_RANGE_KINDS = {"keyword", "int", "double", "datetime", "status", "duration"}
_KIND_OPS = {
    "keyword_list": {"=", "!=", "IN", "NOT IN"},
    "text": {"=", "!="},
}
def pg_array_expression(column: str) -> str:
    """PostgreSQL: a Text or KeywordList slot's stored form (framed by its separator) as an array of its words
    or items. The GIN indexes of migration 0003 are on exactly this expression, so it must not change.
    regexp_split_to_array rather than string_to_array: it is strict, so PostgreSQL can prove that a predicate on
    it implies the partial indexes' ``column IS NOT NULL``."""
    sep = "' '" if column.startswith("text") else "E'\\x1f'"
    return f"regexp_split_to_array(substr({column}, 2, length({column}) - 2), {sep})"


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
    # ORDER BY: (SQL expression, descending) per key; empty for the default order (newest start first).
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    # Whether the query names TemporalNamespaceDivision: if not, system workflows (schedulers, batch jobs, whose
    # rows carry a division) are left out, as Temporal leaves them out (see ``scoped_where``).
    names_division: bool = False

    def scoped_where(self) -> str:
        if self.names_division:
            return f"({self.where})"
        return f"({self.where}) AND temporal_namespace_division IS NULL"


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


# Bounds that keep a hostile query from reaching a recursion limit here or an expression-depth limit in the
# database (SQLite refuses expression trees deeper than 1,000): far beyond any query a person writes.
MAX_NESTING = 100
MAX_PREDICATES = 500
MAX_VALUES = 1000


class _Parser:
    def __init__(
        self, query: str, custom: dict[str, tuple[str, str]] | None = None, dialect: str = "sqlite"
    ) -> None:
        self.dialect = dialect
        self.names_division = False
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
        if name == "TemporalNamespaceDivision":
            self.names_division = True
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
        if self.is_kw("ORDER"):
            if result.group_by_status or result.group_by:
                raise InvalidArgument(
                    "invalid query: operation is not supported: 'ORDER BY' clause is not supported with "
                    "'GROUP BY' clause"
                )
            result.order_by = self.order_by()
        tok = self.peek()
        if tok.kind != "end":
            raise InvalidArgument(f"invalid query: unexpected {tok.text!r} at position {tok.pos}")
        result.params = self.params
        result.names_division = self.names_division
        return result

    def order_by(self) -> list[tuple[str, bool]]:
        """``ORDER BY a [ASC|DESC], b ...`` on any attribute but a Text one (which has no order)."""
        self.next()
        self.expect_kw("BY")
        keys: list[tuple[str, bool]] = []
        while True:
            tok = self.next()
            if tok.kind != "ident":
                raise InvalidArgument(
                    f"invalid query: expected a search attribute after ORDER BY, found {tok.text!r}"
                )
            column, kind = self.field(tok.value)
            if kind == "text":
                raise InvalidArgument(
                    "invalid query: operation is not supported: unable to sort by search attribute type Text"
                )
            desc = False
            if self.is_kw("ASC", "DESC"):
                desc = self.next().text == "DESC"
            keys.append((column, desc))
            if len(keys) > 10:
                raise InvalidArgument("invalid query: ORDER BY takes at most 10 fields")
            if not (self.peek().kind == "op" and self.peek().text == ","):
                return keys
            self.next()

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
                raise operator_error(name, kind, sql_op)
            if kind == "keyword_list":
                return self.contains(column, [self.bind(name, kind)], negate=sql_op == "!=")
            if kind == "text":
                return self.text_match(column, self.bind(name, kind), negate=sql_op == "!=")
            return f"{column} {sql_op} {self.placeholder(name, kind)}"
        if op.kind == "keyword" and op.text == "IN":
            if allowed is not None and "IN" not in allowed:
                raise operator_error(name, kind, "not in" if negate else "in")
            self.expect_op("(")
            values = [self.bind(name, kind)]
            while self.peek().kind == "op" and self.peek().text == ",":
                self.next()
                values.append(self.bind(name, kind))
            self.expect_op(")")
            if kind == "keyword_list":
                return self.contains(column, values, negate=negate)
            self.params.extend(values)
            marks = ", ".join(mark(v) for v in values)
            return f"{column} {'NOT IN' if negate else 'IN'} ({marks})"
        if op.kind == "keyword" and op.text == "BETWEEN":
            if kind not in _RANGE_KINDS:
                raise InvalidArgument(
                    "invalid query: invalid expression: cannot do range condition on search attribute "
                    f"'{name}' of type {TYPE_NAMES[kind]}"
                )
            low = self.placeholder(name, kind)
            self.expect_kw("AND")
            high = self.placeholder(name, kind)
            return f"{column} {'NOT BETWEEN' if negate else 'BETWEEN'} {low} AND {high}"
        if op.kind == "keyword" and op.text == "STARTS_WITH":
            if kind != "keyword":
                raise operator_error(name, kind, "not starts_with" if negate else "starts_with")
            prefix = self.value(name)
            if not isinstance(prefix, str) or isinstance(prefix, bool):
                raise value_type_error(name, kind, prefix)
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
        indexed = [v for v in values if v and KEYWORD_LIST_SEP not in v]
        if self.dialect == "postgresql" and indexed:
            # Array overlap on the items, served by the GIN expression index (see PG_ARRAY_EXPRESSIONS).
            self.params.append(indexed)
            conds.append(f"{pg_array_expression(column)} && CAST(? AS TEXT[])")
            values = [v for v in values if v not in indexed]  # "" and framed values keep the portable form
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
        if self.dialect == "postgresql":
            # The stored words as an array contain all the query's words: the GIN expression index serves it.
            self.params.append(words)
            match = f"({pg_array_expression(column)} @> CAST(? AS TEXT[]))"
            return f"(NOT {match})" if negate else match
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
        return convert(name, kind, self.value(name))

    def placeholder(self, name: str, kind: str) -> str:
        value = self.bind(name, kind)
        self.params.append(value)
        return mark(value)


def parse_query(
    query: str, custom: dict[str, tuple[str, str]] | None = None, dialect: str = "sqlite"
) -> VisibilityFilter:
    """Parse a list filter. Empty/whitespace query matches everything. ``custom``: see ``custom_fields``.
    ``dialect`` "postgresql" compiles Text and KeywordList matches to indexable array predicates."""
    if not query or not query.strip():
        return VisibilityFilter()
    return _Parser(query, custom, dialect).parse()
