"""Structured flag results: what decided each flag, as fields rather than a reason string.

The conformance API (:func:`ensign.engine.evaluate`) answers flag-engine 10.2's wire dicts.
The server asks the compiled environment for these instead, so that nothing above the engine
parses a reason: the engine applies identity overrides, chooses ``STATIC`` or ``DEFAULT`` as
flag-engine 11 does, and composes the wire reason string once, when it compiles.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ensign.engine.mapping import IDENTITY_OVERRIDES_SEGMENT

# The feature context metadata key Ensign's server stores its feature state id under.
STATE_ID_METADATA_KEY = "fs"


class ReasonKind(StrEnum):
    """The OpenFeature part of a reason (its value is the reason's first word).

    A ``StrEnum`` so that served flags holding one still hash and compare as fast as text.
    """

    # An environment default that nothing in the environment could change.
    STATIC = "STATIC"
    # An environment default of a feature some segment (or identity override) targets.
    DEFAULT = "DEFAULT"
    # A segment's or the identity's override, not split between variants.
    TARGETING_MATCH = "TARGETING_MATCH"
    # A multivariate option chosen by the identity's percentage bucket.
    SPLIT = "SPLIT"


class OverrideSource(StrEnum):
    """Whose feature state was served."""

    DEFAULT = "default"
    SEGMENT = "segment"
    IDENTITY = "identity"


@dataclass(frozen=True, slots=True)
class IdentityOverride:
    """One of the identity's own feature states, given to the engine per evaluation."""

    feature: str
    enabled: bool
    value: Any
    state_id: int | None = None


@dataclass(frozen=True, slots=True)
class FlagOutcome:
    """One evaluated flag. Shared between evaluations: never mutate it (nor its value)."""

    name: str
    enabled: bool
    value: Any
    kind: ReasonKind
    source: OverrideSource
    # The name of the segment whose override was served (``identity_overrides`` for the
    # identity's own), else None.
    segment: str | None
    # The chosen option's percentage weight when ``kind`` is SPLIT, else None.
    weight: float | None
    # The chosen option's key, ``"control"`` when variants exist but none was chosen, else None.
    variant: str | None
    # The feature state id the context's metadata carried (``metadata.fs``), if any.
    state_id: int | None
    # The reason on the wire, exactly as flag-engine 11 writes it.
    reason: str


@dataclass(frozen=True, slots=True)
class MatchedSegment:
    """A segment the identity matched; ``metadata`` is shared with the context (read-only)."""

    name: str
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """An evaluation: every flag, sorted by feature name, and the segments matched."""

    flags: tuple[FlagOutcome, ...]
    segments: tuple[MatchedSegment, ...]


def wire_reason(kind: ReasonKind, segment: str | None = None, weight: float | None = None) -> str:
    """The reason string flag-engine 11 gives a flag so decided."""
    if kind is ReasonKind.SPLIT:
        # Python's float formatting, as the SDKs': `30.0` and `30` differ on the wire.
        return f"SPLIT; weight={weight}"
    if kind is ReasonKind.TARGETING_MATCH:
        return f"TARGETING_MATCH; segment={segment}"
    return kind.value


def identity_override_outcome(override: IdentityOverride) -> FlagOutcome:
    """The flag an identity override serves: like a segment override, never split."""
    return FlagOutcome(
        name=override.feature,
        enabled=override.enabled,
        value=override.value,
        kind=ReasonKind.TARGETING_MATCH,
        source=OverrideSource.IDENTITY,
        segment=IDENTITY_OVERRIDES_SEGMENT,
        weight=None,
        variant=None,
        state_id=override.state_id,
        reason=_IDENTITY_OVERRIDE_REASON,
    )


_IDENTITY_OVERRIDE_REASON = wire_reason(ReasonKind.TARGETING_MATCH, IDENTITY_OVERRIDES_SEGMENT)
