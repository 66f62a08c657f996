"""Wire encoding: nested params -> PHP form fields, checked against PHP's own decoding."""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge.emulator.phpform import decode_pairs
from moodle_bridge.moodle.encoding import (
    encode_params,
    encode_scalar,
    field_count,
    value_field_count,
)


def test_nested_users_with_custom_fields_in_order():
    params = {
        "users": [
            {
                "username": "199501282020011028",
                "firstname": "Yusuf",
                "customfields": [
                    {"type": "unit", "value": "Kanwil Jabar"},
                    {"type": "satker", "value": "MAN 1 Bandung"},
                ],
                "suspended": False,
            }
        ]
    }
    assert encode_params(params) == [
        ("users[0][username]", "199501282020011028"),
        ("users[0][firstname]", "Yusuf"),
        ("users[0][customfields][0][type]", "unit"),
        ("users[0][customfields][0][value]", "Kanwil Jabar"),
        ("users[0][customfields][1][type]", "satker"),
        ("users[0][customfields][1][value]", "MAN 1 Bandung"),
        ("users[0][suspended]", "0"),
    ]


def test_flat_scalars_and_lists():
    assert encode_params({"field": "username", "values": ["a", "b"], "courseid": 7}) == [
        ("field", "username"),
        ("values[0]", "a"),
        ("values[1]", "b"),
        ("courseid", "7"),
    ]


def test_none_is_left_out_and_list_indexes_stay_contiguous():
    params = {"a": None, "b": [None, "x", None, "y"], "c": {"d": None, "e": 1}}
    assert encode_params(params) == [("b[0]", "x"), ("b[1]", "y"), ("c[e]", "1")]


def test_empty_containers_produce_no_field():
    assert encode_params({"a": [], "b": {}, "c": [None]}) == []


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (True, "1"),
        (False, "0"),
        (0, "0"),
        (-12, "-12"),
        (10**20, "100000000000000000000"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (1e-7, "0.0000001"),
        (1e20, "100000000000000000000"),
        (-2.5e-5, "-0.000025"),
        (Decimal("12.50"), "12.50"),
        ("a&b=c[d]", "a&b=c[d]"),
        ("", ""),
    ],
)
def test_scalar_wire_strings(value: Any, wire: str):
    assert encode_scalar(value) == wire


def test_enum_values_are_sent_by_value():
    class Auth(enum.Enum):
        MANUAL = "manual"

    class Flag(enum.IntEnum):
        ON = 1

    assert encode_params({"auth": Auth.MANUAL, "flag": Flag.ON}) == [
        ("auth", "manual"),
        ("flag", "1"),
    ]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_without_exponent(value: float):
    wire = encode_scalar(value)
    assert "e" not in wire.lower()
    assert float(wire) == value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("NaN")])
def test_non_finite_numbers_are_refused(value: Any):
    with pytest.raises(ValueError, match="non-finite"):
        encode_params({"x": value})


@pytest.mark.parametrize("value", [b"bytes", object(), {1, 2}])
def test_unsupported_values_are_refused(value: Any):
    with pytest.raises(TypeError, match="cannot encode"):
        encode_params({"x": value})


@pytest.mark.parametrize(
    "params",
    [
        {"users[0]": "x"},
        {"users": [{"a]b": 1}]},
        {"users": {"[": 1}},
        {"": 1},
        {"a": {"": 1}},
        {"with.dot": 1},
        {"with space": 1},
    ],
)
def test_names_php_cannot_round_trip_are_refused(params: dict[str, Any]):
    with pytest.raises(ValueError, match="parameter name"):
        encode_params(params)


def test_dots_and_spaces_are_fine_below_the_top_level():
    assert encode_params({"a": {"b.c d": 1}}) == [("a[b.c d]", "1")]


def test_non_string_keys_are_refused():
    with pytest.raises(TypeError, match="parameter names"):
        encode_params({"a": {(1, 2): 1}})


# --- properties ---------------------------------------------------------------------------
_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_text = st.text(max_size=20) | st.sampled_from(["&", "=", "[", "]", "a[b]=c&d", "%20+", "é€😀"])
_scalars = st.none() | st.booleans() | st.integers() | _text
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=25,
)
_params = st.dictionaries(_keys, _values, max_size=5)


def _expected(value: Any) -> Any:
    """What PHP should hold for ``value``: lists as {"0": ...}; None and empties gone."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        value = {str(i): item for i, item in enumerate(x for x in value if x is not None)}
    kept = {key: _expected(item) for key, item in value.items()}
    kept = {key: item for key, item in kept.items() if item is not None}
    return kept or None


def _through_the_wire(params: dict[str, Any]) -> dict[str, Any]:
    body = urlencode(encode_params(params))
    return decode_pairs(parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body)))


@given(_params)
def test_php_decodes_what_was_encoded(params: dict[str, Any]):
    assert _through_the_wire(params) == (_expected(params) or {})


@given(_params)
def test_field_count_matches_encoding(params: dict[str, Any]):
    assert field_count(params) == len(encode_params(params))
    assert sum(value_field_count(v) for v in params.values()) == field_count(params)
