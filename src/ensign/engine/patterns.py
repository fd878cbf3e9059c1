"""Regular expressions for the ``REGEX`` operator, at a bounded cost.

Python's ``re`` backtracks without limit and holds the interpreter while it does: ``^(a|a)*$``
against a few dozen characters runs for seconds, and every other request in the process waits.
So a pattern is read with ``re`` (the syntax Flagsmith users write and the reference engine
accepts, so what ``re`` refuses still never matches) and matched with the ``regex`` package,
whose matching gives up after a time budget. A match that runs out of budget counts as no match.

Matching is bounded that way; compiling is not: ``regex`` expands counted repeats, so
``a{1000000}`` takes over a second to compile. Such patterns are refused (see
:func:`pattern_problem`) and, if one was stored before this rule, never match.
"""

from __future__ import annotations

import re
import re._parser as re_parser  # type: ignore[import-not-found]  # typeshed has no stub
from typing import Any

import regex

# Long enough for any pattern a person writes against a trait (they match in microseconds),
# short enough that a runaway pattern costs a request no more than a slow query would.
MATCH_BUDGET_SECONDS = 0.01

# The largest pattern, counting each repeated part as often as its minimum count, that is
# compiled: about as costly to compile as the longest condition value (100,000 characters).
MAX_PATTERN_SIZE = 100_000

_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _size(parsed: Any, limit: int) -> int:
    """The size of a parsed pattern with counted repeats expanded, stopping once over `limit`."""
    total = 0
    for op, arg in parsed:
        if str(op) in _REPEATS:
            low, _high, inner = arg
            total += max(low, 1) * _size(inner, limit)
        else:
            total += 1 + sum(_size(part, limit) for part in _subpatterns(arg))
        if total > limit:
            return total
    return total


def _subpatterns(arg: Any) -> list[Any]:
    if isinstance(arg, re_parser.SubPattern):
        return [arg]
    if isinstance(arg, tuple | list):
        return [found for item in arg for found in _subpatterns(item)]
    return []


def _compile(text: str) -> regex.Pattern[str] | str:
    """The compiled pattern, or why there is none."""
    try:
        parsed = re_parser.parse(text)
    except (re.error, RecursionError, OverflowError, ValueError) as error:
        return f"not a valid regular expression ({error})"
    if _size(parsed, MAX_PATTERN_SIZE) > MAX_PATTERN_SIZE:
        return (
            f"this regular expression repeats too much (more than {MAX_PATTERN_SIZE:,} parts "
            "once counted repeats such as {1000} are expanded)"
        )
    try:
        re.compile(text)
        return regex.compile(text)
    except (re.error, regex.error, RecursionError, OverflowError, ValueError) as error:
        return f"not a valid regular expression ({error})"


def pattern_problem(text: str) -> str | None:
    """Why `text` cannot be a ``REGEX`` condition's value, or None if it can."""
    compiled = _compile(text)
    return compiled if isinstance(compiled, str) else None


def compile_pattern(text: str) -> regex.Pattern[str] | None:
    """The compiled pattern, or None where :func:`pattern_problem` finds a problem."""
    compiled = _compile(text)
    return None if isinstance(compiled, str) else compiled


def bounded_match(pattern: regex.Pattern[str], text: str) -> bool:
    """``pattern.match(text)`` (anchored at the start only), False once over budget."""
    try:
        # `concurrent` lets other threads run while this one matches.
        return pattern.match(text, timeout=MATCH_BUDGET_SECONDS, concurrent=True) is not None
    except TimeoutError:
        return False
