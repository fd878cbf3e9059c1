"""Conditions with bad data never raise and never match; coercion corner cases."""

import time
from typing import Any

import pytest

from ensign.engine import evaluate
from ensign.engine.hashing import hash_pct
from ensign.engine.operators import OPERATOR_NAMES


def _matches(operator: str, value: Any, trait: Any, prop: str = "t") -> bool:
    context = {
        "environment": {"key": "env", "name": "Production"},
        "identity": {"identifier": "user", "traits": {"t": trait}},
        "segments": {
            "1": {
                "key": "1",
                "name": "s",
                "rules": [
                    {
                        "type": "ALL",
                        "conditions": [{"property": prop, "operator": operator, "value": value}],
                    }
                ],
            }
        },
    }
    return bool(evaluate(context)["segments"])


@pytest.mark.parametrize(
    ("operator", "value", "trait"),
    [
        ("REGEX", "[", "abc"),
        ("REGEX", "(?P<", "abc"),
        ("REGEX", None, "abc"),
        ("MODULO", "0|0", 4),
        ("MODULO", "abc", 4),
        ("MODULO", "2|x", 4),
        ("MODULO", "2|0|0", 4),
        ("MODULO", "", 4),
        ("MODULO", "2|0", "abc"),
        ("MODULO", "2.0|0", 10**400),
        ("IN", None, "a"),
        ("IN", 5, 5),
        ("IN", "[1,", "[1,x"),
        ("IN", "a,b", True),
        ("IN", "1.5", 1.5),
        ("EQUAL", "1.0.x:semver", "1.0.0"),
        ("GREATER_THAN", "1.0.0:semver", "not-a-version"),
        ("GREATER_THAN", "abc", 5),
        ("LESS_THAN", "12.0", 12),
        ("EQUAL", None, 5),
        ("CONTAINS", None, "abc"),
        ("CONTAINS", "1", 123),
        ("NOT_CONTAINS", "1", 123),
        ("PERCENTAGE_SPLIT", "abc", "x"),
        ("PERCENTAGE_SPLIT", None, "x"),
        ("UNKNOWN_OPERATOR", "1", 1),
    ],
)
def test_condition__bad_data__does_not_match(operator: str, value: Any, trait: Any) -> None:
    assert not _matches(operator, value, trait)


@pytest.mark.parametrize(
    ("operator", "value", "trait"),
    [
        ("EQUAL", "12", "12"),  # numeric-looking trait strings are numbers...
        ("GREATER_THAN", "9", "12"),  # ...so "12" > "9" numerically
        ("EQUAL", "1.5", "1.50"),
        ("GREATER_THAN", "11", "12\n"),  # ...but only when the whole string is digits
        ("EQUAL", "anything", True),  # bool casts: anything but False/false is true
        ("EQUAL", "false", False),
        ("IN", "a, b", " b"),  # no trimming
        ("IN", "[true, 1]", "True"),
        ("IN", "1,2", 2),
        ("IN", "[1,2", "[1"),  # broken JSON falls back to commas
        ("REGEX", "Tr", True),
        ("REGEX", "a", "abc"),
        ("MODULO", "2|1", True),
        ("MODULO", "2.5|0.5", 3),
        ("EQUAL", "1.0.0+build.2:semver", "1.0.0+build.1"),
        ("GREATER_THAN", "1.0.0-alpha:semver", "1.0.0"),
        ("CONTAINS", "b", {"b": 1}),  # non-scalars compare as their str()
    ],
)
def test_condition__coercion_corner_case__matches(operator: str, value: Any, trait: Any) -> None:
    assert _matches(operator, value, trait)


def test_regex__anchored_at_start_only__does_not_search() -> None:
    assert not _matches("REGEX", "b", "abc")


def test_contains__semver_suffix__never_matches_a_string() -> None:
    assert not _matches("CONTAINS", "1.0.0:semver", "x1.0.0:semver")


