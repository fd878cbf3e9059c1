"""An environment compiled once and evaluated per identity: the server's hot path.

Compiling checks the context's structure, turns every rule into closures, parses every
condition value and prepares the flag results, so evaluating an identity only runs
predicates, a few md5 hashes and small dict builds.

Two APIs share the matching: ``evaluate_identity``/``evaluate_environment`` answer flag-engine
10.2's wire dicts (the conformance cases), and ``resolve_identity``/``resolve_environment``
answer structured outcomes (:mod:`ensign.engine.outcomes`), with identity overrides applied
and flag-engine 11's reasons, for the server.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ensign.engine.context import EvaluationResult, FlagResult, SegmentResult
from ensign.engine.errors import EngineError
from ensign.engine.features import CompiledFeature, compile_feature
from ensign.engine.outcomes import (
    FlagOutcome,
    IdentityOverride,
    MatchedSegment,
    Outcome,
    OverrideSource,
    ReasonKind,
    identity_override_outcome,
)
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
    matched: MatchedSegment
    overrides: tuple[Override, ...]


class CompiledEnvironment:
    """An evaluation context without its identity, ready to evaluate many identities.

    Dict results are new dicts on every call, but nested ``metadata`` objects and flag values
    are shared with the compiled context: callers must treat those as read-only. Outcomes are
    immutable and shared.
    """

    __slots__ = (
        "_base",
        "_by_name",
        "_defaults",
        "_environment_outcome",
        "_environment_result",
        "_features",
        "_key",
        "_segments",
        "targeted_features",
    )

    def __init__(self, context: Any, identity_overridden: Iterable[str] = ()) -> None:
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
        # Features whose default some rule could replace: flag-engine 11 reports their
        # defaults as DEFAULT, the others' as STATIC. `identity_overridden` names the features
        # of identity overrides that local evaluation sees as segments but this context leaves
        # out (the server passes them per identity to `resolve_identity`).
        self.targeted_features = frozenset(
            _overridden_names(context.get("segments")).union(identity_overridden)
        )
        self._features = tuple(_compile_features(context.get("features"), self.targeted_features))
        self._defaults = tuple(
            (feature.name, feature.plain, feature if feature.buckets else None)
            for feature in self._features
        )
        # The last feature of a name wins, as in the dict results; outcomes are name-sorted.
        by_name = {feature.name: feature for feature in self._features}
        self._by_name = tuple(
            (feature, feature.plain_outcome, feature if feature.buckets else None)
            for _, feature in sorted(by_name.items())
        )
        self._segments = tuple(_compile_segments(context.get("segments"), context))
        self._environment_result: EvaluationResult | None = None
        self._environment_outcome: Outcome | None = None

    def _match(self, subject: Subject) -> tuple[list[CompiledSegment], dict[str, Override]]:
        """The segments ``subject`` matches, and the override each feature gets from them."""
        matched: list[CompiledSegment] = []
        # Feature name → winning override: strictly lower priority wins, ties keep the first.
        winners: dict[str, Override] = {}
        for segment in self._segments:
            if not segment.matches(subject):
                continue
            matched.append(segment)
            for override in segment.overrides:
                held = winners.get(override.feature.name)
                if held is None or override.priority < held.priority:
                    winners[override.feature.name] = override
        return matched, winners

    def resolve_identity(
        self, identity: Any, overrides: Sequence[IdentityOverride] = ()
    ) -> Outcome:
        """Every flag for ``identity`` (as :meth:`evaluate_identity` takes it), sorted by name.

        The identity's own ``overrides`` beat every segment override; features missing from
        the context are ignored. Defaults report flag-engine 11's STATIC or DEFAULT.
        """
        subject = self._subject(identity)
        matched, winners = self._match(subject)
        key = subject.key
        flags: list[FlagOutcome]
        if overrides:
            own = {override.feature: override for override in overrides}
            flags = []
            for feature, _, _ in self._by_name:
                mine = own.get(feature.name)
                if mine is not None:
                    flags.append(identity_override_outcome(mine))
                    continue
                winner = winners.get(feature.name)
                flags.append((feature if winner is None else winner.feature).outcome(key))
        elif winners:
            flags = []
            for feature, _, _ in self._by_name:
                winner = winners.get(feature.name)
                flags.append((feature if winner is None else winner.feature).outcome(key))
        else:
            # The common case: no override applies, so most flags are the plain template.
            flags = [
                plain if multivariate is None or key is None else multivariate.outcome(key)
                for _, plain, multivariate in self._by_name
            ]
        return Outcome(
            tuple(flags), tuple([segment.matched for segment in matched]) if matched else ()
        )

    def resolve_environment(self) -> Outcome:
        """The environment's flags with no identity, as the SDKs' environment flags: every
        default, and all STATIC, since the SDKs leave segments out of that context (so no
        feature is targeted there either)."""
        if self._environment_outcome is None:
            self._environment_outcome = Outcome(
                tuple(_static(feature.plain_outcome) for feature, _, _ in self._by_name), ()
            )
        return self._environment_outcome

    def evaluate_identity(self, identity: Any) -> EvaluationResult:
        """Evaluate for ``identity`` (``{"identifier", "key"?, "traits"?}``), or ``None``.

        Identical to :func:`ensign.engine.evaluate` on this context with ``identity`` added.
        """
        subject = self._subject(identity)
        segments, winners = self._match(subject)
        matched = [segment.result.copy() for segment in segments]
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


def _static(outcome: FlagOutcome) -> FlagOutcome:
    if outcome.kind is ReasonKind.STATIC:
        return outcome
    return replace(outcome, kind=ReasonKind.STATIC, reason=ReasonKind.STATIC.value)


def _compile_features(features: Any, targeted: frozenset[str]) -> list[CompiledFeature]:
    if features is None:
        return []
    if not isinstance(features, dict):
        raise EngineError("features: must be an object keyed by feature name")
    return [
        compile_feature(
            feature,
            f"features[{name!r}]",
            source=OverrideSource.DEFAULT,
            kind=ReasonKind.DEFAULT if _name_of(feature) in targeted else ReasonKind.STATIC,
        )
        for name, feature in features.items()
    ]


def _name_of(feature: Any) -> Any:
    return feature.get("name") if isinstance(feature, dict) else None


def _overridden_names(segments: Any) -> set[str]:
    """The features the segments override, read leniently: the structure is checked later,
    when the segments compile."""
    names: set[str] = set()
    if not isinstance(segments, dict):
        return names
    for segment in segments.values():
        overrides = segment.get("overrides") if isinstance(segment, dict) else None
        if isinstance(overrides, list):
            names.update(name for name in map(_name_of, overrides) if isinstance(name, str))
    return names


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
                matched=MatchedSegment(segment["name"], segment.get("metadata") or {}),
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
    compiled = []
    for index, override in enumerate(overrides):
        feature = compile_feature(
            override,
            f"{where}.overrides[{index}]",
            source=OverrideSource.SEGMENT,
            kind=ReasonKind.TARGETING_MATCH,
            segment=segment["name"],
        )
        priority = override.get("priority")
        compiled.append(Override(feature, _INFINITY if priority is None else priority))
    return compiled


def compile_environment(
    context: Any, *, identity_overridden: Iterable[str] = ()
) -> CompiledEnvironment:
    """Compile an evaluation context (its ``identity``, if any, is ignored) for reuse.

    ``identity_overridden`` names features that identity overrides left out of the context
    target (their defaults then report DEFAULT, not STATIC, in outcomes).

    Raises :class:`~ensign.engine.EngineError` when the context's structure is invalid.
    """
    return CompiledEnvironment(context, identity_overridden)


def evaluate(context: Any) -> EvaluationResult:
    """Evaluate one Flagsmith evaluation context, exactly as flag-engine 10.2.x does.

    Accepts and returns the engine's wire shapes (see :mod:`ensign.engine.context`). Bad data
    in conditions never raises; a structurally invalid context raises ``EngineError``.
    """
    if not isinstance(context, dict):
        raise EngineError("context: must be an object")
    return CompiledEnvironment(context).evaluate_identity(context.get("identity"))
