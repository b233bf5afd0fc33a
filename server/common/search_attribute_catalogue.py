"""Search attribute catalogue, shared by Frontend and History: the system attributes, custom attributes as
SQL-visibility slots, and Temporal's checks on values.

Custom attributes are kept the way the real server keeps them for SQL visibility: in the namespace's
``config.custom_search_attribute_aliases`` as column -> alias (``"Keyword01" -> "CustomerId"``); the column name's
prefix is the type and the number of columns per type is fixed.
"""

from __future__ import annotations

import re

from temporalio.api.common.v1.message_pb2 import SearchAttributes
from temporalio.api.enums.v1 import common_pb2 as common_enums

from server.common.search_attribute_values import apply_type_map, custom_types, validate

IVT = common_enums.IndexedValueType

SYSTEM_SEARCH_ATTRIBUTES: dict[str, IVT.ValueType] = {
    "WorkflowId": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "RunId": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "WorkflowType": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "StartTime": IVT.INDEXED_VALUE_TYPE_DATETIME,
    "ExecutionTime": IVT.INDEXED_VALUE_TYPE_DATETIME,
    "CloseTime": IVT.INDEXED_VALUE_TYPE_DATETIME,
    "ExecutionDuration": IVT.INDEXED_VALUE_TYPE_INT,
    "ExecutionStatus": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TaskQueue": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "HistoryLength": IVT.INDEXED_VALUE_TYPE_INT,
    "HistorySizeBytes": IVT.INDEXED_VALUE_TYPE_INT,
    "StateTransitionCount": IVT.INDEXED_VALUE_TYPE_INT,
    "ParentWorkflowId": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "ParentRunId": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "RootWorkflowId": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "RootRunId": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalChangeVersion": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "BinaryChecksums": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "BuildIds": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "BatcherNamespace": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "BatcherUser": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalScheduledStartTime": IVT.INDEXED_VALUE_TYPE_DATETIME,
    "TemporalScheduledById": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalSchedulePaused": IVT.INDEXED_VALUE_TYPE_BOOL,
    "TemporalNamespaceDivision": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalPauseInfo": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalReportedProblems": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "TemporalWorkerDeployment": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalWorkerDeploymentVersion": IVT.INDEXED_VALUE_TYPE_KEYWORD,
    "TemporalWorkflowVersioningBehavior": IVT.INDEXED_VALUE_TYPE_KEYWORD,
}

# Column prefix -> (type, number of columns), as in the real server's SQL visibility schema.
CUSTOM_COLUMNS: dict[str, tuple[IVT.ValueType, int]] = {
    "Bool": (IVT.INDEXED_VALUE_TYPE_BOOL, 3),
    "Datetime": (IVT.INDEXED_VALUE_TYPE_DATETIME, 3),
    "Double": (IVT.INDEXED_VALUE_TYPE_DOUBLE, 3),
    "Int": (IVT.INDEXED_VALUE_TYPE_INT, 3),
    "Keyword": (IVT.INDEXED_VALUE_TYPE_KEYWORD, 10),
    "KeywordList": (IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST, 3),
    "Text": (IVT.INDEXED_VALUE_TYPE_TEXT, 3),
}
_COLUMN = re.compile(r"^([A-Za-z]+?)(\d\d)$")


def column_type(column: str) -> IVT.ValueType:
    """Type of a custom column name (``Keyword01`` -> KEYWORD); UNSPECIFIED if it is not one of ours."""
    match = _COLUMN.match(column)
    if match is None or match.group(1) not in CUSTOM_COLUMNS:
        return IVT.INDEXED_VALUE_TYPE_UNSPECIFIED
    return CUSTOM_COLUMNS[match.group(1)][0]


def custom_attributes(aliases: dict[str, str]) -> dict[str, IVT.ValueType]:
    """Alias name -> type for a namespace's ``custom_search_attribute_aliases`` (column -> alias)."""
    return {alias: column_type(column) for column, alias in aliases.items()}


def free_column(aliases: dict[str, str], value_type: IVT.ValueType) -> str | None:
    for prefix, (typ, count) in CUSTOM_COLUMNS.items():
        if typ != value_type:
            continue
        for i in range(1, count + 1):
            column = f"{prefix}{i:02d}"
            if column not in aliases:
                return column
    return None


# Temporal's "system" attributes (set by the server only; a user value is refused). The rest of
# SYSTEM_SEARCH_ATTRIBUTES is "predefined": a whitelisted few may be set by users (TemporalChangeVersion...).
TEMPORAL_SYSTEM_ATTRIBUTES = frozenset(
    (
        "WorkflowId", "RunId", "WorkflowType", "StartTime", "ExecutionTime", "CloseTime", "ExecutionStatus",
        "TaskQueue", "HistoryLength", "ExecutionDuration", "StateTransitionCount", "HistorySizeBytes",
        "ParentWorkflowId", "ParentRunId", "RootWorkflowId", "RootRunId",
    )
)  # fmt: skip
_SYSTEM_TYPES: dict[str, int] = {k: v for k, v in SYSTEM_SEARCH_ATTRIBUTES.items() if k in TEMPORAL_SYSTEM_ATTRIBUTES}
_PREDEFINED_TYPES: dict[str, int] = {
    k: v for k, v in SYSTEM_SEARCH_ATTRIBUTES.items() if k not in TEMPORAL_SYSTEM_ATTRIBUTES
}


def unknown_names(attributes: SearchAttributes, aliases: dict[str, str]) -> bool:
    """Whether some attribute is neither a system one nor in ``aliases`` (slot -> alias): worth a fresh look at
    the namespace, which may have registered it a moment ago."""
    known = set(aliases.values())
    return any(n not in known and n not in SYSTEM_SEARCH_ATTRIBUTES for n in attributes.indexed_fields)


def validate_search_attributes(attributes: SearchAttributes, aliases: dict[str, str]) -> None:
    """Temporal's checks on user-supplied search attributes (InvalidArgument with its message); also sets each
    payload's ``type`` metadata, so describe, list and the workflow's own info return typed payloads."""
    validate(attributes, custom_types(aliases), _PREDEFINED_TYPES, _SYSTEM_TYPES)


def apply_types(attributes: SearchAttributes, aliases: dict[str, str]) -> None:
    """Set missing ``type`` metadata from the catalogue (Temporal's ApplyTypeMap, done on reads)."""
    types: dict[str, int] = dict(SYSTEM_SEARCH_ATTRIBUTES)
    types.update(custom_types(aliases))
    apply_type_map(attributes, types)
