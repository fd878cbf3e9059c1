"""Environment document → context, checked against the Flagsmith SDK's own mapper as an oracle."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flagsmith.mappers import map_environment_document_to_context as sdk_document_to_context

from ensign.engine import EngineError, evaluate
from ensign.engine.mapping import (
    IDENTITY_OVERRIDES_SEGMENT,
    document_to_context,
    environment_context_for_flags,
)

from .conftest import bench_data, engine_test_data


def _documents() -> list[Any]:
    params = []
    bench = bench_data()
    for name in ("env_small.json", "env_large.json"):
        if bench and (bench / name).is_file():
            params.append(pytest.param(bench / name, id=name))
    data = engine_test_data()
    v1 = data / "v1" / "environment_n9fbf9h3v4fFgH3U3ngWhb.json" if data else None
    if v1 and v1.is_file():
        params.append(pytest.param(v1, id="v1"))
    return params or [pytest.param(None, marks=pytest.mark.skip(reason="no documents found"))]


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "environment" in document:  # the v1 file wraps the document and lacks its name
        document = {"name": "Test Environment", **document["environment"]}
    return document


def _with_identity_overrides(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    states = document["feature_states"]
    document["identity_overrides"] = [
        {
            "identifier": f"user-{index}",
            "identity_features": [
                {
                    "django_id": None,
                    "featurestate_uuid": f"00000000-0000-4000-8000-{index:012d}",
                    "enabled": bool(index % 2),
                    "feature": states[position]["feature"],
                    "feature_state_value": f"value-{index % 3}",
                    "multivariate_feature_state_values": [],
                    "feature_segment": None,
                }
                for position in ([2, 0, 1] if index % 2 else [1])
            ],
        }
        for index in range(9)
    ]
    return document


def _normalised(context: Any) -> Any:
    """Rename identity-override segments: the SDK keys them by a per-process salted hash()."""
    context = copy.deepcopy(context)
    segments = {}
    for key, segment in context.get("segments", {}).items():
        if segment["name"] == IDENTITY_OVERRIDES_SEGMENT:
            segment["key"] = "io"
            segment["overrides"].sort(key=lambda override: override["metadata"]["id"])
            key = f"io-{len(segments)}"
        segments[key] = segment
    context["segments"] = segments
    return context


@pytest.mark.parametrize("path", _documents())
def test_document_to_context__shared_document__matches_sdk_mapper(path: Path) -> None:
    document = _load(path)
    assert document_to_context(document) == sdk_document_to_context(document)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", _documents())
def test_document_to_context__identity_overrides__match_sdk_mapper(path: Path) -> None:
    document = _with_identity_overrides(_load(path))
    ours = document_to_context(document)
    assert _normalised(ours) == _normalised(sdk_document_to_context(document))  # type: ignore[arg-type]


def test_document_to_context__uuid_only_states__key_and_priority_from_uuids() -> None:
    # Given a document whose feature state and mv values carry no database ids
    document = {
        "api_key": "key",
        "name": "Env",
        "project": {"segments": []},
        "feature_states": [
            {
                "django_id": None,
                "featurestate_uuid": "11111111-1111-4111-8111-111111111111",
                "enabled": True,
                "feature": {"id": 7, "name": "mv", "type": "MULTIVARIATE"},
                "feature_state_value": "control",
                "feature_segment": None,
                "multivariate_feature_state_values": [
                    {
                        "id": None,
                        "mv_fs_value_uuid": "22222222-2222-4222-8222-222222222222",
                        "percentage_allocation": 30.0,
                        "multivariate_feature_option": {"value": "a", "id": None, "key": "a"},
                    }
                ],
            }
        ],
    }
    # When
    ours = document_to_context(document)
    # Then
    assert ours == sdk_document_to_context(document)  # type: ignore[arg-type]
    feature = ours["features"]["mv"]
    assert feature["key"] == "11111111-1111-4111-8111-111111111111"
    assert feature["variants"][0]["priority"] == 0x22222222222242228222222222222222


def test_document_to_context__identity_override__always_wins() -> None:
    # Given
    document = _with_identity_overrides(
        {
            "api_key": "key",
            "name": "Env",
            "project": {"segments": []},
            "feature_states": [
                {
                    "django_id": index + 1,
                    "enabled": False,
                    "feature": {"id": index + 10, "name": f"f{index}"},
                    "feature_state_value": None,
                    "multivariate_feature_state_values": [],
                }
                for index in range(3)
            ],
        }
    )
    context = document_to_context(document)
    # When
    result = evaluate({**context, "identity": {"identifier": "user-1"}})
    # Then
    assert result["flags"]["f0"]["reason"] == "TARGETING_MATCH; segment=identity_overrides"
    assert result["flags"]["f0"]["value"] == "value-1"
    assert result["segments"] == [
        {"name": "identity_overrides", "metadata": {"source": "identity_overrides"}}
    ]


def test_document_to_context__missing_name__raises_engine_error() -> None:
    with pytest.raises(EngineError, match=r"document\.name"):
        document_to_context({"api_key": "key", "feature_states": [], "project": {}})


def test_environment_context_for_flags__any__drops_segments_only() -> None:
    context = document_to_context(
        {"api_key": "key", "name": "Env", "feature_states": [], "project": {"segments": []}}
    )
    assert environment_context_for_flags(context) == {
        "environment": {"key": "key", "name": "Env"},
        "features": {},
    }
