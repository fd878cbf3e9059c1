"""Structured outcomes: the same choices as the dict API, with flag-engine 11's reasons, the
identity's own overrides applied, and every reason's parts as fields."""

from pathlib import Path
from typing import Any

import pyjson5
import pytest
from flag_engine.engine import get_evaluation_result

from ensign.engine import (
    FlagOutcome,
    IdentityOverride,
    OverrideSource,
    ReasonKind,
    compile_environment,
)

from .conftest import engine_test_data

DATA = engine_test_data()
CASES = (
    [pytest.param(path, id=path.name) for path in sorted((DATA / "test_cases").iterdir())]
    if DATA
    else []
)


def _as_flag_result(flag: FlagOutcome) -> tuple[Any, ...]:
    return (flag.name, flag.enabled, flag.value, flag.variant, flag.reason)


@pytest.mark.skipif(DATA is None, reason="engine-test-data not found: set ENSIGN_ENGINE_TEST_DATA")
@pytest.mark.parametrize("path", CASES)
def test_resolve_identity__conformance_case__agrees_with_flag_engine_11(path: Path) -> None:
    # Given: the SDK 6.3 engine (flag-engine 11, with STATIC) on the same context
    case = pyjson5.decode(path.read_text(encoding="utf-8"))
    context = dict(case["context"])
    reference = get_evaluation_result(context)  # type: ignore[arg-type]
    identity = context.pop("identity", None)
    # When
    outcome = compile_environment(context).resolve_identity(identity)
    # Then
    assert [_as_flag_result(f) for f in outcome.flags] == [
        (f["name"], f["enabled"], f["value"], f["variant"], f["reason"])
        for _, f in sorted(reference["flags"].items())
    ]
    assert [s.name for s in outcome.segments] == [s["name"] for s in reference["segments"]]


def _segment(name: str, trait: str, overrides: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": name,
        "name": name,
        "rules": [
            {
                "type": "ALL",
                "conditions": [{"property": trait, "operator": "IS_SET", "value": None}],
            }
        ],
        "overrides": overrides,
        "metadata": {"id": 7},
    }


CONTEXT: dict[str, Any] = {
    "environment": {"key": "env", "name": "Production"},
    "features": {
        "banner": {
            "key": "10",
            "name": "banner",
            "enabled": True,
            "value": "plain",
            "metadata": {"id": 1, "fs": 100},
        },
        "checkout": {
            "key": "20",
            "name": "checkout",
            "enabled": True,
            "value": "old",
            "metadata": {"id": 2, "fs": 200},
            "variants": [{"value": "new", "weight": 100.0, "priority": 1, "key": "new"}],
        },
        "quiet": {"key": "30", "name": "quiet", "enabled": False, "value": None},
    },
    "segments": {
        "beta": _segment(
            "beta",
            "beta",
            [
                {
                    "key": "11",
                    "name": "banner",
                    "enabled": False,
                    "value": "beta",
                    "priority": 1,
                    "metadata": {"id": 1, "fs": 101},
                }
            ],
        )
    },
}


def _by_name(flags: tuple[FlagOutcome, ...]) -> dict[str, FlagOutcome]:
    return {flag.name: flag for flag in flags}


def test_resolve_identity__segment_override__reports_the_segment_and_its_state() -> None:
    outcome = compile_environment(CONTEXT).resolve_identity(
        {"identifier": "u", "traits": {"beta": True}}
    )
    banner = _by_name(outcome.flags)["banner"]
    assert (banner.value, banner.kind, banner.source, banner.segment, banner.state_id) == (
        "beta",
        ReasonKind.TARGETING_MATCH,
        OverrideSource.SEGMENT,
        "beta",
        101,
    )
    assert banner.reason == "TARGETING_MATCH; segment=beta"
    assert [(s.name, s.metadata) for s in outcome.segments] == [("beta", {"id": 7})]


def test_resolve_identity__no_match__targeted_default_and_untargeted_static() -> None:
    flags = _by_name(compile_environment(CONTEXT).resolve_identity({"identifier": "u"}).flags)
    assert (flags["banner"].kind, flags["banner"].reason) == (ReasonKind.DEFAULT, "DEFAULT")
    assert (flags["quiet"].kind, flags["quiet"].reason) == (ReasonKind.STATIC, "STATIC")
    assert flags["banner"].source is OverrideSource.DEFAULT
    assert flags["banner"].state_id == 100


def test_resolve_identity__split__reports_weight_and_variant() -> None:
    checkout = _by_name(compile_environment(CONTEXT).resolve_identity({"identifier": "u"}).flags)[
        "checkout"
    ]
    assert (checkout.value, checkout.kind, checkout.weight, checkout.variant) == (
        "new",
        ReasonKind.SPLIT,
        100.0,
        "new",
    )
    assert checkout.reason == "SPLIT; weight=100.0"


def test_resolve_identity__identity_override__beats_the_segment() -> None:
    # Given: the identity matches the segment, and has its own state for banner
    compiled = compile_environment(CONTEXT)
    own = [IdentityOverride("banner", True, "mine", 555), IdentityOverride("gone", True, 1)]
    # When
    outcome = compiled.resolve_identity({"identifier": "u", "traits": {"beta": 1}}, own)
    # Then
    flags = _by_name(outcome.flags)
    banner = flags["banner"]
    assert (banner.enabled, banner.value, banner.source, banner.state_id) == (
        True,
        "mine",
        OverrideSource.IDENTITY,
        555,
    )
    assert banner.reason == "TARGETING_MATCH; segment=identity_overrides"
    assert banner.segment == "identity_overrides"
    # A feature the context does not have is not invented.
    assert sorted(flags) == ["banner", "checkout", "quiet"]


def test_compile__identity_overridden_feature__its_default_is_default_not_static() -> None:
    compiled = compile_environment(CONTEXT, identity_overridden=["quiet"])
    quiet = _by_name(compiled.resolve_identity({"identifier": "u"}).flags)["quiet"]
    assert quiet.reason == "DEFAULT"
    assert compiled.targeted_features == {"banner", "quiet"}


def test_resolve_environment__no_identity__defaults_sorted_all_static() -> None:
    # banner is targeted by a segment, but environment flags evaluate no segment.
    outcome = compile_environment(CONTEXT).resolve_environment()
    assert [(f.name, f.value, f.variant, f.reason) for f in outcome.flags] == [
        ("banner", "plain", None, "STATIC"),
        ("checkout", "old", None, "STATIC"),
        ("quiet", None, None, "STATIC"),
    ]
    assert {f.kind for f in outcome.flags} == {ReasonKind.STATIC}
    assert outcome.segments == ()


@pytest.mark.skipif(DATA is None, reason="engine-test-data not found: set ENSIGN_ENGINE_TEST_DATA")
@pytest.mark.parametrize("path", CASES)
def test_resolve_environment__conformance_case__agrees_with_sdk_environment_flags(
    path: Path,
) -> None:
    # Given: the context SDK 6.3 evaluates environment flags with (no segments, no identity)
    context = pyjson5.decode(path.read_text(encoding="utf-8"))["context"]
    bare = {k: v for k, v in context.items() if k not in ("segments", "identity")}
    reference = get_evaluation_result(bare)  # type: ignore[arg-type]
    # When
    outcome = compile_environment(context).resolve_environment()
    # Then
    assert [_as_flag_result(f) for f in outcome.flags] == [
        (f["name"], f["enabled"], f["value"], f["variant"], f["reason"])
        for _, f in sorted(reference["flags"].items())
    ]
