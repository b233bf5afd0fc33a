"""The list filter of ListWorkers / CountWorkers, evaluated against worker heartbeats in memory (sans-IO).

Temporal parses the filter as the WHERE clause of a SQL statement and then evaluates it per heartbeat. Only a
filter that does not parse is refused (INVALID_ARGUMENT "malformed query: ..."); a filter that parses but
cannot be evaluated for a worker (unknown field, unsupported operator, bad value) simply does not match it:
evaluation goes left to right with short-circuit AND/OR and gives "no match" at the first such predicate.

Fields (names case-sensitive, except the reserved word ``Status``)::

    WorkerInstanceKey WorkerIdentity HostName TaskQueue DeploymentName BuildId SdkName SdkVersion
                                   string: = != STARTS_WITH, NOT STARTS_WITH, IS [NOT] NULL (NULL = empty)
    WorkerStatus / Status          string, compared with the enum name ('WORKER_STATUS_RUNNING')
    StartTime HeartbeatTime        time (RFC3339 string or integer nanoseconds): = != > >= < <=,
                                   [NOT] BETWEEN a AND b, IS [NOT] NULL

Grammar: ``expr := and (OR and)*``, ``and := unary (AND unary)*``, ``unary := NOT unary | '(' expr ')' |
predicate``. ``NOT`` parses but never matches (Temporal does not support it), nor do IN, LIKE and functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.enums.v1 import common_pb2 as common_enums
from temporalio.api.worker.v1 import message_pb2 as worker_pb

from server.common.errors import InvalidArgument
from server.common.query_lexer import scan, unquote


class _NoMatch(Exception):
    """The filter cannot be evaluated for this worker: it does not match."""


def _status_name(hb: worker_pb.WorkerHeartbeat) -> str:
    return common_enums.WorkerStatus.Name(hb.status) if hb.status in common_enums.WorkerStatus.values() else ""


STRING_FIELDS: dict[str, Callable[[worker_pb.WorkerHeartbeat], str]] = {
    "WorkerInstanceKey": lambda hb: hb.worker_instance_key,
    "WorkerIdentity": lambda hb: hb.worker_identity,
    "HostName": lambda hb: hb.host_info.host_name,
    "TaskQueue": lambda hb: hb.task_queue,
    "DeploymentName": lambda hb: hb.deployment_version.deployment_name,
    "BuildId": lambda hb: hb.deployment_version.build_id,
    "SdkName": lambda hb: hb.sdk_name,
    "SdkVersion": lambda hb: hb.sdk_version,
    "WorkerStatus": _status_name,
    "status": _status_name,  # "Status" is a reserved word: the SQL parser lower-cases it
}
TIME_FIELDS = frozenset({"StartTime", "HeartbeatTime"})

_RESERVED = {"STATUS"}
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IS", "NULL", "STARTS_WITH", "IN", "LIKE", "TRUE", "FALSE"}
_COMPARE = {"=", "!=", "<>", ">", ">=", "<", "<="}

_TOKEN_RE = re.compile(
    r"""(?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
      | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
      | (?P<ident>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op>!=|<>|>=|<=|=|>|<|\(|\)|,)""",
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str  # string | number | ident | keyword | op | end
    text: str
    pos: int


def _tokenize(query: str) -> list[_Tok]:
    out: list[_Tok] = []

    def error(pos: int) -> InvalidArgument:
        return InvalidArgument(f"malformed query: syntax error at position {pos + 1} near {query[pos:pos + 10]!r}")

    for m in scan(query, _TOKEN_RE, error):
        pos = m.start()
        kind = m.lastgroup or "op"
        text = m.group(kind)
        if kind == "string":
            out.append(_Tok("string", unquote(text), pos))
        elif kind == "ident":
            if text.startswith("`"):
                out.append(_Tok("ident", text[1:-1], pos))
            elif text.upper() in _KEYWORDS:
                out.append(_Tok("keyword", text.upper(), pos))
            elif text.upper() in _RESERVED:
                out.append(_Tok("ident", text.lower(), pos))
            else:
                out.append(_Tok("ident", text, pos))
        else:
            out.append(_Tok(kind, text, pos))
    out.append(_Tok("end", "", len(query)))
    return out


# ---------------------------------------------------------------- AST


@dataclass
class _Value:
    kind: str  # string | number | other
    text: str


@dataclass
class _Compare:
    field: str
    op: str
    value: _Value


@dataclass
class _Range:
    field: str
    negated: bool
    low: _Value
    high: _Value


@dataclass
class _Is:
    field: str
    is_null: bool


@dataclass
class _Bool:
    op: str  # AND | OR
    left: Node
    right: Node


@dataclass
class _Unsupported:
    what: str


Node = _Compare | _Range | _Is | _Bool | _Unsupported


class _Parser:
    def __init__(self, query: str) -> None:
        self.toks = _tokenize(query)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def is_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "keyword" and tok.text == word

    def fail(self, tok: _Tok) -> InvalidArgument:
        near = tok.text or "end of query"
        return InvalidArgument(f"malformed query: syntax error at position {tok.pos + 1} near '{near}'")

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise self.fail(self.peek())
        return node

    def expr(self) -> Node:
        node = self.and_expr()
        while self.is_kw("OR"):
            self.next()
            node = _Bool("OR", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.is_kw("AND"):
            self.next()
            node = _Bool("AND", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_kw("NOT"):
            self.next()
            self.unary()
            return _Unsupported("'not' expression")
        tok = self.peek()
        if tok.kind == "op" and tok.text == "(":
            self.next()
            node = self.expr()
            close = self.next()
            if close.kind != "op" or close.text != ")":
                raise self.fail(close)
            return node
        return self.predicate()

    def value(self) -> _Value:
        tok = self.next()
        if tok.kind in ("string", "number"):
            return _Value(tok.kind, tok.text)
        if tok.kind == "keyword" and tok.text in ("NULL", "TRUE", "FALSE"):
            return _Value("other", tok.text)
        if tok.kind == "ident":
            return _Value("other", tok.text)  # a column on the right: parses, never matches
        raise self.fail(tok)

    def predicate(self) -> Node:
        tok = self.next()
        if tok.kind not in ("ident", "string", "number"):
            raise self.fail(tok)
        field = tok.text if tok.kind == "ident" else ""
        if tok.kind == "ident" and self.peek().kind == "op" and self.peek().text == "(":
            self._skip_parens()
            return _Unsupported("function expression")
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text in _COMPARE:
            self.next()
            op = "!=" if nxt.text == "<>" else nxt.text
            return _Compare(field, op, self.value())
        negated = False
        if self.is_kw("NOT"):
            self.next()
            negated = True
        if self.is_kw("STARTS_WITH"):
            self.next()
            return _Compare(field, "not starts_with" if negated else "starts_with", self.value())
        if self.is_kw("BETWEEN"):
            self.next()
            low = self.value()
            if not self.is_kw("AND"):
                raise self.fail(self.peek())
            self.next()
            return _Range(field, negated, low, self.value())
        if self.is_kw("IN"):
            self.next()
            self._skip_parens()
            return _Unsupported("'in' operator")
        if self.is_kw("LIKE"):
            self.next()
            self.value()
            return _Unsupported("'like' operator")
        if not negated and self.is_kw("IS"):
            self.next()
            not_ = False
            if self.is_kw("NOT"):
                self.next()
                not_ = True
            word = self.next()
            if word.kind != "keyword" or word.text not in ("NULL", "TRUE", "FALSE"):
                raise self.fail(word)
            if word.text != "NULL":
                return _Unsupported(f"'is' operator {word.text.lower()!r}")
            return _Is(field, is_null=not not_)
        if field and nxt.kind in ("end", "keyword") or (nxt.kind == "op" and nxt.text == ")"):
            return _Unsupported("incomplete expression")
        raise self.fail(nxt)

    def _skip_parens(self) -> None:
        open_ = self.next()
        if open_.kind != "op" or open_.text != "(":
            raise self.fail(open_)
        depth = 1
        while depth:
            tok = self.next()
            if tok.kind == "end":
                raise self.fail(tok)
            if tok.kind == "op" and tok.text == "(":
                depth += 1
            elif tok.kind == "op" and tok.text == ")":
                depth -= 1


# ---------------------------------------------------------------- evaluation


def _to_time(value: _Value) -> datetime:
    """RFC3339 string or integer nanoseconds since the epoch."""
    if value.kind == "number" and "." not in value.text:
        nanos = int(value.text)
        return datetime.fromtimestamp(nanos // 1_000_000_000, UTC).replace(microsecond=(nanos % 1_000_000_000) // 1000)
    if value.kind != "string":
        raise _NoMatch
    text = value.text.strip()
    if "T" not in text:
        raise _NoMatch
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _NoMatch from None
    if parsed.tzinfo is None:
        raise _NoMatch
    return parsed.astimezone(UTC)


def _hb_time(hb: worker_pb.WorkerHeartbeat, field: str) -> datetime | None:
    if field == "StartTime":
        if not hb.HasField("start_time"):
            return None
        ts = hb.start_time
    else:
        if not hb.HasField("heartbeat_time"):
            return None
        ts = hb.heartbeat_time
    return datetime.fromtimestamp(ts.seconds, UTC).replace(microsecond=ts.nanos // 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _compare_time(got: datetime, want: datetime, op: str) -> bool:
    if op == "=":
        return got == want
    if op == "!=":
        return got != want
    if op == ">":
        return got > want
    if op == ">=":
        return got >= want
    if op == "<":
        return got < want
    if op == "<=":
        return got <= want
    raise _NoMatch


def _evaluate(node: Node, hb: worker_pb.WorkerHeartbeat) -> bool:
    if isinstance(node, _Bool):
        left = _evaluate(node.left, hb)
        if node.op == "AND":
            return left and _evaluate(node.right, hb)
        return left or _evaluate(node.right, hb)
    if isinstance(node, _Unsupported):
        raise _NoMatch
    if isinstance(node, _Is):
        if node.field in STRING_FIELDS:
            return (STRING_FIELDS[node.field](hb) == "") == node.is_null
        if node.field in TIME_FIELDS:
            return (_hb_time(hb, node.field) is None) == node.is_null
        raise _NoMatch
    if isinstance(node, _Range):
        if node.field not in TIME_FIELDS:
            raise _NoMatch
        low, high = _to_time(node.low), _to_time(node.high)
        got = _hb_time(hb, node.field)
        if got is None:
            return False
        inside = low <= got <= high
        return not inside if node.negated else inside
    # _Compare
    if node.field in STRING_FIELDS:
        if node.value.kind != "string" or node.value.text == "":
            raise _NoMatch
        want, have = node.value.text, STRING_FIELDS[node.field](hb)
        if node.op == "=":
            return have == want
        if node.op == "!=":
            return have != want
        if node.op == "starts_with":
            return have.startswith(want)
        if node.op == "not starts_with":
            return not have.startswith(want)
        raise _NoMatch
    if node.field in TIME_FIELDS:
        if node.op in ("starts_with", "not starts_with"):
            raise _NoMatch
        return _compare_time(_hb_time(hb, node.field) or _EPOCH, _to_time(node.value), node.op)
    raise _NoMatch


class WorkerQuery:
    """A parsed filter; ``matches`` never raises (a filter that cannot be evaluated does not match)."""

    def __init__(self, query: str) -> None:
        text = query.strip()
        self._node: Node | None = None
        if not text:
            return
        lowered = text.lower()
        if lowered.startswith("where ") or lowered.startswith("select "):
            raise InvalidArgument(f"invalid filter: {text}")
        self._node = _Parser(text).parse()

    def matches(self, hb: worker_pb.WorkerHeartbeat) -> bool:
        if self._node is None:
            return True
        try:
            return _evaluate(self._node, hb)
        except _NoMatch:
            return False
