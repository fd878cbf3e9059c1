"""Why an identity gets each flag, and whether someone would match a segment: the dashboard's
read-only views of the engine, computed exactly as the SDK API would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ensign.engine import OverrideSource, ReasonKind, evaluate
from ensign.engine.mapping import document_to_context
from ensign.services.documents import document_rule
from ensign.services.flags import evaluate as evaluate_identity
from ensign.services.identities import PreparedIdentity, TraitOutput
from ensign.services.snapshots import Snapshot
from ensign.services.values import TraitValue

DEFAULT = "default"
SEGMENT = "segment"
SPLIT = "split"
IDENTITY_OVERRIDE = "identity override"


@dataclass(frozen=True)
class ExplainedFlag:
    """One flag as the SDK receives it, with where its state came from."""

    name: str
    enabled: bool
    value: Any
    source: str
    detail: str


def explain_identity_flags(
    snapshot: Snapshot,
    *,
    identifier: str,
    identity_id: int | None,
    traits: dict[str, TraitValue],
) -> list[ExplainedFlag]:
    """The flags a server-key SDK would receive for this identity, each with its reason:
    the identity's override, a segment's override, a percentage split, or the default."""
    prepared = PreparedIdentity(
        identifier,
        identity_id,
        [TraitOutput(None, key, value, False) for key, value in traits.items()],
    )
    served = evaluate_identity(snapshot, prepared, is_server=True)
    explained = []
    for flag in served.served:
        if flag.source is OverrideSource.IDENTITY:
            source, detail = IDENTITY_OVERRIDE, "set for this identity"
        elif flag.kind is ReasonKind.TARGETING_MATCH:
            source, detail = SEGMENT, flag.segment or ""
        elif flag.kind is ReasonKind.SPLIT:
            source, detail = SPLIT, f"variant {flag.variant or ''}".strip()
        else:
            source, detail = DEFAULT, "environment default"
        explained.append(ExplainedFlag(flag.name, flag.enabled, flag.value, source, detail))
    return explained


def segment_matches(
    rules: Sequence[dict[str, Any]],
    *,
    segment_key: str,
    environment_key: str,
    identifier: str,
    traits: dict[str, TraitValue],
) -> bool:
    """Whether an identity with these traits would be in a segment with these (stored) rules.

    `segment_key` must be the segment's id as text: percentage splits hash on it."""
    # Mapped as a one-segment document, by the same mapper as every served environment.
    context = document_to_context(
        {
            "api_key": environment_key,
            "name": environment_key,
            "feature_states": [],
            "project": {
                "segments": [
                    {
                        "id": segment_key,
                        "name": segment_key,
                        "rules": [document_rule(rule) for rule in rules],
                    }
                ]
            },
        }
    )
    context["identity"] = {
        "identifier": identifier,
        "key": f"{environment_key}_{identifier}",
        "traits": dict(traits),
    }
    return bool(evaluate(context)["segments"])
