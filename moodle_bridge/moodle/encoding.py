"""Moodle's wire encoding: nested parameters flattened into PHP form fields.

Moodle's REST server reads parameters from ``$_POST``, which PHP builds from field names such
as ``users[0][customfields][1][value]``. :func:`encode_params` produces exactly those fields,
in order; :func:`field_count` says how many there will be, which is what PHP's
``max_input_vars`` limits.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["encode_params", "encode_scalar", "field_count", "value_field_count"]

# PHP turns these into "_" in the top-level name, so such a key would not arrive as sent.
_TOP_LEVEL_MANGLED = frozenset(" .")


def encode_scalar(value: Any) -> str:
    """Return the wire string of one scalar: bools as "1"/"0", numbers in decimal, text as is.

    Raises TypeError for values Moodle cannot receive (bytes, dates, arbitrary objects) and
    ValueError for NaN and infinities.
    """
    if isinstance(value, enum.Enum):
        return encode_scalar(value.value)
    # bool before int: bool is an int subclass and PHP expects "1"/"0", not "True".
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"cannot send a non-finite float ({value!r}) to Moodle"
            raise ValueError(msg)
        text = repr(value)
        if "e" in text or "E" in text:
            # repr's shortest digits, written out positionally: PARAM_FLOAT rejects exponents
            # on some Moodle versions, and the digits still round-trip to the same float.
            text = format(Decimal(text), "f")
        return text
    if isinstance(value, Decimal):
        if not value.is_finite():
            msg = f"cannot send a non-finite decimal ({value}) to Moodle"
            raise ValueError(msg)
        return format(value, "f")
    if isinstance(value, str):
        return value
    msg = f"cannot encode a {type(value).__name__} as a Moodle parameter"
    raise TypeError(msg)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _key(key: Any, *, top_level: bool) -> str:
    if isinstance(key, bool) or not isinstance(key, str | int):
        msg = f"parameter names must be strings, not {type(key).__name__}"
        raise TypeError(msg)
    name = str(key)
    if not name:
        msg = "empty parameter name (PHP would read it as an append)"
        raise ValueError(msg)
    if "[" in name or "]" in name:
        msg = f"parameter name {name!r} contains '[' or ']', which PHP cannot round-trip"
        raise ValueError(msg)
    if top_level and _TOP_LEVEL_MANGLED.intersection(name):
        msg = f"parameter name {name!r} contains '.' or ' ', which PHP rewrites to '_'"
        raise ValueError(msg)
    return name


#: Plain scalars, checked by exact type first: isinstance against the collection ABCs costs
#: more than everything else when 233,000 accounts are encoded.
_PLAIN = frozenset({str, int})


def _walk(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if type(value) in _PLAIN:
        yield prefix, str(value)
        return
    if value is None:
        return
    if type(value) is dict or isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(f"{prefix}[{_key(key, top_level=False)}]", item)
    elif _is_list(value):
        # Nones are removed before numbering, so the indexes PHP sees stay contiguous.
        present = [item for item in value if item is not None]
        for index, item in enumerate(present):
            yield from _walk(f"{prefix}[{index}]", item)
    else:
        yield prefix, encode_scalar(value)


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested parameters into ordered ``(name, value)`` form fields.

    Dicts become ``name[key]``, lists ``name[0]``, ``name[1]``... at any depth. ``None`` is left
    out (in a list too, and the remaining items are numbered without gaps); empty dicts and
    lists produce no field. Raises ValueError for a name PHP would not read back unchanged
    (one containing ``[`` or ``]``, an empty one, or a top-level one with ``.`` or a space),
    and TypeError for a value that is not a scalar, list or dict.
    """
    fields: list[tuple[str, str]] = []
    for key, value in params.items():
        fields.extend(_walk(_key(key, top_level=True), value))
    return fields


def _count(value: Any) -> int:
    if type(value) in _PLAIN:
        return 1
    if value is None:
        return 0
    if type(value) is dict or isinstance(value, Mapping):
        return sum(_count(item) for item in value.values())
    if _is_list(value):
        return sum(_count(item) for item in value)
    return 1


def field_count(params: Mapping[str, Any]) -> int:
    """Return how many form fields :func:`encode_params` would produce, without encoding."""
    return sum(_count(value) for value in params.values())


def value_field_count(value: Any) -> int:
    """Return how many form fields one parameter value (scalar, list or dict) produces."""
    return _count(value)
