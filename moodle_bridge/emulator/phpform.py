"""Decode form fields into nested arrays the way PHP fills ``$_POST``."""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = re.compile(r"\[([^\]]*)\]")


def _split_name(name: str) -> list[str] | None:
    """Split ``users[0][email]`` into ``["users", "0", "email"]``; None when PHP would drop it."""
    head, bracket, rest = name.partition("[")
    if not head:
        return None
    if not bracket:
        return [head]
    rest = "[" + rest
    parts = [head]
    pos = 0
    for match in _SEGMENT.finditer(rest):
        if match.start() != pos:
            break
        parts.append(match.group(1))
        pos = match.end()
    return parts


def _next_index(container: dict[str, Any]) -> str:
    ints = [int(k) for k in container if k.lstrip("-").isdigit()]
    return str(max(ints) + 1 if ints else 0)


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Return the nested structure PHP builds from ordered form fields.

    Arrays are dicts with string keys in insertion order (PHP arrays are ordered maps);
    ``name[]`` appends; a later scalar replaces an earlier one, as in PHP.
    """
    result: dict[str, Any] = {}
    for name, value in pairs:
        parts = _split_name(name)
        if parts is None:
            continue
        node = result
        for i, part in enumerate(parts):
            key = _next_index(node) if part == "" and i > 0 else part
            if i == len(parts) - 1:
                node[key] = value
                break
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
    return result
