"""How context values and condition values are read before comparison.

Flagsmith compares a numeric-looking trait string as a number, and casts the condition (always
a string on the wire) to the type of the context value. Getting either rule subtly wrong moves
identities in or out of segments, so both live here, separate from the operators.
"""

import re
from typing import Final

# ASCII digits only: a trait of Arabic-Indic digits stays a string in the reference.
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")

# The coerced context value types; every other value has become one of these or None.
Scalar = str | int | float | bool


def coerce_context_value(value: object) -> Scalar | None:
    """Return ``value`` as the engine compares it.

    Strings that are entirely an integer or a plain decimal become ``int`` or ``float``
    (``"12"`` → 12, ``" 5"`` and ``"1e5"`` stay strings); non-scalars become their ``str()``.

    >>> coerce_context_value("-12"), coerce_context_value("1.50"), coerce_context_value("1e5")
    (-12, 1.5, '1e5')
    """
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]
        try:
            if _INTEGER.fullmatch(text):
                return int(text)
            if _DECIMAL.fullmatch(text):
                return float(text)
        except ValueError:
            # Beyond Python's integer-string digit limit: keep comparing it as text.
            return text
        return text
    if kind is bool or kind is int or kind is float:
        return value  # type: ignore[return-value]
    return str(value)


class _CastFailed:
    """Marker for a condition value that cannot be read as the context value's type."""


CAST_FAILED: Final = _CastFailed()


def cast_condition_value(raw: object) -> dict[type, object]:
    """Pre-compute the condition value cast to each context type it may be compared with.

    A type missing from the answer means the cast failed, which makes the condition not match
    for context values of that type. Booleans are true unless the text is ``False``/``false``.
    """
    casts: dict[type, object] = {bool: raw not in ("False", "false")}
    for kind in (int, float, str):
        try:
            casts[kind] = kind(raw)  # type: ignore[call-overload, arg-type]
        except (TypeError, ValueError, OverflowError):
            continue
    return casts
