"""Differential property test: random contexts through ours and flag-engine 10.2.0.

Any disagreement is a bug in ours. Where the reference raises (it crashes on some malformed
data), ours must still answer without raising.
"""

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensign.engine import compile_environment, evaluate
from ensign.engine.operators import OPERATOR_NAMES

from .conftest import Reference

settings.register_profile(
    "ensign-engine-differential",
    max_examples=int(os.environ.get("ENSIGN_DIFFERENTIAL_EXAMPLES", "2000")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("ensign-engine-differential")

TRAIT_NAMES = ["a", "b", "n", "$.x", "ü", "$.identity.identifier", ""]
TRICKY_STRINGS = [
    "",
    "a",
    "abc",
    "x",
    "ü",
    "12",
    "-3",
    "0",
    "-0",
    "007",
    "1.5",
    "1.50",
    "2.0",
    "1e5",
    " 5",
    "12\n",
    "True",
    "true",
    "False",
    "false",
    "None",
    "1.0.0",
    "2.1.0-beta",
    "1.0",
    "v1.0.0",
    "a,b",
    "[1, 2]",
    "١٢",
    "user",
    "env_user",
    "env_12",
]
CONDITION_VALUES = [
    *TRICKY_STRINGS,
    "a,b,12",
    "12,x",
    " b",
    '[1, "a"]',
    "[true]",
    '["x", 1]',
    "[1,2",
    "[1.0]",
    "[NaN]",
    "2|0",
    "3|1",
    "0|0",
    "2.5|0.5",
    "abc|1",
    "5|2|1",
    "|",
    "0",
    "50",
    "100",
    "33.3",
    "inf",
    "nan",
    "1.0.0:semver",
    "2.1.0-beta:semver",
    "1.0.0-alpha:semver",
    "bad:semver",
    "1.0:semver",
    "^a",
    "[",
    ".*",
    "\\d+",
    "(a|b)",
    "Tr",
]
PROPERTIES = [
    *TRAIT_NAMES,
    "$.identity.key",
    "$.environment.name",
    "$.identity.traits.a",
    "$.identity.traits.n",
    "$.identity.traits[?@ > 1]",
    "$.identity.traits.*",
    "$.features.f0.value",
    "$.bad path",
    "$.identity",
    "$..name",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from(TRICKY_STRINGS),
    st.text(max_size=6),
)
trait_values = st.one_of(scalars, st.just(math.nan), st.lists(st.integers(0, 3), max_size=2))
flag_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(TRICKY_STRINGS)
)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(OPERATOR_NAMES))
    prop = draw(st.sampled_from(PROPERTIES))
    if operator == "PERCENTAGE_SPLIT" and draw(st.booleans()):
        prop = draw(st.sampled_from(["", None]))
    value: Any = draw(
        st.one_of(
            st.sampled_from(CONDITION_VALUES),
            st.text(max_size=5),
            st.just(None) if operator in ("IS_SET", "IS_NOT_SET", "EQUAL") else st.nothing(),
            st.lists(st.sampled_from(TRICKY_STRINGS), max_size=3)
            if operator == "IN"
            else st.nothing(),
        )
    )
    return {"property": prop, "operator": operator, "value": value}


rules = st.recursive(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["ALL", "ANY", "NONE"]),
            "conditions": st.lists(conditions(), max_size=3),
        }
    ),
    lambda children: st.fixed_dictionaries(
        {
            "type": st.sampled_from(["ALL", "ANY", "NONE"]),
            "conditions": st.lists(conditions(), max_size=3),
            "rules": st.lists(children, max_size=2),
        }
    ),
    max_leaves=6,
)


