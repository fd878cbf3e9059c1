"""The official Flagsmith Python SDK and OpenFeature provider, driving a real `ensign serve`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flagsmith import Flagsmith
from openfeature import api as openfeature_api
from openfeature.evaluation_context import EvaluationContext
from openfeature_flagsmith.provider import FlagsmithProvider

from ensign.services.demo import demo_document
from tests.conftest import ServerProcess, shared_path
from tests.documents import feature_state, standard_document

pytestmark = pytest.mark.slow


def ensign_import(database_url: str, path: Path) -> dict[str, Any]:
    """Import through the CLI, as an operator would."""
    result = subprocess.run(
        [sys.executable, "-m", "ensign.cli", "import", str(path)],
        env={**os.environ, "ENSIGN_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    keys: dict[str, Any] = json.loads(result.stdout)
    return keys


def _standard_with_override() -> dict[str, Any]:
    return standard_document(
        identity_overrides=[
            {
                "identifier": "vip",
                "identity_features": [feature_state(1, "banner", value="vip banner")],
            }
        ]
    )


@pytest.fixture
def keys(database_url: str, tmp_path: Path) -> dict[str, Any]:
    doc = _standard_with_override()
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return ensign_import(database_url, path)


@pytest.fixture
def remote(server: ServerProcess, keys: dict[str, Any]) -> Flagsmith:
    return Flagsmith(environment_key=keys["environment_key"], api_url=server.api_url)


@pytest.fixture
def local(server: ServerProcess, keys: dict[str, Any]) -> Iterator[Flagsmith]:
    client = Flagsmith(
        environment_key=keys["server_key"],
        api_url=server.api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
    )
    yield client
    client.environment_data_polling_manager_thread.stop()


def test_sdk__environment_flags__values_and_types(remote: Flagsmith) -> None:
    flags = remote.get_environment_flags()
    assert flags.get_feature_value("banner") == "hello"
    assert flags.get_feature_value("limit") == 10
    assert flags.get_feature_value("zero") == 0
    assert flags.is_feature_enabled("banner") is True
    assert flags.is_feature_enabled("beta") is False


def test_sdk__identity_flags__persisted_traits_apply_later(remote: Flagsmith) -> None:
    flags = remote.get_identity_flags("sdk-user", traits={"plan": "gold"})
    assert flags.get_feature_value("banner") == "hello gold"
    # Stored: a call without traits still matches the segment.
    assert remote.get_identity_flags("sdk-user").get_feature_value("banner") == "hello gold"


def test_sdk__identity_flags__transient_trait_not_persisted(remote: Flagsmith) -> None:
    flags = remote.get_identity_flags(
        "sdk-user-2", traits={"plan": {"value": "gold", "transient": True}}
    )
    assert flags.get_feature_value("banner") == "hello gold"
    assert remote.get_identity_flags("sdk-user-2").get_feature_value("banner") == "hello"


def test_sdk__transient_identity__nothing_persisted(remote: Flagsmith) -> None:
    flags = remote.get_identity_flags("sdk-user-3", traits={"plan": "gold"}, transient=True)
    assert flags.get_feature_value("banner") == "hello gold"
    assert remote.get_identity_flags("sdk-user-3").get_feature_value("banner") == "hello"


def test_sdk__local_evaluation__same_answers_as_remote(remote: Flagsmith, local: Flagsmith) -> None:
    assert local.get_environment_flags().get_feature_value("banner") == "hello"
    for identifier, traits in [
        ("vip", {}),
        ("a", {"plan": "gold"}),
        ("b", {"age": 20}),
        ("c", {"age": 12, "plan": "gold"}),
        ("d", {}),
    ]:
        local_flags = local.get_identity_flags(identifier, traits=traits)
        remote_flags = remote.get_identity_flags(identifier, traits=traits)
        for name in ("banner", "beta", "checkout", "limit", "zero"):
            assert local_flags.get_flag(name).value == remote_flags.get_flag(name).value, (
                identifier,
                name,
            )
            assert local_flags.get_flag(name).enabled == remote_flags.get_flag(name).enabled, (
                identifier,
                name,
            )
    assert local.get_identity_flags("vip").get_feature_value("banner") == "vip banner"


@pytest.mark.parametrize("document", [_standard_with_override, demo_document])
def test_environment_flags__reasons__same_as_sdk_local_environment_flags(
    database_url: str, server: ServerProcess, tmp_path: Path, document: Any
) -> None:
    # Given: a document whose segments and identity override target some features
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document()))
    keys = ensign_import(database_url, path)
    local = Flagsmith(
        environment_key=keys["server_key"],
        api_url=server.api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
    )
    try:
        expected = {f.feature_name: f.reason for f in local.get_environment_flags().all_flags()}
    finally:
        local.environment_data_polling_manager_thread.stop()
    # When: the environment flags are asked of the server, whole and one by one
    headers = {"X-Environment-Key": keys["server_key"]}
    with httpx.Client(base_url=server.api_url, headers=headers) as http:
        listed = {f["feature"]["name"]: f["reason"] for f in http.get("flags/").json()}
        single = {
            name: http.get("flags/", params={"feature": name}).json()["reason"] for name in expected
        }
    # Then
    assert listed == expected
    assert single == expected
    assert set(expected.values()) == {"STATIC"}


def test_openfeature_provider__remote__resolves_values(remote: Flagsmith) -> None:
    openfeature_api.set_provider(FlagsmithProvider(client=remote))
    client = openfeature_api.get_client()
    assert client.get_string_value("banner", "default") == "hello"
    assert client.get_integer_value("limit", 0) == 10
    gold = EvaluationContext(targeting_key="of-user", attributes={"plan": "gold"})
    assert client.get_string_value("banner", "default", gold) == "hello gold"
    assert client.get_boolean_value("beta", False, gold) is True
    assert client.get_boolean_value("beta", True, EvaluationContext(targeting_key="other")) is False


def test_openfeature_provider__local__resolves_values(local: Flagsmith) -> None:
    openfeature_api.set_provider(FlagsmithProvider(client=local))
    client = openfeature_api.get_client()
    adult = EvaluationContext(targeting_key="of-adult", attributes={"age": 30})
    assert client.get_string_value("banner", "default", adult) == "hello adult"


# --- remote versus local on a large document ------------------------------------------------------


def _traits_for(rng: random.Random, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """3-5 traits, mostly taken from the document's own conditions so that segments match."""
    traits: dict[str, Any] = {}
    for cond in rng.sample(conditions, k=min(len(conditions), rng.randint(3, 5))):
        prop = cond.get("property_")
        if not prop or prop.startswith("$."):
            continue
        raw = cond.get("value") or ""
        value: Any = raw.split(",")[0].split("|")[0].removesuffix(":semver")
        if value.isdigit():
            value = int(value) + rng.choice([-1, 0, 0, 1])
        elif rng.random() < 0.2:
            value = rng.choice([True, 3.5, "", "zz"])
        traits[prop] = value
    return traits


