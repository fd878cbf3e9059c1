"""The demo project that `ensign demo` and `ensign serve --demo` seed into an empty database.

It is built as an environment document and imported, so the demo also exercises the import.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ensign.errors import Conflict
from ensign.services.accounts import create_user
from ensign.services.admin.organisations import create_organisation
from ensign.services.importing import import_document
from ensign.services.keys import create_admin_key, new_client_key, random_token
from ensign.storage.unit_of_work import UnitOfWork

DEMO_EMAIL = "admin@example.com"


@dataclass(frozen=True)
class DemoKeys:
    project_id: int
    client_key: str
    server_key: str
    admin_key: str
    user_email: str = ""
    user_password: str = ""


def _state(feature_id: int, name: str, enabled: bool, value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "featurestate_uuid": str(uuid.uuid4()),
        "enabled": enabled,
        "feature": {"id": feature_id, "name": name},
        "feature_state_value": value,
        "multivariate_feature_state_values": extra.pop("variants", []),
        **extra,
    }


def _variant(option_id: int, value: Any, key: str, weight: float) -> dict[str, Any]:
    return {
        "mv_fs_value_uuid": str(uuid.uuid4()),
        "percentage_allocation": weight,
        "multivariate_feature_option": {"id": option_id, "value": value, "key": key},
    }


def demo_document() -> dict[str, Any]:
    """A small, realistic environment: a kill switch, remote config, an A/B test, segments."""
    return {
        "api_key": new_client_key(),
        "name": "Development",
        "feature_states": [
            _state(
                1,
                "new_checkout",
                True,
                "control_checkout",
                variants=[
                    _variant(1, "one_page_checkout", "one_page", 33.0),
                    _variant(2, "express_checkout", "express", 33.0),
                ],
            ),
            _state(2, "banner_text", True, "Welcome to Ensign!"),
            _state(3, "max_cart_items", True, 25),
            _state(4, "dark_mode", False, None),
            _state(5, "maintenance_mode", False, None),
        ],
        "identity_overrides": [
            {
                "identifier": "development_user_123456",
                "identity_features": [_state(4, "dark_mode", True, None)],
            }
        ],
        "project": {
            "name": "Demo project",
            "hide_disabled_flags": False,
            "server_key_only_feature_ids": [],
            "segments": [
                {
                    "id": 1,
                    "name": "beta_testers",
                    "rules": [
                        {
                            "type": "ALL",
                            "rules": [
                                {
                                    "type": "ANY",
                                    "rules": [],
                                    "conditions": [
                                        {"operator": "EQUAL", "property_": "plan", "value": "beta"},
                                        {
                                            "operator": "REGEX",
                                            "property_": "email",
                                            "value": r".*@example\.com$",
                                        },
                                    ],
                                }
                            ],
                            "conditions": [],
                        }
                    ],
                    "feature_states": [
                        _state(4, "dark_mode", True, None, feature_segment={"priority": 0}),
                        _state(
                            2,
                            "banner_text",
                            True,
                            "Thanks for testing the beta!",
                            feature_segment={"priority": 0},
                        ),
                    ],
                },
                {
                    "id": 2,
                    "name": "ten_percent_rollout",
                    "rules": [
                        {
                            "type": "ALL",
                            "rules": [
                                {
                                    "type": "ALL",
                                    "rules": [],
                                    "conditions": [
                                        {
                                            "operator": "PERCENTAGE_SPLIT",
                                            "property_": "",
                                            "value": "10",
                                        },
                                    ],
                                }
                            ],
                            "conditions": [],
                        }
                    ],
                    "feature_states": [
                        _state(3, "max_cart_items", True, 50, feature_segment={"priority": 1}),
                    ],
                },
            ],
        },
    }


def seed_demo(unit: UnitOfWork) -> DemoKeys:
    session = unit.session
    organisation = create_organisation(unit, name="Demo organisation")
    result = import_document(session, organisation.id, demo_document(), actor="demo-seed")
    admin_key = create_admin_key(unit, organisation.id, "demo")
    # The first dashboard user; the password is printed once, like the admin key.
    password = random_token(16)
    try:
        create_user(session, email=DEMO_EMAIL, password=password, organisation_id=organisation.id)
    except Conflict:
        password = "(unchanged: this user existed already)"
    return DemoKeys(
        result.project_id,
        result.environment_key,
        result.server_key,
        admin_key,
        DEMO_EMAIL,
        password,
    )
