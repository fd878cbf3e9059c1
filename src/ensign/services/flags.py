"""The flags an SDK call is served, as plain values: the environment's defaults, or an
identity's evaluation with its overrides (contract §2.1, §3.1, §5.7).

`web.sdk.wire` turns them into Flagsmith's flag objects; the outbox and the dashboard read
them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ensign.engine import FlagOutcome, MatchedSegment, OverrideSource, ReasonKind
from ensign.errors import NotFound
from ensign.services.identities import PreparedIdentity, TraitOutput
from ensign.services.snapshots import ExperimentInfo, Snapshot


class ServedFlag(NamedTuple):
    """One flag as returned to the caller. (A named tuple: fifty are made per identify call,
    and a frozen dataclass costs several times more. It is also the key of the wire's
    serialised-flag cache, so every field hashes as fast as text.)"""

    name: str
    enabled: bool
    value: Any
    # The feature state served: the identity's override, a segment's, or the default.
    state_id: int | None
    # The identity whose override this is.
    identity_id: int | None
    # The segment override's state id, when a segment decided the flag.
    feature_segment: int | None
    # The multivariate variant, for multivariate features.
    variant: str | None
    # Why: the string the official SDK's local evaluation (flag-engine 11) gives the same
    # identity, so that remote and local evaluation report the same reason. The engine
    # composes it; the fields below say the same, for callers that need a part of it.
    reason: str
    kind: ReasonKind
    source: OverrideSource
    # The segment whose override was served (`identity_overrides` for the identity's own).
    segment: str | None


class ExperimentOutcome(NamedTuple):
    """A served flag's running experiment, and whether the identity is in it: it matches the
    experiment's segment (if any) and its value came from the feature's own multivariate split,
    not from an identity override nor a segment override."""

    experiment: ExperimentInfo
    in_experiment: bool
    variant: str | None
    enabled: bool


@dataclass(frozen=True)
class IdentifyResult:
    """An identity's evaluation: its flags, and the traits it was evaluated with."""

    identifier: str
    identity_id: int | None
    served: list[ServedFlag]
    traits: list[TraitOutput]
    # Feature name → its running experiment's outcome, for served flags under one.
    experiments: dict[str, ExperimentOutcome] = field(default_factory=dict)
    # The names of the segments the identity matched, as the engine listed them (it finds
    # them anyway while evaluating; the integrations recording context send them).
    segments: tuple[str, ...] = ()

    def only(self, feature: str) -> IdentifyResult:
        """The same result with only `feature`'s flag; NotFound when it is not served."""
        flag = find_flag(self.served, feature)
        outcome = self.experiments.get(feature)
        return IdentifyResult(
            self.identifier,
            self.identity_id,
            [flag],
            self.traits,
            {} if outcome is None else {feature: outcome},
            self.segments,
        )

    def exposures(self) -> list[ExperimentOutcome]:
        """The experiments this evaluation exposes the identity to: in the experiment, with a
        variant, and the flag enabled (the official SDK's `get_experiment_flag` sends an
        exposure on the same terms)."""
        return [
            o
            for o in self.experiments.values()
            if o.in_experiment and o.enabled and o.variant is not None
        ]


def find_flag(served: Sequence[ServedFlag], feature: str) -> ServedFlag:
    for flag in served:
        if flag.name == feature:
            return flag
    raise NotFound("Given feature not found")


def environment_flags(snapshot: Snapshot, *, is_server: bool) -> list[ServedFlag]:
    """The environment defaults: no segment is evaluated without an identity (§2.1), so each
    reason is STATIC, as the official SDK's local `get_environment_flags` says."""
    return [
        _served(flag, None, None)
        for flag in snapshot.compiled.resolve_environment().flags
        if snapshot.visible(flag.name, flag.enabled, is_server=is_server)
    ]


def environment_flag(snapshot: Snapshot, feature: str, *, is_server: bool) -> ServedFlag:
    """One environment default, by feature name; NotFound when it is not served."""
    return find_flag(environment_flags(snapshot, is_server=is_server), feature)


def evaluate(snapshot: Snapshot, prepared: PreparedIdentity, *, is_server: bool) -> IdentifyResult:
    """Every flag the identity gets, as the SDK API returns them (contract §3.1, §5.7)."""
    identifier, identity_id, traits = prepared.identifier, prepared.identity_id, prepared.traits
    outcome = snapshot.compiled.resolve_identity(
        {
            "identifier": identifier,
            "key": f"{snapshot.api_key}_{identifier}",
            "traits": {t.key: t.value for t in traits},
        },
        () if identity_id is None else snapshot.identity_overrides.get(identity_id, ()),
    )
    served = []
    experiments: dict[str, ExperimentOutcome] = {}
    for flag in outcome.flags:
        name = flag.name
        if not snapshot.visible(name, flag.enabled, is_server=is_server):
            continue
        multivariate = snapshot.features[name].type == "MULTIVARIATE"
        served_flag = _served(flag, identity_id, multivariate)
        served.append(served_flag)
        experiment = snapshot.experiments.get(name)
        if experiment is not None:
            experiments[name] = ExperimentOutcome(
                experiment,
                multivariate and _in_experiment(experiment, outcome.segments, flag),
                served_flag.variant,
                flag.enabled,
            )
    segments = tuple(s.name for s in outcome.segments)
    return IdentifyResult(identifier, identity_id, served, traits, experiments, segments)


def _served(flag: FlagOutcome, identity_id: int | None, multivariate: bool | None) -> ServedFlag:
    """A flag as served; `multivariate` is None for environment flags, which carry no variant.

    The variant is the engine's, as the SDK's local evaluation of Ensign's document gives it:
    the chosen option's key, `control` when the state served has options but none was chosen,
    and None when it has none (a segment's or an identity's override without options), as for
    any other feature."""
    source = flag.source
    variant = flag.variant if multivariate else None
    # `feature_segment` names the segment's state only when it served its plain value, as the
    # reference does: a segment override's split reports the option, not the segment.
    segment_state = (
        flag.state_id
        if source is OverrideSource.SEGMENT and flag.kind is ReasonKind.TARGETING_MATCH
        else None
    )
    return ServedFlag(
        flag.name,
        flag.enabled,
        flag.value,
        flag.state_id,
        identity_id if source is OverrideSource.IDENTITY else None,
        segment_state,
        variant,
        flag.reason,
        flag.kind,
        source,
        flag.segment,
    )


def _in_experiment(
    experiment: ExperimentInfo, matched: tuple[MatchedSegment, ...], flag: FlagOutcome
) -> bool:
    # Only the feature's own split puts an identity in it: not an identity's or a segment's
    # override, nor a segment override's split.
    if flag.source is not OverrideSource.DEFAULT:
        return False
    if experiment.segment_id is None:
        return True
    return any(s.metadata.get("id") == experiment.segment_id for s in matched)
