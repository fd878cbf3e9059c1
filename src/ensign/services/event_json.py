"""Decoding an events batch so that one odd event never costs the SDK the whole batch.

orjson reads nearly every body. It refuses some valid JSON (numbers too large for a double,
nesting past its limit) and silently turns integers past 64 bits into floats; such a body is
read again here with Python's decoder, each odd value replaced by a marker that the event's
check refuses with a reason, so that the rest of the batch is still accepted. Nesting past
`MAX_DEPTH` is cut out before that decoder (which recurses) sees it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# Deeper than any event the SDKs send (metadata a few levels at most).
MAX_DEPTH = 32
# A NUL cannot be in an accepted string, so no event's own text looks like these.
TOO_DEEP = "\x00ensign:too-deep"
TOO_BIG = "\x00ensign:integer-past-64-bits"
NOT_FINITE = "\x00ensign:not-finite"
MARKERS = {
    TOO_DEEP: f"nested more than {MAX_DEPTH} levels deep",
    TOO_BIG: "an integer past 64 bits",
    NOT_FINITE: "a number that is not finite",
}

# orjson makes a float of an integer this long (past 64 bits): such bodies are read again.
_LONG_INTEGER = re.compile(rb"\d{20,}")
_STRUCTURE = re.compile(rb'["\[\]{}]')
_STRING_END = re.compile(rb'(?:[^"\\]|\\.)*"', re.DOTALL)


class NotJson(ValueError):
    """The body is not JSON at all."""


def decode(raw: bytes) -> Any:
    """The body as Python values, odd values replaced by markers; NotJson if it is not JSON."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    else:
        if not _LONG_INTEGER.search(raw):
            return value
    try:
        return json.loads(
            _cut_deep(raw),
            parse_int=_integer,
            parse_float=_float,
            parse_constant=lambda _name: NOT_FINITE,
        )
    except (ValueError, RecursionError) as error:
        raise NotJson(str(error)) from None


def _integer(text: str) -> Any:
    if len(text.lstrip("-")) > 20:
        return TOO_BIG
    number = int(text)
    return number if -(2**63) <= number < 2**64 else TOO_BIG


def _float(text: str) -> Any:
    number = float(text)
    return number if math.isfinite(number) else NOT_FINITE


def _cut_deep(raw: bytes) -> bytes:
    """`raw` with every array or object nested deeper than MAX_DEPTH replaced by TOO_DEEP."""
    out: list[bytes] = []
    depth = 0
    cut_from: int | None = None
    kept_to = 0
    position = 0
    while True:
        match = _STRUCTURE.search(raw, position)
        if match is None:
            break
        char = match.group()
        position = match.end()
        if char == b'"':
            end = _STRING_END.match(raw, position)
            if end is None:
                break  # unterminated: the decoder says so
            position = end.end()
            continue
        if char in (b"[", b"{"):
            depth += 1
            if depth == MAX_DEPTH + 1 and cut_from is None:
                cut_from = match.start()
        else:
            depth -= 1
            if depth == MAX_DEPTH and cut_from is not None:
                out.append(raw[kept_to:cut_from])
                out.append(json.dumps(TOO_DEEP).encode())
                kept_to = position
                cut_from = None
    if not out:
        return raw
    out.append(raw[kept_to:])
    return b"".join(out)


def marker_in(value: Any, depth: int = 0) -> str | None:
    """The reason for the first marker inside `value` (or nesting past MAX_DEPTH), if any."""
    if isinstance(value, str):
        return MARKERS.get(value)
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        return MARKERS[TOO_DEEP]
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        found = marker_in(item, depth + 1)
        if found is not None:
            return found
    return None