@st.composite
def feature_contexts(draw: st.DrawFn, name: str, override: bool = False) -> dict[str, Any]:
    feature: dict[str, Any] = {
        "key": str(draw(st.integers(1, 40))),
        "name": name,
        "enabled": draw(st.booleans()),
        "value": draw(flag_values),
    }
    if draw(st.booleans()):
        variants = []
        for _ in range(draw(st.integers(0, 3))):
            variant: dict[str, Any] = {
                "value": draw(flag_values),
                "weight": draw(st.sampled_from([0, 10, 25, 30.0, 33.3, 50, 54.54, 100])),
                "priority": draw(st.integers(0, 3)),
            }
            if draw(st.booleans()):
                variant["key"] = draw(st.sampled_from(["va", "vb", None]))
            variants.append(variant)
        feature["variants"] = variants
    if override and draw(st.booleans()):
        feature["priority"] = draw(st.sampled_from([0, 1, 1, 2, -math.inf]))
    if draw(st.booleans()):
        feature["metadata"] = draw(st.sampled_from([{"id": 1}, {}, {"id": 2, "source": "x"}]))
    return feature


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    names = [f"f{index}" for index in range(draw(st.integers(0, 4)))]
    context: dict[str, Any] = {
        "environment": {"key": "env", "name": draw(st.sampled_from(["Production", "ü", "12"]))}
    }
    if names or draw(st.booleans()):
        context["features"] = {name: draw(feature_contexts(name)) for name in names}
    segments = {}
    for index in range(draw(st.integers(0, 4))):
        key = str(index + 1)
        segment: dict[str, Any] = {
            "key": key,
            "name": draw(st.sampled_from(["s1", "s2", "s3", "ü seg"])),
            "rules": draw(st.lists(rules, max_size=2)),
        }
        if names and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(names), max_size=3))
            segment["overrides"] = [draw(feature_contexts(name, override=True)) for name in chosen]
        if draw(st.booleans()):
            segment["metadata"] = draw(st.sampled_from([{"source": "api"}, {}, None]))
        segments[key] = segment
    if segments or draw(st.booleans()):
        context["segments"] = segments
    if draw(st.integers(0, 4)):
        identity: dict[str, Any] = {
            "identifier": draw(st.sampled_from(["user", "12", "1.50", "ü", "a,b", ""])),
        }
        if draw(st.booleans()):
            identity["key"] = draw(st.sampled_from(["env_user", "123", "1.50", "007", "", None]))
        if draw(st.integers(0, 3)):
            identity["traits"] = draw(
                st.dictionaries(st.sampled_from(TRAIT_NAMES), trait_values, max_size=4)
            )
        context["identity"] = identity
    return context


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check(reference: Reference, context: dict[str, Any]) -> None:
    answer = reference(context)
    ours = _json(evaluate(context))
    base = {key: value for key, value in context.items() if key != "identity"}
    compiled = _json(compile_environment(base).evaluate_identity(context.get("identity")))
    if "error" in answer:
        return  # the reference crashed on malformed data; ours answering is enough
    assert ours == answer["result"]
    assert compiled == answer["result"]


@pytest.mark.slow
@PROFILE
@given(context=contexts())
def test_evaluate__random_context__agrees_with_reference(
    reference: Reference, context: dict[str, Any]
) -> None:
    _check(reference, context)


# Contexts on which the reference raises instead of answering; ours must answer.
REFERENCE_CRASHES = {
    "IN with a null value": {"property": "a", "operator": "IN", "value": None},
    "IN with a number": {"property": "a", "operator": "IN", "value": 5},
    "null property": {"property": None, "operator": "IS_SET", "value": None},
}


@pytest.mark.parametrize("condition", REFERENCE_CRASHES.values(), ids=REFERENCE_CRASHES.keys())
def test_evaluate__reference_crashes__ours_does_not_match(
    reference: Reference, condition: dict[str, Any]
) -> None:
    # Given
    context = {
        "environment": {"key": "env", "name": "Production"},
        "identity": {"identifier": "user", "traits": {"a": 5}},
        "segments": {
            "1": {"key": "1", "name": "s", "rules": [{"type": "ALL", "conditions": [condition]}]}
        },
    }
    # When
    answer = reference(context)
    ours = evaluate(context)
    # Then
    assert "error" in answer
    assert ours["segments"] == []
