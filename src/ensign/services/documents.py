"""The Flagsmith environment document (contract §4) and the engine context, built from rows.

Both are made from the same rows by the same rules, so that remote evaluation and an SDK's
local evaluation of the document agree for every identity.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ensign.services.values import decode_flag_value
from ensign.storage.models import Feature, FeatureState, MultivariateOption
from ensign.storage.repositories import EnvironmentRows


def isoformat(moment: dt.datetime) -> str:
    """ISO 8601 with `+00:00`, as the reference renders document timestamps."""
    return moment.astimezone(dt.UTC).isoformat()


def drf_datetime(moment: dt.datetime) -> str:
    """The `2021-11-29T17:16:25.449058Z` form the reference's REST responses use."""
    text = moment.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def feature_type(feature: Feature) -> str:
    return "MULTIVARIATE" if feature.options else "STANDARD"


def feature_state_key(state: FeatureState) -> str:
    """The key that seeds multivariate hashing: the seed when there is one, else the uuid."""
    return str(state.hash_seed) if state.hash_seed else state.uuid


def variant_priority(hash_id: int | None, value_uuid: str) -> int:
    return hash_id if hash_id else uuid.UUID(value_uuid).int


def option_value(option: MultivariateOption) -> Any:
    return decode_flag_value(option.value_type, option.value_text)


def build_document(rows: EnvironmentRows) -> dict[str, Any]:
    """The environment document an SDK in local-evaluation mode downloads."""
    env, project, organisation = rows.environment, rows.project, rows.organisation
    features = {f.id: f for f in rows.features}
    options = {o.id: o for f in rows.features for o in f.options}
    defaults: list[dict[str, Any]] = []
    by_segment: dict[int, list[dict[str, Any]]] = {}
    by_identity: dict[int, list[dict[str, Any]]] = {}
    for state in rows.feature_states:
        feature = features.get(state.feature_id)
        if feature is None:
            continue
        document_state = _document_feature_state(state, feature, options)
        if state.identity_id is not None:
            by_identity.setdefault(state.identity_id, []).append(document_state)
        elif state.segment_id is not None:
            by_segment.setdefault(state.segment_id, []).append(document_state)
        else:
            defaults.append(document_state)
    segments = [
        {
            "id": segment.id,
            "name": segment.name,
            "rules": [_document_rule(rule) for rule in segment.rules],
            "feature_states": by_segment.get(segment.id, []),
        }
        for segment in rows.segments
        # A feature-specific segment matters only where it overrides something.
        if segment.feature_id is None or segment.id in by_segment
    ]
    identity_overrides = []
    if env.use_identity_overrides_in_local_eval:
        for identity_id, states in sorted(by_identity.items()):
            identifier = rows.identifiers.get(identity_id)
            if identifier is None:
                continue
            identity_overrides.append(
                {
                    "identifier": identifier,
                    "environment_api_key": env.api_key,
                    "composite_key": f"{env.api_key}_{identifier}",
                    "identity_uuid": str(uuid.UUID(int=identity_id)),
                    "django_id": identity_id,
                    "identity_traits": [],
                    "identity_features": states,
                }
            )
    return {
        "id": env.id,
        "api_key": env.api_key,
        "name": env.name,
        "updated_at": isoformat(env.updated_at),
        "allow_client_traits": env.allow_client_traits,
        "hide_sensitive_data": env.hide_sensitive_data,
        "hide_disabled_flags": env.hide_disabled_flags,
        "use_identity_composite_key_for_hashing": env.use_identity_composite_key_for_hashing,
        "use_identity_overrides_in_local_eval": env.use_identity_overrides_in_local_eval,
        "feature_states": defaults,
        "identity_overrides": identity_overrides,
        "project": {
            "id": project.id,
            "name": project.name,
            "hide_disabled_flags": project.hide_disabled_flags,
            "enable_realtime_updates": project.enable_realtime_updates,
            "server_key_only_feature_ids": [f.id for f in rows.features if f.is_server_key_only],
            "organisation": {
                "id": organisation.id,
                "name": organisation.name,
                "feature_analytics": organisation.feature_analytics,
                "stop_serving_flags": organisation.stop_serving_flags,
                "persist_trait_data": organisation.persist_trait_data,
            },
            "segments": segments,
        },
    }


