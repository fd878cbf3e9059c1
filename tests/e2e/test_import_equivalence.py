"""After an import, Ensign's remote flags for an identity equal what the reference engine
(`flagsmith-flag-engine` with the official SDK's document mapper) computes from the same document."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from flag_engine.segments.evaluator import get_evaluation_result
from flagsmith.mappers import (
    map_context_and_identity_data_to_context,
    map_environment_document_to_context,
)

from ensign.services.importing import import_document
from ensign.web.deps import AppState
from tests.conftest import Organisation, shared_path
from tests.documents import condition, feature_state, segment, standard_document, variant
from tests.units import unit_session


def reference_flags(
    document: dict[str, Any], identifier: str, traits: dict[str, Any]
) -> dict[str, tuple[bool, Any]]:
    context = map_context_and_identity_data_to_context(
        map_environment_document_to_context(document), identifier=identifier, traits=traits
    )
    result = get_evaluation_result(context)
    return {name: (flag["enabled"], flag["value"]) for name, flag in result["flags"].items()}


def ensign_flags(
    client: TestClient, key: str, identifier: str, traits: dict[str, Any]
) -> dict[str, tuple[bool, Any]]:
    body = {
        "identifier": identifier,
        "transient": True,
        "traits": [{"trait_key": k, "trait_value": v} for k, v in traits.items()],
    }
    response = client.post("/api/v1/identities/", headers={"X-Environment-Key": key}, json=body)
    assert response.status_code == 200, response.text
    return {
        f["feature"]["name"]: (f["enabled"], f["feature_state_value"])
        for f in response.json()["flags"]
    }


def imported(state: AppState, organisation: Organisation, document: dict[str, Any]) -> str:
    with state.units.write() as unit, unit_session(unit) as session:
        result = import_document(session, organisation.id, document)
    assert result.environment_key == document["api_key"]
    return result.environment_key


def test_import__own_document__every_identity_matches_reference(
    client: TestClient, state: AppState, organisation: Organisation
) -> None:
    document = standard_document(
        identity_overrides=[
            {"identifier": "vip", "identity_features": [feature_state(1, "banner", value="vip")]}
        ]
    )
    document["project"]["segments"].append(
        segment(
            23,
            "split",
            [condition("PERCENTAGE_SPLIT", "", "40")],
            [
                feature_state(
                    4,
                    "checkout",
                    value="split_control",
                    django_id=41,
                    priority=2,
                    variants=[variant(201, 1001, "one_page", 50.0, "one")],
                )
            ],
        )
    )
    key = imported(state, organisation, document)
    rng = random.Random(7)
    for n in range(150):
        identifier = "vip" if n == 0 else f"user-{n}"
        traits = {}
        if rng.random() < 0.5:
            traits["plan"] = rng.choice(["gold", "silver"])
        if rng.random() < 0.5:
            traits["age"] = rng.randint(10, 30)
        assert ensign_flags(client, key, identifier, traits) == reference_flags(
            document, identifier, traits
        ), identifier


def test_import__v1_engine_test_document__identities_match_reference(
    client: TestClient, state: AppState, organisation: Organisation
) -> None:
    folder = shared_path("ENSIGN_ENGINE_TEST_DATA", "engine-test-data") / "v1"
    files = sorted(folder.glob("*.json")) if folder.exists() else []
    if not files:
        pytest.skip(
            f"{folder} is absent: set ENSIGN_ENGINE_TEST_DATA to the engine-test-data folder"
        )
    data = json.loads(files[0].read_text())
    # The v1 format has no environment name, which the SDK's mapper requires.
    document = {"name": "v1", **data["environment"]}
    key = imported(state, organisation, data["environment"])
    checked = 0
    for case in data["identities_and_responses"]:
        identity = case["identity"]
        traits = {t["trait_key"]: t["trait_value"] for t in identity["identity_traits"]}
        identifier = identity["identifier"]
        assert ensign_flags(client, key, identifier, traits) == reference_flags(
            document, identifier, traits
        ), identifier
        checked += 1
    assert checked == 101


def test_import__large_bench_document__identities_match_reference(
    client: TestClient, state: AppState, organisation: Organisation
) -> None:
    path: Path = shared_path("ENSIGN_BENCH_DATA", "bench-data") / "env_large.json"
    if not path.exists():
        pytest.skip(f"{path} is absent: set ENSIGN_BENCH_DATA to the bench-data folder")
    document = json.loads(path.read_text())
    key = imported(state, organisation, document)
    rng = random.Random(11)
    for n in range(200):
        traits = {
            "plan": rng.choice(["gold", "US", "DE", "bronze"]),
            "signup_days": rng.randint(0, 90),
            "locale": rng.choice(["en-GB", "pad", "fr"]),
            "score": rng.randint(0, 60),
        }
        identifier = f"large-{n}"
        assert ensign_flags(client, key, identifier, traits) == reference_flags(
            document, identifier, traits
        ), identifier
