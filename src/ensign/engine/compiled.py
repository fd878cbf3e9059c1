"""An environment compiled once and evaluated per identity: the server's hot path.

Compiling checks the context's structure, turns every rule into closures, parses every
condition value and prepares the flag results, so evaluating an identity only runs
predicates, a few md5 hashes and small dict builds.
"""

from dataclasses import dataclass
from typing import Any

from ensign.engine.context import EvaluationResult, FlagResult, SegmentResult
from ensign.engine.errors import EngineError
from ensign.engine.features import DEFAULT_REASON, CompiledFeature, compile_feature
from ensign.engine.rules import Predicate, compile_segment_rules
from ensign.engine.subject import Subject

_INFINITY = float("inf")


@dataclass(frozen=True, slots=True)
class Override:
    """One segment override; its compiled feature reports the segment as the reason."""

    feature: CompiledFeature
    priority: float


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    """A segment's predicate, its result entry and its overrides."""

    matches: Predicate
    result: SegmentResult
    overrides: tuple[Override, ...]


class CompiledEnvironment:
    """An evaluation context without its identity, ready to evaluate many identities.

    Results are new dicts on every call, but nested ``metadata`` objects and flag values are
    shared with the compiled context: callers must treat those as read-only.
    """

    __slots__ = ("_base", "_defaults", "_environment_result", "_features", "_key", "_segments")

    def __init__(self, context: Any) -> None:
        if not isinstance(context, dict):
            raise EngineError("context: must be an object")
        environment = context.get("environment")
        if not isinstance(environment, dict):
            raise EngineError("environment: required, and must be an object")
        if not isinstance(environment.get("key"), str):
            raise EngineError("environment.key: required, and must be a string")
        self._key: str = environment["key"]
        # JSONPath sees the context as given, with the identity slotted in per evaluation.
        self._base: dict[str, Any] = context
        self._features = tuple(_compile_features(context.get("features")))
        self._defaults = tuple(
            (feature.name, feature.plain, feature if feature.buckets else None)
            for feature in self._features
        )
        self._segments = tuple(_compile_segments(context.get("segments"), context))
        self._environment_result: EvaluationResult | None = None

    def evaluate_identity(self, identity: Any) -> EvaluationResult:
        """Evaluate for ``identity`` (``{"identifier", "key"?, "traits"?}``), or ``None``.

        Identical to :func:`ensign.engine.evaluate` on this context with ``identity`` added.
        """
        subject = self._subject(identity)
        matched: list[SegmentResult] = []
        # Feature name → winning override: strictly lower priority wins, ties keep the first.
        winners: dict[str, Override] = {}
        for segment in self._segments:
            if not segment.matches(subject):
                continue
            matched.append(segment.result.copy())
            for override in segment.overrides:
                held = winners.get(override.feature.name)
                if held is None or override.priority < held.priority:
                    winners[override.feature.name] = override
        key = subject.key
        flags: dict[str, FlagResult] = {}
        if winners:
            for feature in self._features:
                winner = winners.get(feature.name)
                flags[feature.name] = (feature if winner is None else winner.feature).flag(key)
        else:
            # The common case: no override applies, so most flags are a copied template.
            for name, plain, multivariate in self._defaults:
                flags[name] = (
                    plain.copy() if multivariate is None or key is None else multivariate.flag(key)
                )
        return {"flags": flags, "segments": matched}

    def evaluate_environment(self) -> EvaluationResult:
        """Evaluate with no identity; computed once, then copied for each caller."""
        if self._environment_result is None:
            self._environment_result = self.evaluate_identity(None)
        cached = self._environment_result
        return {
            "flags": {name: flag.copy() for name, flag in cached["flags"].items()},
            "segments": [segment.copy() for segment in cached["segments"]],
        }

    def _subject(self, identity: Any) -> Subject:
        if identity is None:
            return Subject(self._base, None, None)
        if not isinstance(identity, dict):
            raise EngineError("identity: must be an object or null")
        if "identifier" not in identity:
            raise EngineError("identity.identifier: required")
        traits = identity.get("traits")
        if traits is not None and not isinstance(traits, dict):
            raise EngineError("identity.traits: must be an object")
        key = identity.get("key")
        if not key:
            # Local evaluation leaves the key out; it is derived exactly as Flagsmith does.
            key = f"{self._key}_{identity['identifier']}"
            identity = {**identity, "key": key}
        return Subject(self._base, identity, key)


def _compile_features(features: Any) -> list[CompiledFeature]:
    if features is None:
        return []
    if not isinstance(features, dict):
        raise EngineError("features: must be an object keyed by feature name")
    return [
        compile_feature(feature, f"features[{name!r}]", DEFAULT_REASON)
        for name, feature in features.items()
    ]


def _compile_segments(segments: Any, base: dict[str, Any]) -> list[CompiledSegment]:
    if segments is None:
        return []
    if not isinstance(segments, dict):
        raise EngineError("segments: must be an object keyed by segment key")
    compiled = []
    for name, segment in segments.items():
        where = f"segments[{name!r}]"
        if not isinstance(segment, dict):
            raise EngineError(f"{where}: a segment must be an object")
        for field in ("key", "name", "rules"):
            if field not in segment:
                raise EngineError(f"{where}.{field}: required")
        result: SegmentResult = {"name": segment["name"]}
        if segment.get("metadata"):
            result["metadata"] = segment["metadata"]
        compiled.append(
            CompiledSegment(
                matches=compile_segment_rules(segment["rules"], str(segment["key"]), base, where),
                result=result,
                overrides=tuple(_compile_overrides(segment, where)),
            )
        )
    return compiled


def _compile_overrides(segment: dict[str, Any], where: str) -> list[Override]:
    overrides = segment.get("overrides")
    if overrides is None:
        return []
    if not isinstance(overrides, list):
        raise EngineError(f"{where}.overrides: must be a list")
    reason = f"TARGETING_MATCH; segment={segment['name']}"
    compiled = []
    for index, override in enumerate(overrides):
        feature = compile_feature(override, f"{where}.overrides[{index}]", reason)
        priority = override.get("priority")
        compiled.append(Override(feature, _INFINITY if priority is None else priority))
    return compiled


def compile_environment(context: Any) -> CompiledEnvironment:
    """Compile an evaluation context (its ``identity``, if any, is ignored) for reuse.

    Raises :class:`~ensign.engine.EngineError` when the context's structure is invalid.
    """
    return CompiledEnvironment(context)


def evaluate(context: Any) -> EvaluationResult:
    """Evaluate one Flagsmith evaluation context, exactly as flag-engine 10.2.x does.

    Accepts and returns the engine's wire shapes (see :mod:`ensign.engine.context`). Bad data
    in conditions never raises; a structurally invalid context raises ``EngineError``.
    """
    if not isinstance(context, dict):
        raise EngineError("context: must be an object")
    return CompiledEnvironment(context).evaluate_identity(context.get("identity"))
