"""The compiled path: environment results are cached but safe to mutate."""

from ensign.engine import compile_environment, evaluate

CONTEXT = {
    "environment": {"key": "env", "name": "Production"},
    "features": {
        "f": {"key": "1", "name": "f", "enabled": True, "value": "x", "metadata": {"id": 1}},
    },
    "segments": {
        "1": {
            "key": "1",
            "name": "production",
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [
                        {
                            "property": "$.environment.name",
                            "operator": "EQUAL",
                            "value": "Production",
                        }
                    ],
                }
            ],
            "overrides": [{"key": "2", "name": "f", "enabled": False, "value": "y", "priority": 1}],
        }
    },
}


def test_evaluate_environment__no_identity__equals_one_shot_evaluation() -> None:
    assert compile_environment(CONTEXT).evaluate_environment() == evaluate(CONTEXT)


def test_evaluate_environment__caller_mutates_result__next_call_unaffected() -> None:
    # Given
    compiled = compile_environment(CONTEXT)
    first = compiled.evaluate_environment()
    # When
    first["flags"]["f"]["enabled"] = True
    first["segments"].clear()
    # Then
    second = compiled.evaluate_environment()
    assert second["flags"]["f"]["enabled"] is False
    assert second["segments"] == [{"name": "production"}]


def test_evaluate_identity__identity_in_compiled_context__is_ignored() -> None:
    context = {**CONTEXT, "identity": {"identifier": "someone"}}
    assert compile_environment(context).evaluate_identity(None) == evaluate(CONTEXT)


def test_evaluate_identity__repeated_calls__do_not_mutate_the_identity() -> None:
    identity = {"identifier": "user", "traits": {"a": "12"}}
    compile_environment(CONTEXT).evaluate_identity(identity)
    assert identity == {"identifier": "user", "traits": {"a": "12"}}
