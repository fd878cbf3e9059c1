"""The Flagsmith environment document (contract §4), built from rows, and the engine context.

The context is the document mapped by the engine's mapper, the one local evaluation uses, so
remote evaluation and an SDK's local evaluation of the document agree for every identity.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ensign.engine.context import EvaluationContext, SegmentContext
from ensign.engine.mapping import document_to_context
from ensign.services.values import decode_flag_value
from ensign.storage.environments import EnvironmentRows
from ensign.storage.models import Feature, FeatureState, MultivariateOption


def isoformat(moment: dt.datetime) -> str:
    """ISO 8601 with `+00:00`, as the reference renders document timestamps."""
    return moment.astimezone(dt.UTC).isoformat()


def drf_datetime(moment: dt.datetime) -> str:
    """The `2021-11-29T17:16:25.449058Z` form the reference's REST responses use."""
    text = moment.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def feature_type(feature: Feature) -> str:
    return "MULTIVARIATE" if feature.options else "STANDARD"


def option_value(option: MultivariateOption) -> Any:
    return decode_flag_value(option.value_type, option.value_text)


def experiment_segment_ids(rows: EnvironmentRows) -> frozenset[int]:
    """The segments that running experiments are limited to."""
    return frozenset(e.segment_id for e in rows.experiments if e.segment_id is not None)


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
    experimental = experiment_segment_ids(rows)
    segments = [
        {
            "id": segment.id,
            "name": segment.name,
            "rules": [document_rule(rule) for rule in segment.rules],
            "feature_states": by_segment.get(segment.id, []),
        }
        for segment in rows.segments
        # A feature-specific segment matters only where it overrides something, or where a
        # running experiment is limited to it.
        if segment.feature_id is None or segment.id in by_segment or segment.id in experimental
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


def document_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as the document carries it (conditions name their `property_`)."""
    return {
        "type": rule.get("type", "ALL"),
        "rules": [document_rule(r) for r in rule.get("rules", [])],
        "conditions": [
            {"operator": c.get("operator"), "property_": c.get("property"), "value": c.get("value")}
            for c in rule.get("conditions", [])
        ],
    }


def build_context(rows: EnvironmentRows, document: dict[str, Any]) -> EvaluationContext:
    """The engine context for remote evaluation, without an identity.

    It is the environment document mapped by the engine's mapper, the one SDKs' local
    evaluation follows, so that both bucket every identity alike. The server then differs in
    three ways that change no flag: identity overrides are left out (the snapshot applies them
    per identity), segments that override nothing are dropped (they cannot change a flag)
    unless an experiment is limited to them, and
    each feature context's metadata also names the feature state it came from (`fs`), so that
    responses can carry the state's id.
    """
    context = document_to_context({**document, "identity_overrides": []})
    # One state per feature and scope (the table's unique constraint), so this is exact.
    state_ids = {
        (state.feature_id, state.segment_id): state.id
        for state in rows.feature_states
        if state.identity_id is None
    }
    for feature in context.get("features", {}).values():
        feature["metadata"]["fs"] = state_ids[(feature["metadata"]["id"], None)]
    segments: dict[str, SegmentContext] = {}
    experimental = experiment_segment_ids(rows)
    for key, segment in context.get("segments", {}).items():
        overrides = segment.get("overrides") or []
        segment_id = segment["metadata"]["id"]
        # A segment that a running experiment is limited to stays, so that the engine's result
        # says whether the identity matched it.
        if not overrides and segment_id not in experimental:
            continue
        for override in overrides:
            override["metadata"]["fs"] = state_ids[(override["metadata"]["id"], segment_id)]
        segments[key] = segment
    context["segments"] = segments
    return context
