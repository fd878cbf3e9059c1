"""Environment documents of our own making, for tests, in the reference's format (contract §4)."""

from __future__ import annotations

import uuid
from typing import Any


def feature_state(
    feature_id: int,
    name: str,
    *,
    enabled: bool = True,
    value: Any = None,
    django_id: int | None = None,
    variants: list[dict[str, Any]] | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "django_id": django_id,
        "featurestate_uuid": str(uuid.uuid4()),
        "enabled": enabled,
        "feature": {
            "id": feature_id,
            "name": name,
            "type": "MULTIVARIATE" if variants else "STANDARD",
        },
        "feature_state_value": value,
        "feature_segment": None if priority is None else {"priority": priority},
        "multivariate_feature_state_values": variants or [],
    }
    return state


def variant(
    mv_id: int, option_id: int, value: Any, weight: float, key: str | None = None
) -> dict[str, Any]:
    return {
        "id": mv_id,
        "mv_fs_value_uuid": str(uuid.uuid4()),
        "percentage_allocation": weight,
        "multivariate_feature_option": {"id": option_id, "value": value, "key": key},
    }


def condition(operator: str, prop: str | None, value: str | None) -> dict[str, Any]:
    return {"operator": operator, "property_": prop, "value": value}


def segment(
    segment_id: int,
    name: str,
    conditions: list[dict[str, Any]],
    overrides: list[dict[str, Any]],
    *,
    rule_type: str = "ALL",
) -> dict[str, Any]:
    return {
        "id": segment_id,
        "name": name,
        "rules": [
            {
                "type": "ALL",
                "conditions": [],
                "rules": [{"type": rule_type, "conditions": conditions, "rules": []}],
            }
        ],
        "feature_states": overrides,
    }


def document(
    *,
    api_key: str | None = None,
    feature_states: list[dict[str, Any]],
    segments: list[dict[str, Any]] | None = None,
    identity_overrides: list[dict[str, Any]] | None = None,
    server_key_only_feature_ids: list[int] | None = None,
    hide_disabled_flags: bool = False,
) -> dict[str, Any]:
    return {
        "id": 1,
        "api_key": api_key or f"testkey{uuid.uuid4().hex[:15]}",
        "name": "Test environment",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "allow_client_traits": True,
        "hide_sensitive_data": False,
        "hide_disabled_flags": None,
        "use_identity_composite_key_for_hashing": True,
        "use_identity_overrides_in_local_eval": True,
        "feature_states": feature_states,
        "identity_overrides": identity_overrides or [],
        "project": {
            "id": 1,
            "name": "Test project",
            "hide_disabled_flags": hide_disabled_flags,
            "enable_realtime_updates": False,
            "server_key_only_feature_ids": server_key_only_feature_ids or [],
            "organisation": {
                "id": 1,
                "name": "Org",
                "feature_analytics": False,
                "stop_serving_flags": False,
                "persist_trait_data": True,
            },
            "segments": segments or [],
        },
    }


def standard_document(**kwargs: Any) -> dict[str, Any]:
    """Five features covering every value type, a multivariate test, two segments."""
    return document(
        feature_states=[
            feature_state(1, "banner", value="hello", django_id=11),
            feature_state(2, "limit", value=10, django_id=12),
            feature_state(3, "beta", enabled=False, django_id=13),
            feature_state(
                4,
                "checkout",
                value="control",
                django_id=14,
                variants=[
                    variant(101, 1001, "one_page", 30.0, "one"),
                    variant(102, 1002, "express", 30.0, "two"),
                ],
            ),
            feature_state(5, "zero", value=0, django_id=15),
        ],
        segments=[
            segment(
                21,
                "gold_users",
                [condition("EQUAL", "plan", "gold")],
                [
                    feature_state(1, "banner", value="hello gold", django_id=31, priority=1),
                    feature_state(3, "beta", enabled=True, django_id=32, priority=1),
                ],
            ),
            segment(
                22,
                "adults",
                [condition("GREATER_THAN_INCLUSIVE", "age", "18")],
                [feature_state(1, "banner", value="hello adult", django_id=33, priority=0)],
            ),
        ],
        **kwargs,
    )