def test_percentage_split__trait__hashes_the_coerced_value() -> None:
    # "007" is compared as 7, so it is bucketed as "7" too.
    threshold = (hash_pct(["1", "007"]) + hash_pct(["1", 7])) / 2
    assert _matches("PERCENTAGE_SPLIT", str(threshold), "007") == (hash_pct(["1", 7]) <= threshold)


def test_percentage_split__identity_key__hashes_the_key_as_given() -> None:
    # Given a split on the identity key itself, whose text looks like a number
    context = {
        "environment": {"key": "env", "name": "Production"},
        "identity": {"identifier": "user", "key": "007"},
        "segments": {
            "1": {
                "key": "1",
                "name": "s",
                "rules": [
                    {
                        "type": "ALL",
                        "conditions": [
                            {"property": "", "operator": "PERCENTAGE_SPLIT", "value": "50"}
                        ],
                    }
                ],
            }
        },
    }
    # When / Then
    assert bool(evaluate(context)["segments"]) == (hash_pct(["1", "007"]) <= 50)


def test_jsonpath__trait_of_that_name__wins_over_the_query() -> None:
    assert _matches("EQUAL", "x", "x", prop="$.t") is False  # no such path, no trait "$.t"
    context = {
        "environment": {"key": "env", "name": "Production"},
        "identity": {"identifier": "user", "traits": {"$.identity.identifier": "other"}},
        "segments": {
            "1": {
                "key": "1",
                "name": "s",
                "rules": [
                    {
                        "type": "ALL",
                        "conditions": [
                            {
                                "property": "$.identity.identifier",
                                "operator": "EQUAL",
                                "value": "other",
                            }
                        ],
                    }
                ],
            }
        },
    }
    assert evaluate(context)["segments"] == [{"name": "s"}]


# One condition each operator matches: (value, trait, property read).
_MATCHING_EXAMPLE: dict[str, tuple[Any, Any, str]] = {
    "EQUAL": ("a", "a", "t"),
    "NOT_EQUAL": ("a", "b", "t"),
    "GREATER_THAN": ("1", 2, "t"),
    "GREATER_THAN_INCLUSIVE": ("2", 2, "t"),
    "LESS_THAN": ("3", 2, "t"),
    "LESS_THAN_INCLUSIVE": ("2", 2, "t"),
    "CONTAINS": ("b", "abc", "t"),
    "NOT_CONTAINS": ("z", "abc", "t"),
    "REGEX": ("a.c", "abc", "t"),
    "MODULO": ("2|0", 4, "t"),
    "IN": ("a,b", "b", "t"),
    "IS_SET": (None, "x", "t"),
    "IS_NOT_SET": (None, "x", "unset"),
    "PERCENTAGE_SPLIT": ("100", "x", "t"),
}


@pytest.mark.parametrize("operator", OPERATOR_NAMES)
def test_operator_names__every_operator_offered__is_one_the_engine_evaluates(
    operator: str,
) -> None:
    # An operator the engine does not know never matches, so a match proves it is evaluated.
    value, trait, prop = _MATCHING_EXAMPLE[operator]
    assert _matches(operator, value, trait, prop)


@pytest.mark.parametrize(
    ("pattern", "trait"),
    [("^(a+)+$", "a" * 28 + "!"), ("^(a|a)*$", "a" * 24 + "!"), ("^(a|aa)+$", "a" * 30 + "!")],
)
def test_regex__catastrophic_backtracking__no_match_within_the_budget(
    pattern: str, trait: str
) -> None:
    started = time.perf_counter()
    assert not _matches("REGEX", pattern, trait)
    assert time.perf_counter() - started < 0.1
    assert _matches("REGEX", pattern, "a" * 28)


@pytest.mark.parametrize("pattern", ["a{1000000}", "(a{1000}){1000}", "((a{100}){100}){100}"])
def test_regex__repeats_too_costly_to_compile__never_match_and_compile_fast(pattern: str) -> None:
    started = time.perf_counter()
    assert not _matches("REGEX", pattern, "a" * 100)
    assert time.perf_counter() - started < 0.1
