"""Search attributes at the Frontend: request values checked against the namespace's registered attributes
(the catalogue itself is server/common/search_attribute_catalogue.py), and start-dev's attribute specs."""

from __future__ import annotations

from temporalio.api.common.v1.message_pb2 import SearchAttributes

from server.common.search_attribute_catalogue import (
    CUSTOM_COLUMNS,
    IVT,
    SYSTEM_SEARCH_ATTRIBUTES,
    apply_types,
    column_type,
    custom_attributes,
    free_column,
    unknown_names,
    validate_search_attributes,
)
from services.frontend.namespace_registry import NamespaceEntry, NamespaceRegistry

__all__ = [
    "CUSTOM_COLUMNS", "SYSTEM_SEARCH_ATTRIBUTES", "apply_types", "check_search_attributes", "column_type",
    "custom_attributes", "free_column", "parse_search_attribute_specs", "validate_search_attributes",
]


async def check_search_attributes(
    registry: NamespaceRegistry, entry: NamespaceEntry, attributes: SearchAttributes
) -> None:
    """validate_search_attributes against the namespace's registered attributes, re-reading the namespace once
    when a name is not known yet (another frontend may have registered it within the cache's lifetime)."""
    if not attributes.indexed_fields:
        return
    aliases = dict(entry.description.config.custom_search_attribute_aliases)
    if unknown_names(attributes, aliases):
        registry.invalidate(entry)
        fresh = await registry.by_id(entry.id)
        aliases = dict(fresh.description.config.custom_search_attribute_aliases)
    validate_search_attributes(attributes, aliases)


def parse_search_attribute_specs(specs: list[str]) -> dict[str, IVT.ValueType]:
    """``["CustomerId=Keyword", ...]`` (start-dev ``--search-attribute``) -> name -> type; ValueError if bad."""
    by_name = {name.lower(): value for name, value in _TYPE_BY_NAME.items()}
    out: dict[str, IVT.ValueType] = {}
    for spec in specs:
        name, sep, type_name = spec.partition("=")
        value_type = by_name.get(type_name.strip().lower())
        if not sep or not name.strip() or value_type is None:
            raise ValueError(
                f"invalid search attribute {spec!r}: expected NAME=TYPE with TYPE one of {', '.join(_TYPE_BY_NAME)}"
            )
        out[name.strip()] = value_type
    return out


_TYPE_BY_NAME: dict[str, IVT.ValueType] = {
    "Keyword": IVT.INDEXED_VALUE_TYPE_KEYWORD, "Text": IVT.INDEXED_VALUE_TYPE_TEXT,
    "Int": IVT.INDEXED_VALUE_TYPE_INT, "Double": IVT.INDEXED_VALUE_TYPE_DOUBLE, "Bool": IVT.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IVT.INDEXED_VALUE_TYPE_DATETIME, "KeywordList": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}  # fmt: skip
