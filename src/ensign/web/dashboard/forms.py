"""Parsing the dashboard's form fields into typed values, with a message per bad field."""

from __future__ import annotations

import json
from typing import Any

from ensign.services.values import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    FlagValue,
    TraitValue,
)
from ensign.web.dashboard.core import FormErrors
from ensign.web.limits import nests_too_deeply

VALUE_TYPES = ("string", "integer", "boolean", "none")


def value_type_of(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "string"


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pretty_json(value: Any) -> str | None:
    """A string value that holds a JSON object or array, indented; otherwise None."""
    if not isinstance(value, str) or not value.strip().startswith(("{", "[")):
        return None
    if nests_too_deeply(value):  # shown as stored
        return None
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return None


def parse_flag_value(
    errors: FormErrors, kind: str, text: str, *, field: str = "value", max_bytes: int = 20_000
) -> FlagValue:
    if kind not in VALUE_TYPES:
        errors.set(f"{field}_type", "Choose string, integer, boolean or none.")
        return None
    if kind == "none":
        return None
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            errors.set(field, "A boolean value is true or false.")
            return None
        return lowered == "true"
    if kind == "integer":
        try:
            number = int(text.strip())
        except ValueError:
            errors.set(field, "Enter a whole number, such as 42.")
            return None
        if not INT32_MIN <= number <= INT32_MAX:
            errors.set(field, "Integers must fit in 32 bits; use a string for larger numbers.")
            return None
        return number
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        errors.set(field, f"At most {max_bytes} bytes.")
    return text


def parse_weight(errors: FormErrors, text: str, field: str) -> float:
    try:
        weight = float(text.strip() or "0")
    except ValueError:
        errors.set(field, "Enter a percentage from 0 to 100.")
        return 0.0
    if not 0 <= weight <= 100:
        errors.set(field, "Enter a percentage from 0 to 100.")
        return 0.0
    return weight


# A trait's stored types (`services.values.encode_trait_value`), as the trait form names them.
TRAIT_TYPES = {"str": "string", "int": "integer", "float": "float", "bool": "boolean"}


def parse_trait_value(
    errors: FormErrors, text: str, field: str = "trait_value", kind: str = ""
) -> TraitValue:
    """A trait typed in a text box. With a type chosen the value keeps it (so a string "42"
    stays a string and saving a boolean unchanged keeps it a boolean); without one, numbers
    and booleans are recognised, as JSON would."""
    if kind and kind not in TRAIT_TYPES:
        errors.set(field, "Choose string, integer, float or boolean.")
        return text
    stripped = text.strip()
    if kind == "str":
        return text
    if kind == "bool":
        lowered = stripped.lower()
        if lowered not in ("true", "false"):
            errors.set(field, "A boolean trait is true or false.")
        return lowered == "true"
    if kind == "int":
        try:
            whole = int(stripped)
        except ValueError:
            errors.set(field, "Enter a whole number, such as 42.")
            return text
        if not INT64_MIN <= whole <= INT64_MAX:
            errors.set(field, "Integers must fit in 64 bits; use a string for larger numbers.")
        return whole
    if not kind:
        if stripped in ("true", "false"):
            return stripped == "true"
        try:
            return int(stripped)
        except ValueError:
            pass
    try:
        number = float(stripped)
    except ValueError:
        if kind == "float":
            errors.set(field, "Enter a number, such as 2.5.")
        return text
    if number != number or number in (float("inf"), float("-inf")):
        errors.set(field, "Not a usable number.")
    return number


def parse_traits(errors: FormErrors, text: str, field: str = "traits") -> dict[str, TraitValue]:
    """Traits typed one per line as `key=value`, or as a JSON object."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            data = None if nests_too_deeply(stripped) else json.loads(stripped)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            errors.set(field, "Not valid JSON: write key=value lines or a JSON object.")
            return {}
        traits: dict[str, TraitValue] = {}
        for key, value in data.items():
            if isinstance(value, bool | int | float | str):
                traits[str(key)] = value
            else:
                traits[str(key)] = json.dumps(value)
        return traits
    traits = {}
    for number, line in enumerate(stripped.splitlines(), start=1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            errors.set(field, f"Line {number}: write key=value.")
            return {}
        traits[key.strip()] = parse_trait_value(errors, value.strip(), field)
    return traits
