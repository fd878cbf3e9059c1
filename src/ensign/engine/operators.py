"""One small function per Flagsmith condition operator, plus the name → function table.

Each function takes the condition's raw ``value`` once, at compile time, does all the parsing
it can (casts, regexes, ``IN`` sets, ``MODULO`` operands, semantic versions) and returns a
matcher of one coerced, non-null context value. Malformed condition values yield a matcher
that never matches; nothing here raises on data.
"""

import json
import operator
from collections.abc import Callable
from typing import Any

import semver

from ensign.engine.coercion import CAST_FAILED, Scalar, cast_condition_value
from ensign.engine.patterns import bounded_match, compile_pattern

ValueMatcher = Callable[[Scalar], bool]
OperatorFactory = Callable[[object], ValueMatcher]

_SEMVER_SUFFIX = ":semver"


def _never(_value: Scalar) -> bool:
    return False


def _parse_semver(text: str) -> semver.Version | None:
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def _typed(compare: Callable[[Any, Any], bool]) -> OperatorFactory:
    """Build a factory for an operator comparing the context value with the typed condition.

    With a ``:semver`` suffix and a string context value, both sides are compared as strict
    SemVer 2.0 versions instead.
    """

    def factory(raw: object) -> ValueMatcher:
        casts = cast_condition_value(raw)
        is_semver = isinstance(raw, str) and raw.endswith(_SEMVER_SUFFIX)
        wanted = _parse_semver(raw[: -len(_SEMVER_SUFFIX)]) if is_semver else None  # type: ignore[index]

        def match(value: Scalar) -> bool:
            if is_semver and type(value) is str:
                if wanted is None:
                    return False
                actual = _parse_semver(value)
                return actual is not None and compare(actual, wanted)
            cast = casts.get(type(value), CAST_FAILED)
            return cast is not CAST_FAILED and compare(value, cast)

        return match

    return factory


equal = _typed(operator.eq)
not_equal = _typed(operator.ne)
greater_than = _typed(operator.gt)
greater_than_inclusive = _typed(operator.ge)
less_than = _typed(operator.lt)
less_than_inclusive = _typed(operator.le)


def contains(raw: object) -> ValueMatcher:
    """The condition is a substring of a string context value.

    With a ``:semver`` suffix the reference compares versions, for which containment is never
    true, so such a condition never matches a string.
    """
    if not isinstance(raw, str) or raw.endswith(_SEMVER_SUFFIX):
        return _never
    needle = raw
    return lambda value: type(value) is str and needle in value


def not_contains(raw: object) -> ValueMatcher:
    """The context value is a string that does not contain the condition."""
    if not isinstance(raw, str):
        return _never
    needle = raw
    return lambda value: type(value) is str and needle not in value


def regex(raw: object) -> ValueMatcher:
    """``re.match`` (anchored at the start only) against ``str()`` of the context value.

    Matching has a time budget (see :mod:`ensign.engine.patterns`): over it, no match.
    """
    if not isinstance(raw, str):
        return _never
    pattern = compile_pattern(raw)
    if pattern is None:
        return _never
    return lambda value: bounded_match(pattern, str(value))


def modulo(raw: object) -> ValueMatcher:
    """``"divisor|remainder"``: a numeric context value leaves that remainder."""
    if not isinstance(raw, str):
        return _never
    parts = raw.split("|")
    if len(parts) != 2:
        return _never
    try:
        divisor, remainder = float(parts[0]), float(parts[1])
    except ValueError:
        return _never
    if divisor == 0:
        return _never

    def match(value: Scalar) -> bool:
        if type(value) is str:
            return False
        try:
            return bool(value % divisor == remainder)
        except ArithmeticError:  # an integer too large to become a float
            return False

    return match


def _in_members(raw: object) -> frozenset[str] | None:
    if isinstance(raw, list):
        # Identity overrides carry a real list; members compare as their str().
        return frozenset(str(item) for item in raw)
    if not isinstance(raw, str):
        return None
    if raw.startswith("["):
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, list):
            return frozenset(str(item) for item in parsed)
    # Split with no trimming: "a, b" holds " b", not "b".
    return frozenset(raw.split(","))


def in_(raw: object) -> ValueMatcher:
    """Membership in a comma list or JSON array; ints compare as text, bools and floats never."""
    members = _in_members(raw)
    if members is None:
        return _never

    def match(value: Scalar) -> bool:
        kind = type(value)
        if kind is str:
            return value in members
        if kind is int:
            return str(value) in members
        return False

    return match


def percentage_split(raw: object) -> ValueMatcher:
    """Match a bucket percentage (computed by the caller) at or below the condition value."""
    try:
        threshold = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _never
    return lambda pct: pct <= threshold  # type: ignore[operator]


# Every condition operator, in the order editors offer them: the admin API's schema and
# validation and the dashboard's rule editor all read this tuple.
OPERATOR_NAMES: tuple[str, ...] = (
    "EQUAL",
    "NOT_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_INCLUSIVE",
    "LESS_THAN",
    "LESS_THAN_INCLUSIVE",
    "CONTAINS",
    "NOT_CONTAINS",
    "REGEX",
    "MODULO",
    "IN",
    "IS_SET",
    "IS_NOT_SET",
    "PERCENTAGE_SPLIT",
)

# These look only at whether the property is set: they take no value, and rules handle them.
VALUELESS_OPERATORS = frozenset({"IS_SET", "IS_NOT_SET"})

# The operators that compare a value, each with the factory of its matcher.
OPERATORS: dict[str, OperatorFactory] = {
    "EQUAL": equal,
    "NOT_EQUAL": not_equal,
    "GREATER_THAN": greater_than,
    "GREATER_THAN_INCLUSIVE": greater_than_inclusive,
    "LESS_THAN": less_than,
    "LESS_THAN_INCLUSIVE": less_than_inclusive,
    "CONTAINS": contains,
    "NOT_CONTAINS": not_contains,
    "REGEX": regex,
    "MODULO": modulo,
    "IN": in_,
    "PERCENTAGE_SPLIT": percentage_split,
}


def compile_operator(name: object, raw: object) -> ValueMatcher:
    """Return the matcher for operator ``name``; an unknown operator never matches."""
    factory = OPERATORS.get(name) if isinstance(name, str) else None
    return _never if factory is None else factory(raw)