def _document_feature_state(
    state: FeatureState, feature: Feature, options: dict[int, MultivariateOption]
) -> dict[str, Any]:
    mv_values = []
    for mv in state.mv_values:
        option = options.get(mv.option_id)
        if option is None:
            continue
        mv_values.append(
            {
                "id": mv.hash_id,
                "mv_fs_value_uuid": mv.uuid,
                "percentage_allocation": mv.percentage_allocation,
                "multivariate_feature_option": {
                    "id": option.id,
                    "value": option_value(option),
                    "key": option.key,
                },
            }
        )
    return {
        "django_id": state.hash_seed,
        "featurestate_uuid": state.uuid,
        "enabled": state.enabled,
        "feature": {"id": feature.id, "name": feature.name, "type": feature_type(feature)},
        "feature_state_value": decode_flag_value(state.value_type, state.value_text),
        "feature_segment": None if state.segment_id is None else {"priority": state.priority},
        "multivariate_feature_state_values": mv_values,
    }


def _document_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": rule.get("type", "ALL"),
        "rules": [_document_rule(r) for r in rule.get("rules", [])],
        "conditions": [
            {"operator": c.get("operator"), "property_": c.get("property"), "value": c.get("value")}
            for c in rule.get("conditions", [])
        ],
    }


def _context_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": rule.get("type", "ALL"),
        "rules": [_context_rule(r) for r in rule.get("rules", [])],
        "conditions": [
            {
                "operator": c.get("operator"),
                "property": c.get("property") or "",
                "value": c.get("value"),
            }
            for c in rule.get("conditions", [])
        ],
    }


def build_context(rows: EnvironmentRows) -> dict[str, Any]:
    """The engine context for remote evaluation, without an identity.

    It follows the SDK's document mapping (contract §2.10) field for field, except that each
    feature context's metadata also names the feature state it came from (`fs`), so that
    responses can carry the state's id. Identity overrides are applied after evaluation.
    """
    features = {f.id: f for f in rows.features}
    options = {o.id: o for f in rows.features for o in f.options}
    context_features: dict[str, Any] = {}
    overrides: dict[int, list[dict[str, Any]]] = {}
    for state in rows.feature_states:
        feature = features.get(state.feature_id)
        if feature is None or state.identity_id is not None:
            continue
        feature_context = _feature_context(state, feature, options)
        if state.segment_id is None:
            context_features[feature.name] = feature_context
        else:
            feature_context["priority"] = state.priority
            overrides.setdefault(state.segment_id, []).append(feature_context)
    segments: dict[str, Any] = {}
    for segment in rows.segments:
        if segment.id not in overrides:
            # Only segments that override something can change a flag.
            continue
        segments[str(segment.id)] = {
            "key": str(segment.id),
            "name": segment.name,
            "rules": [_context_rule(rule) for rule in segment.rules],
            "overrides": overrides[segment.id],
            "metadata": {"id": segment.id, "source": "api"},
        }
    return {
        "environment": {"key": rows.environment.api_key, "name": rows.environment.name},
        "features": context_features,
        "segments": segments,
    }


def _feature_context(
    state: FeatureState, feature: Feature, options: dict[int, MultivariateOption]
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "key": feature_state_key(state),
        "name": feature.name,
        "enabled": state.enabled,
        "value": decode_flag_value(state.value_type, state.value_text),
        "metadata": {"id": feature.id, "fs": state.id},
    }
    variants = []
    for mv in state.mv_values:
        option = options.get(mv.option_id)
        if option is None:
            continue
        variant: dict[str, Any] = {
            "value": option_value(option),
            "weight": mv.percentage_allocation,
            "priority": variant_priority(mv.hash_id, mv.uuid),
        }
        if option.key is not None:
            variant["key"] = option.key
        variants.append(variant)
    if variants:
        context["variants"] = variants
    return context
