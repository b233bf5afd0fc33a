"""Literal values of the list-filter language: how a search attribute value is stored in its visibility column
(``slot_value``), how a query literal is checked and converted for its attribute's kind (``convert``), and
Temporal's messages for wrong types and operators. The grammar lives in visibility_query.py."""

from __future__ import annotations

import re
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

# Search attribute kinds -> Temporal's type names (for messages) and the operators each accepts.
TYPE_NAMES = {
    "keyword": "Keyword", "text": "Text", "keyword_list": "KeywordList", "int": "Int", "double": "Double",
    "bool": "Bool", "datetime": "Datetime", "status": "Keyword", "duration": "Int",
}  # fmt: skip
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


def go_repr(value: Any) -> tuple[str, str]:
    """A query literal as Go's ``%#v`` and ``%T`` show it (Temporal's wrong-type message)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int64"
    if isinstance(value, float):
        return repr(value), "float64"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"', "string"


def value_type_error(name: str, kind: str, value: Any) -> InvalidArgument:
    shown, go_type = go_repr(value)
    return InvalidArgument(
        f"invalid query: invalid expression: invalid value type for search attribute {name} of type "
        f"{TYPE_NAMES[kind]}: {shown} (type: {go_type})"
    )


def operator_error(name: str, kind: str, op: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid query: operation is not supported: operator '{op.upper()}' not supported for "
        f"{TYPE_NAMES[kind]} type search attribute '{name}'"
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


def parse_duration(text: str, name: str) -> int:
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


def mark(value: Any) -> str:
    # A fraction compared with an integer column: typed so PostgreSQL does not insist on an integer parameter.
    return "CAST(? AS DOUBLE PRECISION)" if isinstance(value, float) else "?"


def convert(name: str, kind: str, raw: Any) -> Any:
    is_bool = isinstance(raw, bool)
    if kind in ("keyword", "text", "keyword_list"):
        if not isinstance(raw, str):
            raise value_type_error(name, kind, raw)
        return raw
    if kind in ("int", "double"):
        if is_bool or not isinstance(raw, int | float):
            raise value_type_error(name, kind, raw)
        if kind == "double":
            return float(raw)
        return int(raw) if isinstance(raw, float) and raw.is_integer() else raw
    if kind == "bool":
        if not is_bool:
            raise value_type_error(name, kind, raw)
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
        raise value_type_error(name, kind, raw)
    if kind == "duration":
        if isinstance(raw, int) and not is_bool:
            return raw // 1000  # nanoseconds
        if isinstance(raw, str):
            return parse_duration(raw, name)
        raise InvalidArgument(f"invalid query: {name} needs a duration, got {raw!r}")
    raise AssertionError(kind)
