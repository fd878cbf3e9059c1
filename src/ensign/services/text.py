"""The one rule for text that may be stored: no NUL characters and no unpaired surrogates.

PostgreSQL refuses NUL in text and JSON columns, and an unpaired surrogate cannot be encoded as
UTF-8 at all; SQLite would store either and hand back rows no other reader could use. So such
text is refused where it enters, on every surface and both databases, with a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from ensign.errors import InvalidInput


def is_storable(value: str) -> bool:
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: str, field: str) -> str:
    """`value`, or InvalidInput naming `field` when it cannot be stored."""
    if not is_storable(value):
        raise InvalidInput(
            f"{field}: must not contain NUL characters or unpaired surrogates.", field=field
        )
    return value


def check_json_text(value: Any, field: str = "") -> None:
    """Check every string (keys too) of a parsed JSON document; the field named is the path
    to the first bad one, such as `conditions.0.value`."""
    if isinstance(value, str):
        check_text(value, field or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{field}.{key}" if field else str(key)
            if isinstance(key, str):
                check_text(key, path)
            check_json_text(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_text(item, f"{field}.{index}" if field else str(index))


def storable_copy(value: str) -> str:
    """`value` with what cannot be stored replaced, for logs of refused calls, which record
    what was sent rather than refuse it a second time."""
    if is_storable(value):
        return value
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
