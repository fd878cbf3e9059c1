"""Typing of flag values and trait values, as the reference stores them (contract §3.3)."""

from __future__ import annotations

from typing import Any

from ensign.errors import InvalidInput
from ensign.services.text import check_text

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

FlagValue = str | int | bool | None
TraitValue = str | int | float | bool


def flag_value_from_json(value: Any, *, field: str, max_bytes: int) -> FlagValue:
    """A flag value as sent in JSON: string, 32-bit integer, boolean or null.

    Floats are kept as their text, as the reference does, so `12.34` is served as `"12.34"`.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT32_MIN <= value <= INT32_MAX:
            raise InvalidInput(
                f"{field}: integers must fit in a signed 32-bit integer; send larger numbers "
                "as a string.",
                field=field,
            )
        return value
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        raise InvalidInput(
            f"{field}: must be a string, an integer, a boolean or null.", field=field
        )
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidInput(f"{field}: longer than {max_bytes} bytes.", field=field)
    return value


def flag_value_from_text(text: str | None) -> FlagValue:
    """Type a value typed as text (a feature's initial value): integers and booleans are found."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped in ("true", "True"):
        return True
    if stripped in ("false", "False"):
        return False
    try:
        number = int(stripped)
    except ValueError:
        return text
    if INT32_MIN < number < 2**31 and stripped.lstrip("-").isdigit():
        return number
    return text


def encode_flag_value(value: FlagValue) -> tuple[str | None, str | None]:
    """(value_type, value_text) columns for a typed flag value."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, int):
        return "int", str(value)
    return "unicode", value


def decode_flag_value(value_type: str | None, text: str | None) -> FlagValue:
    if value_type is None or text is None:
        return None
    if value_type == "bool":
        return text == "true"
    if value_type == "int":
        return int(text)
    return text


def trait_value_from_json(value: Any, *, max_length: int) -> TraitValue:
    """A trait value as the reference keeps it: numbers, booleans and strings as they are,
    anything else as Python's `str()` of it (so a list becomes `"['a']"`)."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    ):
        raise InvalidInput("trait_value: integers must fit in 64 bits.", field="trait_value")
    if isinstance(value, bool | int | float):
        return value
    text = check_text(value if isinstance(value, str) else str(value), "trait_value")
    if len(text) > max_length:
        raise InvalidInput(
            f"trait_value: strings may be at most {max_length} characters.", field="trait_value"
        )
    return text


def encode_trait_value(value: TraitValue) -> tuple[str, str]:
    if isinstance(value, bool):
        return "bool", "true" if value else "false"
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, float):
        return "float", repr(value)
    return "str", value


def decode_trait_value(value_type: str, text: str) -> TraitValue:
    """The stored value, typed. Never fails: a row written before a check existed (an integer
    beyond 64 bits, text that does not parse) is served as its text, so the identity stays usable."""
    if value_type == "bool":
        return text == "true"
    if value_type == "int":
        try:
            number = int(text)
        except ValueError:
            return text
        return number if INT64_MIN <= number <= INT64_MAX else text
    if value_type == "float":
        try:
            return float(text)
        except ValueError:
            return text
    return text


def incremented(value_type: str, text: str, increment_by: int) -> int:
    """A stored integer trait plus `increment_by`, refused unless both are signed 64-bit."""
    current = decode_trait_value(value_type, text)
    if value_type != "int" or isinstance(current, bool) or not isinstance(current, int):
        raise InvalidInput("Trait is not an integer.")
    result = current + increment_by
    if not INT64_MIN <= result <= INT64_MAX:
        raise InvalidInput(
            "increment_by: the result must fit in a signed 64-bit integer.", field="increment_by"
        )
    return result
