"""Search attribute value rules (Temporal's sadefs.DecodeValue / Validator) and canonical encodings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from temporalio.api.common.v1 import message_pb2 as common

from server.common.errors import InvalidArgument
from server.common.search_attribute_values import (
    IVT,
    canonical_payload,
    decode_value,
    format_datetime,
    slot_values,
)
from services.frontend.search_attributes import parse_search_attribute_specs, validate_search_attributes

ALIASES = {"Keyword01": "Kw", "Int01": "N", "Double01": "D", "Bool01": "B", "Datetime01": "T", "Text01": "Tx",
           "KeywordList01": "L"}  # fmt: skip


def p(value: object, **meta: bytes) -> common.Payload:
    return common.Payload(metadata={"encoding": b"json/plain", **meta}, data=json.dumps(value).encode())


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("x", IVT.INDEXED_VALUE_TYPE_KEYWORD, "x"),
        (["x"], IVT.INDEXED_VALUE_TYPE_KEYWORD, "x"),  # a one-element list is accepted for a scalar
        ([], IVT.INDEXED_VALUE_TYPE_KEYWORD, None),  # empty list: no value
        (None, IVT.INDEXED_VALUE_TYPE_INT, None),
        (5, IVT.INDEXED_VALUE_TYPE_INT, 5),
        (5, IVT.INDEXED_VALUE_TYPE_DOUBLE, 5.0),
        (True, IVT.INDEXED_VALUE_TYPE_BOOL, True),
        ("2001-02-03T04:05:06+01:00", IVT.INDEXED_VALUE_TYPE_DATETIME,
         datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))),
        ("2001-02-03T04:05:06.123456789Z", IVT.INDEXED_VALUE_TYPE_DATETIME,
         datetime(2001, 2, 3, 4, 5, 6, 123456, tzinfo=UTC)),
        (["a", "b"], IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST, ["a", "b"]),
    ],
)  # fmt: skip
def test_decode(value: object, value_type: int, expected: object) -> None:
    assert decode_value(p(value), value_type) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("N", "abc", "invalid value for search attribute N of type Int: abc"),
        ("N", 1.5, "invalid value for search attribute N of type Int: 1.5"),
        ("N", True, "invalid value for search attribute N of type Int: true"),
        ("D", "1.5", "invalid value for search attribute D of type Double: 1.5"),
        ("B", 1, "invalid value for search attribute B of type Bool: 1"),
        (
            "T",
            "2001-02-03 04:05:06",
            "invalid value for search attribute T of type Datetime: 2001-02-03 04:05:06",
        ),
        ("Kw", ["a", "b"], "invalid value for search attribute Kw of type Keyword: [a b]"),
        ("Kw", {"a": 1}, "invalid value for search attribute Kw of type Keyword: map[a:1]"),
        ("L", "a", "invalid value for search attribute L of type KeywordList: a"),
        ("L", [1], "invalid value for search attribute L of type KeywordList: [1]"),
        ("Nope", "x", "search attribute Nope is not defined"),
        ("RunId", "x", "RunId attribute can't be set in SearchAttributes"),
        (
            "TemporalWorkerDeployment",
            "x",
            "TemporalWorkerDeployment attribute can't be set in SearchAttributes",
        ),
    ],
)
def test_validation_messages(name: str, value: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_search_attributes(common.SearchAttributes(indexed_fields={name: p(value)}), ALIASES)
    assert err.value.message == message


def test_validation_types_payloads_and_allows_predefined() -> None:
    sas = common.SearchAttributes(
        indexed_fields={
            "Kw": p("x"),
            "TemporalChangeVersion": p(["a-1"]),
            "N": p(None),
            "T": p("2001-02-03T04:05:06Z"),
        }
    )
    validate_search_attributes(sas, ALIASES)
    assert {k: v.metadata["type"] for k, v in sas.indexed_fields.items()} == {
        "Kw": b"Keyword", "TemporalChangeVersion": b"KeywordList", "N": b"Int", "T": b"Datetime",
    }  # fmt: skip


def test_canonical_datetime_and_slots() -> None:
    assert format_datetime(datetime(2001, 2, 3, 5, 5, 6, 500000, tzinfo=timezone(timedelta(hours=1)))) == (
        "2001-02-03T04:05:06.5Z"
    )
    out = canonical_payload(p("2001-02-03T04:05:06+00:00"), IVT.INDEXED_VALUE_TYPE_DATETIME)
    assert json.loads(out.data) == "2001-02-03T04:05:06Z" and out.metadata["type"] == b"Datetime"
    sas = common.SearchAttributes(indexed_fields={"Kw": p("x"), "L": p(["a"]), "N": p([7]), "Other": p(1)})
    assert slot_values(sas, ALIASES) == {"keyword01": "x", "keyword_list01": ["a"], "int01": 7}


def test_start_dev_specs() -> None:
    assert parse_search_attribute_specs(["A=keyword", "B=KeywordList"]) == {
        "A": IVT.INDEXED_VALUE_TYPE_KEYWORD, "B": IVT.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    }  # fmt: skip
    with pytest.raises(ValueError, match="NAME=TYPE"):
        parse_search_attribute_specs(["A=Number"])


def test_size_limits() -> None:
    """Temporal's defaults: 100 attributes, 2 KiB per value, 40 KiB in all (checked after the types)."""
    many = common.SearchAttributes(indexed_fields={f"A{i}": p("x") for i in range(101)})
    with pytest.raises(InvalidArgument) as err:
        validate_search_attributes(many, {f"Keyword{i:02d}": f"A{i}" for i in range(101)})
    assert err.value.message == "number of search attributes 101 exceeds limit 100"

    big = "x" * 2047  # 2,049 bytes of JSON with the quotes
    with pytest.raises(InvalidArgument) as err:
        validate_search_attributes(common.SearchAttributes(indexed_fields={"Kw": p(big)}), ALIASES)
    assert err.value.message == "search attribute Kw value size 2049 exceeds size limit 2048"
    validate_search_attributes(common.SearchAttributes(indexed_fields={"Kw": p("x" * 2046)}), ALIASES)

    # Under the per-value limit one by one, over the total together.
    aliases = {f"Keyword{i:02d}": f"K{i}" for i in range(1, 11)} | {f"Text{i:02d}": f"T{i}" for i in range(1, 4)}
    aliases |= {f"KeywordList{i:02d}": f"L{i}" for i in range(1, 4)}
    fields = {name: p("y" * 2000) for name in aliases.values() if not name.startswith("L")}
    fields |= {name: p(["z" * 1990]) for name in aliases.values() if name.startswith("L")}
    fields |= {"TemporalChangeVersion": p(["v" * 2000]), "BinaryChecksums": p(["c" * 2000]),
               "BuildIds": p(["b" * 2000]), "BatcherUser": p("u" * 2000), "TemporalScheduledById": p("s" * 2000),
               "TemporalNamespaceDivision": p("d" * 2000)}  # fmt: skip
    with pytest.raises(InvalidArgument) as err:
        validate_search_attributes(common.SearchAttributes(indexed_fields=fields), aliases)
    assert err.value.message.startswith("total size of search attributes ")
    assert err.value.message.endswith(" exceeds size limit 40960")