def _conditions(rules: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for rule in rules:
        yield from rule.get("conditions") or []
        yield from _conditions(rule.get("rules") or [])


def test_sdk__remote_and_local_agree__500_identities_on_large_document(
    database_url: str, tmp_path: Path
) -> None:
    source = shared_path("ENSIGN_BENCH_DATA", "bench-data") / "env_large.json"
    if not source.exists():
        pytest.skip(f"{source} is absent: set ENSIGN_BENCH_DATA to the bench-data folder")
    document = json.loads(source.read_text())
    keys = ensign_import(database_url, source)
    assert keys["environment_key"] == document["api_key"]
    server = ServerProcess(database_url, _free_port(), log_path=tmp_path / "server.log")
    server.start()
    try:
        remote = Flagsmith(environment_key=keys["environment_key"], api_url=server.api_url)
        local = Flagsmith(
            environment_key=keys["server_key"],
            api_url=server.api_url,
            enable_local_evaluation=True,
            environment_refresh_interval_seconds=3600,
        )
        conditions = [c for s in document["project"]["segments"] for c in _conditions(s["rules"])]
        rng = random.Random(20261122)
        disagreements = []
        segment_hits = 0
        for n in range(500):
            identifier = f"agree-{n}"
            traits = _traits_for(rng, conditions)
            remote_flags = remote.get_identity_flags(identifier, traits=traits)
            local_flags = local.get_identity_flags(identifier, traits=traits)
            segment_hits += len(local.get_identity_segments(identifier, traits=traits)) > 0
            for name in (s["feature"]["name"] for s in document["feature_states"]):
                r, lo = remote_flags.get_flag(name), local_flags.get_flag(name)
                if (r.enabled, r.value, r.reason) != (lo.enabled, lo.value, lo.reason):
                    disagreements.append(
                        (
                            identifier,
                            name,
                            (r.enabled, r.value, r.reason),
                            (lo.enabled, lo.value, lo.reason),
                        )
                    )
        # Environment flags too (the client key's: server-only features are left out).
        local_environment = {
            f.feature_name: f.reason for f in local.get_environment_flags().all_flags()
        }
        remote_environment = {
            f.feature_name: f.reason for f in remote.get_environment_flags().all_flags()
        }
        local.environment_data_polling_manager_thread.stop()
        assert disagreements == []
        assert remote_environment
        assert remote_environment == {n: local_environment[n] for n in remote_environment}
        # The comparison means something only if many identities hit segment overrides.
        assert segment_hits > 100
    finally:
        server.stop()


def test_openfeature_provider__same_reasons_remote_and_local__300_identities_on_large_document(
    database_url: str, tmp_path: Path
) -> None:
    source = shared_path("ENSIGN_BENCH_DATA", "bench-data") / "env_large.json"
    if not source.exists():
        pytest.skip(f"{source} is absent: set ENSIGN_BENCH_DATA to the bench-data folder")
    document = json.loads(source.read_text())
    keys = ensign_import(database_url, source)
    server = ServerProcess(database_url, _free_port(), log_path=tmp_path / "server.log")
    server.start()
    local = Flagsmith(
        environment_key=keys["server_key"],
        api_url=server.api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
    )
    try:
        remote = Flagsmith(environment_key=keys["environment_key"], api_url=server.api_url)
        openfeature_api.set_provider(FlagsmithProvider(client=remote), domain="remote")
        openfeature_api.set_provider(FlagsmithProvider(client=local), domain="local")
        remote_client = openfeature_api.get_client("remote")
        local_client = openfeature_api.get_client("local")
        conditions = [c for s in document["project"]["segments"] for c in _conditions(s["rules"])]
        names = sorted(s["feature"]["name"] for s in document["feature_states"])
        rng = random.Random(20261126)
        differences = []
        reasons = set()
        for n in range(300):
            context = EvaluationContext(
                targeting_key=f"reason-{n}", attributes=_traits_for(rng, conditions)
            )
            # Each remote evaluation is an HTTP call: a sample of the flags per identity.
            for name in rng.sample(names, k=6):
                r = remote_client.get_boolean_details(name, False, context)
                lo = local_client.get_boolean_details(name, False, context)
                reasons.add(str(lo.reason))
                if (r.reason, r.variant, r.value) != (lo.reason, lo.variant, lo.value):
                    differences.append((n, name, r, lo))
        assert differences == []
        # The comparison means something only if reasons of every kind came up.
        assert {"STATIC", "DISABLED", "SPLIT"} <= {r.split(";")[0] for r in reasons}
        assert any(r.startswith("TARGETING_MATCH; segment=") for r in reasons)
    finally:
        openfeature_api.clear_providers()
        local.environment_data_polling_manager_thread.stop()
        server.stop()


def _free_port() -> int:
    from tests.conftest import free_port

    return free_port()
