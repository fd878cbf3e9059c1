"""A seeded generator of Flagsmith environment documents shaped like ``env_large.json``.

Used by ``bench/engine.py`` when the shared bench data is not beside the repository:
50 features (10 multivariate), 15 segments holding 225 conditions across the operators,
and 750 segment overrides.
"""

import random
import uuid
from typing import Any

TRAITS = ["locale", "company", "plan", "signup_days", "score", "app_version", "tier", "email"]

_CONDITION_VALUES: dict[str, list[str | None]] = {
    "EQUAL": ["52", "gold", "US", "true"],
    "NOT_EQUAL": ["free", "0"],
    "GREATER_THAN": ["9", "30", "1.2.0:semver"],
    "LESS_THAN_INCLUSIVE": ["100", "2.5"],
    "CONTAINS": ["en-", "@example", "pad"],
    "NOT_CONTAINS": ["test"],
    "REGEX": ["^(ios|android)$", r".*@example\.com$", "^[a-m]"],
    "IN": ["DE,FR,33,bronze", "US,GB,gold", '["a", "b", "gold"]'],
    "MODULO": ["2|0", "5|1"],
    "PERCENTAGE_SPLIT": ["25", "50", "75"],
    "IS_SET": [None],
    "IS_NOT_SET": [None],
}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _feature_state(
    rng: random.Random, feature: dict[str, Any], django_id: int, priority: int | None
) -> dict[str, Any]:
    multivariate = feature["type"] == "MULTIVARIATE"
    values = []
    if multivariate:
        remaining = 100.0
        for option in range(3):
            share = round(rng.uniform(0, remaining / 2), 2)
            remaining -= share
            values.append(
                {
                    "id": django_id * 10 + option,
                    "mv_fs_value_uuid": _uuid(rng),
                    "percentage_allocation": share,
                    "multivariate_feature_option": {
                        "id": feature["id"] * 10 + option,
                        "value": f"variant-{option}",
                        "key": f"v{option}" if option else None,
                    },
                }
            )
    return {
        "django_id": django_id,
        "featurestate_uuid": _uuid(rng),
        "enabled": rng.random() < 0.5,
        "feature": feature,
        "feature_state_value": rng.choice(["on", 12, True, None, "control"]),
        "feature_segment": None if priority is None else {"priority": priority},
        "multivariate_feature_state_values": values,
    }


def _condition(rng: random.Random) -> dict[str, Any]:
    operator = rng.choice(list(_CONDITION_VALUES))
    prop = None if operator == "PERCENTAGE_SPLIT" and rng.random() < 0.5 else rng.choice(TRAITS)
    return {
        "operator": operator,
        "property_": prop,
        "value": rng.choice(_CONDITION_VALUES[operator]),
    }


def generate_document(seed: int = 42) -> dict[str, Any]:
    """Return a deterministic environment document for ``seed``."""
    rng = random.Random(seed)
    features = [
        {
            "id": 100 + index,
            "name": f"feature_{index:02d}",
            "type": "MULTIVARIATE" if index < 10 else "STANDARD",
        }
        for index in range(50)
    ]
    next_id = iter(range(1000, 100_000))
    segments = []
    for index in range(15):
        groups = []
        for size in (3, 5, 1, 4, 2):  # 15 conditions per segment, 225 in all
            groups.append(
                {
                    "type": rng.choice(["ALL", "ANY", "NONE"] if size > 1 else ["ALL", "ANY"]),
                    "rules": [],
                    "conditions": [_condition(rng) for _ in range(size)],
                }
            )
        segments.append(
            {
                "id": 500 + index,
                "name": f"segment_{index:02d}",
                "rules": [{"type": "ALL", "rules": groups, "conditions": []}],
                "feature_states": [
                    _feature_state(rng, feature, next(next_id), rng.randrange(15))
                    for feature in features
                ],
            }
        )
    return {
        "id": 1,
        "api_key": "benchEnvKey000000000000",
        "name": "Bench",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "allow_client_traits": True,
        "hide_sensitive_data": False,
        "hide_disabled_flags": None,
        "use_identity_composite_key_for_hashing": True,
        "use_identity_overrides_in_local_eval": True,
        "feature_states": [
            _feature_state(rng, feature, next(next_id), None) for feature in features
        ],
        "identity_overrides": [],
        "project": {
            "id": 1,
            "name": "Bench",
            "hide_disabled_flags": False,
            "enable_realtime_updates": False,
            "server_key_only_feature_ids": [],
            "organisation": {
                "id": 1,
                "name": "Bench",
                "feature_analytics": False,
                "stop_serving_flags": False,
                "persist_trait_data": True,
            },
            "segments": segments,
        },
    }
