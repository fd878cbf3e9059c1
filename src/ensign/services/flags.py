"""The flags an SDK call is served, as plain values: the environment's defaults, or an
identity's evaluation with its overrides (contract §2.1, §3.1, §5.7).

`web.sdk.wire` turns them into Flagsmith's flag objects; the outbox and the dashboard read
them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ensign.errors import NotFound
from ensign.services.identities import PreparedIdentity, TraitOutput
from ensign.services.snapshots import ExperimentInfo, Snapshot

# The SDKs map each identity override to a segment of this name (flag-engine 11).
IDENTITY_OVERRIDE_REASON = "TARGETING_MATCH; segment=identity_overrides"


def fallback_reason(snapshot: Snapshot, name: str) -> str:
    """An environment default's reason, as flag-engine 11 says it: `DEFAULT` where a segment
    (or an identity override the document carries) could have changed the flag, `STATIC`
    where nothing could."""
    return "DEFAULT" if name in snapshot.targeted_features else "STATIC"


class ServedFlag(NamedTuple):
    """One flag as returned to the caller. (A named tuple: fifty are made per identify call,
    and a frozen dataclass costs several times more.)"""

    name: str
    enabled: bool
    value: Any
    # The feature state served: the identity's override, a segment's, or the default.
    state_id: int
    # The identity whose override this is.
    identity_id: int | None
    # The segment override's state id, when a segment decided the flag.
    feature_segment: int | None
    # The multivariate variant, for multivariate features.
    variant: str | None
    # Why: the string the official SDK's local evaluation (flag-engine 11) gives the same
    # identity, so that remote and local evaluation report the same reason.
    reason: str


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
    """The environment defaults: no segment is evaluated without an identity (§2.1)."""
    return [
        ServedFlag(
            name, enabled, value, state_id, None, None, None, fallback_reason(snapshot, name)
        )
        for name, state_id, enabled, value in snapshot.defaults
        if snapshot.visible(name, enabled, is_server=is_server)
    ]


def environment_flag(snapshot: Snapshot, feature: str, *, is_server: bool) -> ServedFlag:
    """One environment default, by feature name; NotFound when it is not served."""
    return find_flag(environment_flags(snapshot, is_server=is_server), feature)


def evaluate(snapshot: Snapshot, prepared: PreparedIdentity, *, is_server: bool) -> IdentifyResult:
    """Every flag the identity gets, as the SDK API returns them (contract §3.1, §5.7)."""
    identifier, identity_id, traits = prepared.identifier, prepared.identity_id, prepared.traits
    result = snapshot.compiled.evaluate_identity(
        {
            "identifier": identifier,
            "key": f"{snapshot.api_key}_{identifier}",
            "traits": {t.key: t.value for t in traits},
        }
    )
    evaluated = result["flags"]
    overrides = {}
    if identity_id is not None:
        overrides = {o.feature_name: o for o in snapshot.identity_overrides.get(identity_id, ())}
    served = []
    experiments: dict[str, ExperimentOutcome] = {}
    for name in sorted(evaluated):
        flag = evaluated[name]
        feature = snapshot.features[name]
        override = overrides.get(name)
        if override is not None:
            enabled, value = override.enabled, override.value
            variant = "control" if feature.type == "MULTIVARIATE" else None
            state_id, segment_state = override.state_id, None
            owner = identity_id
            reason = IDENTITY_OVERRIDE_REASON
        else:
            enabled, value = flag["enabled"], flag["value"]
            if feature.type != "MULTIVARIATE":
                variant = None
            elif flag["reason"].startswith("SPLIT"):
                variant = flag["variant"]
            else:
                variant = "control"
            state_id = flag["metadata"]["fs"]
            segment_state = state_id if flag["reason"].startswith("TARGETING_MATCH") else None
            owner = None
            reason = flag["reason"]
            if reason == "DEFAULT":
                # Ensign's engine follows engine 10.2, which has no `STATIC`.
                reason = fallback_reason(snapshot, name)
        if not snapshot.visible(name, enabled, is_server=is_server):
            continue
        served.append(
            ServedFlag(name, enabled, value, state_id, owner, segment_state, variant, reason)
        )
        experiment = snapshot.experiments.get(name)
        if experiment is not None:
            experiments[name] = ExperimentOutcome(
                experiment,
                feature.type == "MULTIVARIATE"
                and _in_experiment(experiment, result["segments"], override is not None, flag),
                variant,
                enabled,
            )
    matched = result["segments"]
    segments = tuple(s["name"] for s in matched) if matched else ()
    return IdentifyResult(identifier, identity_id, served, traits, experiments, segments)


def _in_experiment(
    experiment: ExperimentInfo, matched: list[Any], overridden: bool, flag: Any
) -> bool:
    if overridden or flag["metadata"]["fs"] != experiment.default_state_id:
        return False
    if experiment.segment_id is None:
        return True
    return any(s.get("metadata", {}).get("id") == experiment.segment_id for s in matched)
