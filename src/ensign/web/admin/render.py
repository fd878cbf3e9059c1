"""Admin API responses: rows rendered with the reference's field names (contract §7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ensign.integrations.common import CommonSettings
from ensign.services.admin.environments import EvaluationCount
from ensign.services.documents import drf_datetime, feature_type
from ensign.services.integrations import DeliveryStatus, schema_of
from ensign.services.values import decode_flag_value, decode_trait_value
from ensign.storage.models import (
    AdminApiKey,
    AuditLog,
    DeliveryAttempt,
    Environment,
    Experiment,
    Feature,
    FeatureState,
    Identity,
    IntegrationConfig,
    MultivariateOption,
    Organisation,
    Project,
    Segment,
    ServerKey,
    Tag,
    Trait,
)


def moment(value: dt.datetime | None) -> str | None:
    return None if value is None else drf_datetime(value)


def organisation(row: Organisation) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "persist_trait_data": row.persist_trait_data,
        "stop_serving_flags": row.stop_serving_flags,
        "feature_analytics": row.feature_analytics,
        "created_date": moment(row.created_at),
    }


def master_key(row: AdminApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "created": moment(row.created_at),
        "expiry_date": moment(row.expires_at),
        "revoked": not row.active,
        "active": row.active,
        "is_admin": True,
        "organisation": row.organisation_id,
    }


def project(row: Project) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "organisation": row.organisation_id,
        "hide_disabled_flags": row.hide_disabled_flags,
        "enable_realtime_updates": row.enable_realtime_updates,
        "created_date": moment(row.created_at),
    }


def environment(row: Environment) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "api_key": row.api_key,
        "project": row.project_id,
        "description": row.description,
        "allow_client_traits": row.allow_client_traits,
        "hide_sensitive_data": row.hide_sensitive_data,
        "hide_disabled_flags": row.hide_disabled_flags,
        "use_identity_composite_key_for_hashing": row.use_identity_composite_key_for_hashing,
        "use_identity_overrides_in_local_eval": row.use_identity_overrides_in_local_eval,
        "created_date": moment(row.created_at),
        "updated_at": moment(row.updated_at),
    }


def server_key(row: ServerKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "name": row.name,
        "active": row.active,
        "created_at": moment(row.created_at),
        "expires_at": moment(row.expires_at),
    }


def option(row: MultivariateOption) -> dict[str, Any]:
    value = decode_flag_value(row.value_type, row.value_text)
    return {
        "id": row.id,
        "feature": row.feature_id,
        "type": row.value_type or "unicode",
        "value": value,
        "string_value": value if isinstance(value, str) else None,
        "integer_value": value if isinstance(value, int) and not isinstance(value, bool) else None,
        "boolean_value": value if isinstance(value, bool) else None,
        "key": row.key,
        "default_percentage_allocation": row.default_percentage_allocation,
    }


def feature(row: Feature) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": feature_type(row),
        "description": row.description,
        "initial_value": row.initial_value,
        "default_enabled": row.default_enabled,
        "is_server_key_only": row.is_server_key_only,
        "tags": [t.id for t in row.tags],
        "multivariate_options": [option(o) for o in row.options],
        "project": row.project_id,
        "created_date": moment(row.created_at),
    }


def tag(row: Tag) -> dict[str, Any]:
    return {"id": row.id, "label": row.label, "color": row.color, "project": row.project_id}


def feature_state(row: FeatureState) -> dict[str, Any]:
    return {
        "id": row.id,
        "uuid": row.uuid,
        "feature": row.feature_id,
        "environment": row.environment_id,
        "identity": row.identity_id,
        # Ensign keeps a segment override's ordering on its feature state, so the state's id
        # doubles as the reference's feature-segment id.
        "feature_segment": row.id if row.segment_id is not None else None,
        "segment": row.segment_id,
        "priority": row.priority,
        "enabled": row.enabled,
        "feature_state_value": decode_flag_value(row.value_type, row.value_text),
        "multivariate_feature_state_values": [
            {
                "id": mv.id,
                "uuid": mv.uuid,
                "multivariate_feature_option": mv.option_id,
                "percentage_allocation": mv.percentage_allocation,
            }
            for mv in row.mv_values
        ],
        "created_at": moment(row.created_at),
        "updated_at": moment(row.updated_at),
    }


def segment(row: Segment) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "project": row.project_id,
        "feature": row.feature_id,
        "rules": row.rules,
        "managed_by": row.managed_by,
        "created_date": moment(row.created_at),
    }


def experiment(row: Experiment) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "feature": row.feature_id,
        "segment": row.segment_id,
        "running": row.running,
        "started_at": moment(row.started_at),
        "stopped_at": moment(row.stopped_at),
    }


def identity(row: Identity) -> dict[str, Any]:
    return {
        "id": row.id,
        "identifier": row.identifier,
        "environment": row.environment_id,
        "created_date": moment(row.created_at),
    }


def trait(row: Trait) -> dict[str, Any]:
    return {
        "id": row.id,
        "trait_key": row.key,
        "trait_value": decode_trait_value(row.value_type, row.value_text),
        "created_date": moment(row.created_at),
    }


def audit_entry(row: AuditLog) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_date": moment(row.created_at),
        "log": row.log,
        "author": row.actor,
        "action": row.action,
        "related_object_type": row.resource_type,
        "related_object_id": row.resource_id,
        "project": row.project_id,
        "environment": row.environment_id,
        "before": row.before,
        "after": row.after,
    }


def evaluation_counts(counts: list[EvaluationCount], *, days: int) -> dict[str, Any]:
    totals: dict[str, int] = {}
    for item in counts:
        totals[item.feature] = totals.get(item.feature, 0) + item.count
    return {
        "days": days,
        "totals": totals,
        "results": [
            {"feature": c.feature, "day": c.day.isoformat(), "count": c.count} for c in counts
        ],
    }


# --- integrations ---------------------------------------------------------------------------


def integration(config: IntegrationConfig) -> dict[str, Any]:
    schema = schema_of(config.kind)
    body: dict[str, Any] = {
        "id": config.id,
        "api_key": config.api_key,
        "base_url": config.base_url,
        "region": config.region,
        "enabled": config.enabled,
        "feature_names": config.feature_names,
        "tag": config.tag_label,
        "deliver": config.deliver,
        "resend_after_hours": config.resend_after_hours,
    }
    for alias, target in schema.aliases.items():
        body[alias] = body[target]
    common = CommonSettings.of(config)
    body["exposures"] = common.exposures
    body["events"] = common.events
    options = config.options or {}
    for option in schema.options:
        value = options.get(option.name, option.default)
        if option.secret:
            body[f"{option.name}_set"] = bool(value)
        else:
            body[option.name] = value
    return body


def delivery_attempt(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "created_at": attempt.created_at.isoformat(),
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "evaluations": attempt.evaluations,
        "duration_ms": attempt.duration_ms,
        "response": attempt.response,
        "error": attempt.error,
    }


def delivery_status(status: DeliveryStatus) -> dict[str, Any]:
    return {
        "delivered": status.delivered,
        "suppressed": status.suppressed,
        "pending": status.pending,
        "retrying": status.retrying,
        "failed": status.failed,
        "given_up": status.given_up,
        "last_success_at": status.last_success_at and status.last_success_at.isoformat(),
        "last_error_at": status.last_error_at and status.last_error_at.isoformat(),
        "last_error": status.last_error,
    }
