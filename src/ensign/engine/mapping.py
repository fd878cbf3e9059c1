"""Environment document → evaluation context, exactly as Flagsmith SDK 6.x local evaluation.

Local-evaluation SDKs build their engine context from ``GET /environment-document/`` this way.
The server maps its own documents with the same function so that remote and local evaluation
bucket identically (feature keys, variant order, identity-override precedence).
"""

import hashlib
import json
import uuid
from typing import Any

from ensign.engine.context import (
    ConditionContext,
    EvaluationContext,
    FeatureContext,
    RuleContext,
    SegmentContext,
    VariantContext,
)
from ensign.engine.errors import EngineError

IDENTITY_OVERRIDES_SEGMENT = "identity_overrides"
# Identity overrides must beat every segment override, whose priorities are finite.
_IDENTITY_OVERRIDE_PRIORITY = float("-inf")


def document_to_context(document: dict[str, Any]) -> EvaluationContext:
    """Map a Flagsmith environment document to an evaluation context (no identity).

    Raises :class:`~ensign.engine.EngineError` naming the field when the document lacks
    something the SDK requires.
    """
    context: EvaluationContext = {
        "environment": {
            "key": _field(document, "api_key", "document"),
            "name": _field(document, "name", "document"),
        },
        "features": {},
        "segments": {},
    }
    features = context["features"]
    for index, state in enumerate(_field(document, "feature_states", "document")):
        feature = _feature_state(state, f"feature_states[{index}]")
        features[feature["name"]] = feature

    segments = context["segments"]
    project = _field(document, "project", "document")
    for index, segment in enumerate(_field(project, "segments", "project")):
        where = f"project.segments[{index}]"
        segment_id = _field(segment, "id", where)
        key = str(segment_id)
        segments[key] = {
            "key": key,
            "name": _field(segment, "name", where),
            "rules": [
                _rule(rule, f"{where}.rules[{position}]")
                for position, rule in enumerate(_field(segment, "rules", where))
            ],
            "overrides": [
                _feature_state(state, f"{where}.feature_states[{position}]")
                for position, state in enumerate(segment.get("feature_states") or [])
            ],
            "metadata": {"id": segment_id, "source": "api"},
        }
    segments.update(_identity_override_segments(document.get("identity_overrides") or []))
    return context


def environment_context_for_flags(context: EvaluationContext) -> EvaluationContext:
    """The context SDKs use for environment flags: the same, with segments left out."""
    return {key: value for key, value in context.items() if key != "segments"}  # type: ignore[return-value]


def _feature_state(state: Any, where: str) -> FeatureContext:
    feature = _field(state, "feature", where)
    # The key seeds multivariate hashing: the stable django id, else the state's uuid.
    django_id = state.get("django_id")
    key = str(django_id) if django_id else state.get("featurestate_uuid")
    if key is None:
        raise EngineError(f"{where}.featurestate_uuid: required when django_id is empty")
    context: FeatureContext = {
        "key": key,
        "name": _field(feature, "name", f"{where}.feature"),
        "enabled": _field(state, "enabled", where),
        "value": _field(state, "feature_state_value", where),
        "metadata": {"id": _field(feature, "id", f"{where}.feature")},
    }
    variants = [
        _variant(value, f"{where}.multivariate_feature_state_values[{index}]")
        for index, value in enumerate(state.get("multivariate_feature_state_values") or [])
    ]
    if variants:
        context["variants"] = variants
    feature_segment = state.get("feature_segment")
    if feature_segment is not None:
        context["priority"] = feature_segment.get("priority")
    return context


def _variant(value: Any, where: str) -> VariantContext:
    option = _field(value, "multivariate_feature_option", where)
    # Variants are ordered by the mv value's id; older documents only have its uuid.
    value_id = value.get("id")
    if value_id:
        priority = value_id
    else:
        try:
            priority = uuid.UUID(str(_field(value, "mv_fs_value_uuid", where))).int
        except ValueError as exc:
            raise EngineError(f"{where}.mv_fs_value_uuid: not a UUID") from exc
    variant: VariantContext = {
        "value": _field(option, "value", f"{where}.multivariate_feature_option"),
        "weight": _field(value, "percentage_allocation", where),
        "priority": priority,
    }
    if option.get("key") is not None:
        variant["key"] = option["key"]
    return variant


def _rule(rule: Any, where: str) -> RuleContext:
    return {
        "type": _field(rule, "type", where),
        "conditions": [
            _condition(condition, f"{where}.conditions[{index}]")
            for index, condition in enumerate(rule.get("conditions") or [])
        ],
        "rules": [
            _rule(subrule, f"{where}.rules[{index}]")
            for index, subrule in enumerate(rule.get("rules") or [])
        ],
    }


def _condition(condition: Any, where: str) -> ConditionContext:
    return {
        "property": condition.get("property_") or "",
        "operator": _field(condition, "operator", where),
        "value": _field(condition, "value", where),
    }


def _identity_override_segments(identities: list[Any]) -> dict[str, SegmentContext]:
    """One synthetic segment per distinct set of overrides, matching its identifiers."""
    groups: dict[frozenset[tuple[Any, ...]], list[str]] = {}
    for index, identity in enumerate(identities):
        where = f"identity_overrides[{index}]"
        overrides = frozenset(
            _override_signature(state, f"{where}.identity_features[{position}]")
            for position, state in enumerate(_field(identity, "identity_features", where))
        )
        groups.setdefault(overrides, []).append(_field(identity, "identifier", where))
    segments: dict[str, SegmentContext] = {}
    for overrides, identifiers in groups.items():
        ordered = sorted(overrides, key=_by_feature)
        key = _group_key(ordered)
        segments[key] = {
            "key": key,
            "name": IDENTITY_OVERRIDES_SEGMENT,
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [
                        {
                            "property": "$.identity.identifier",
                            "operator": "IN",
                            "value": identifiers,
                        }
                    ],
                }
            ],
            "overrides": [
                {
                    "key": "",
                    "name": name,
                    "enabled": enabled,
                    "value": value,
                    "priority": _IDENTITY_OVERRIDE_PRIORITY,
                    "metadata": {"id": feature_id},
                }
                for feature_id, name, enabled, value in ordered
            ],
            "metadata": {"source": IDENTITY_OVERRIDES_SEGMENT},
        }
    return segments


def _group_key(ordered: list[tuple[Any, ...]]) -> str:
    # The SDK keys these segments by Python's per-process salted hash(); a digest of the
    # same overrides is stable across processes. Nothing hashes on it: no split conditions.
    text = json.dumps(ordered, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _override_signature(state: Any, where: str) -> tuple[Any, ...]:
    feature = _field(state, "feature", where)
    return (
        _field(feature, "id", f"{where}.feature"),
        _field(feature, "name", f"{where}.feature"),
        _field(state, "enabled", where),
        _field(state, "feature_state_value", where),
    )


def _by_feature(signature: tuple[Any, ...]) -> Any:
    return signature[0]


def _field(container: Any, name: str, where: str) -> Any:
    if not isinstance(container, dict) or name not in container:
        raise EngineError(f"{where}.{name}: required")
    return container[name]
