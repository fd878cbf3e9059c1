"""A structurally invalid context raises EngineError naming the field."""

from typing import Any

import pytest

from ensign.engine import EngineError, compile_environment, evaluate

ENV = {"key": "env", "name": "Production"}
FEATURE = {"key": "1", "name": "f", "enabled": True, "value": None}


def _segment(**fields: Any) -> dict[str, Any]:
    return {"key": "1", "name": "s", "rules": [], **fields}


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ([], "context"),
        ({}, "environment"),
        ({"environment": {"name": "x"}}, "environment.key"),
        ({"environment": ENV, "features": []}, "features"),
        ({"environment": ENV, "features": {"f": {"key": "1", "enabled": True}}}, "name"),
        ({"environment": ENV, "features": {"f": {"key": "1", "name": "f"}}}, "enabled"),
        (
            {"environment": ENV, "features": {"f": {**FEATURE, "variants": [{"value": 1}]}}},
            "variants[0].weight",
        ),
        ({"environment": ENV, "segments": {"1": {"key": "1", "name": "s"}}}, "rules"),
        ({"environment": ENV, "segments": {"1": {"name": "s", "rules": []}}}, "key"),
        (
            {"environment": ENV, "segments": {"1": _segment(rules=[{"type": "XYZ"}])}},
            "rules[0].type",
        ),
        (
            {
                "environment": ENV,
                "segments": {
                    "1": _segment(rules=[{"type": "ALL", "conditions": [{"property": "a"}]}])
                },
            },
            "conditions[0].operator",
        ),
        ({"environment": ENV, "segments": {"1": _segment(overrides=[{"key": "1"}])}}, "name"),
        ({"environment": ENV, "identity": {"traits": {}}}, "identity.identifier"),
        ({"environment": ENV, "identity": {"identifier": "u", "traits": []}}, "identity.traits"),
    ],
)
def test_evaluate__invalid_structure__raises_engine_error_naming_field(
    context: Any, field: str
) -> None:
    with pytest.raises(EngineError, match=field.replace("[", r"\[").replace("]", r"\]")):
        evaluate(context)


def test_engine_error__any__is_a_value_error() -> None:
    assert issubclass(EngineError, ValueError)


def test_evaluate_identity__not_an_object__raises_engine_error() -> None:
    with pytest.raises(EngineError, match="identity"):
        compile_environment({"environment": ENV}).evaluate_identity("user")
