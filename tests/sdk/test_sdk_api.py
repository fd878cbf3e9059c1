"""The SDK API, endpoint by endpoint, with the exact JSON the contract describes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from flagsmith import Flagsmith
from flagsmith.offline_handlers import LocalFileHandler
from sqlalchemy import func, select

from ensign.storage.models import FlagEvaluationCount, Identity, Trait
from ensign.web.deps import AppState
from tests.documents import document, feature_state, standard_document
from tests.sdk.conftest import Env
from tests.units import unit_session


def by_name(flags: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["feature"]["name"]: f for f in flags}


def pct(*ids: object) -> float:
    """The contract's hashing formula (§5.5), written out independently of the engine."""
    value = int(hashlib.md5(",".join(str(i) for i in ids).encode()).hexdigest(), 16)
    return (value % 9999) / 9998 * 100


# --- GET /flags/ -------------------------------------------------------------------------------


def test_flags__list__exact_flag_objects_sorted_by_name(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/flags/", headers=env.client)
    assert response.status_code == 200
    flags = response.json()
    assert [f["feature"]["name"] for f in flags] == ["banner", "beta", "checkout", "limit", "zero"]
    banner = flags[0]
    assert list(banner) == [
        "id",
        "feature",
        "feature_state_value",
        "environment",
        "identity",
        "feature_segment",
        "enabled",
        "reason",
    ]
    assert list(banner["feature"]) == [
        "id",
        "name",
        "created_date",
        "description",
        "initial_value",
        "default_enabled",
        "type",
    ]
    assert banner["feature_state_value"] == "hello"
    assert banner["environment"] == env.environment_id
    assert banner["identity"] is None and banner["feature_segment"] is None
    assert banner["feature"]["created_date"].endswith("Z")
    assert by_name(flags)["checkout"]["feature"]["type"] == "MULTIVARIATE"
    # The multivariate control value, unbucketed, and falsy values kept as they are.
    assert by_name(flags)["checkout"]["feature_state_value"] == "control"
    assert by_name(flags)["zero"]["feature_state_value"] == 0
    assert by_name(flags)["limit"]["feature_state_value"] == 10
    assert "variant" not in banner
    # As the official SDK's local `get_environment_flags` says it: it evaluates no segment, so
    # banner, which a segment overrides, is STATIC as limit is.
    assert banner["reason"] == "STATIC" and by_name(flags)["limit"]["reason"] == "STATIC"


def test_flags__updated_at_header__epoch_float(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/flags/", headers=env.client)
    value = response.headers["x-flagsmith-document-updated-at"]
    assert float(value) > 1_700_000_000
    assert "." in value


def test_flags__no_trailing_slash__same_answer(client: TestClient, env: Env) -> None:
    with_slash = client.get("/api/v1/flags/", headers=env.client)
    without = client.get("/api/v1/flags", headers=env.client)
    assert without.status_code == 200
    assert without.json() == with_slash.json()


def test_flags__feature_query__single_object(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/flags/?feature=limit", headers=env.client)
    assert response.status_code == 200
    assert response.json()["feature"]["name"] == "limit"
    assert response.json()["feature_state_value"] == 10
    assert "x-flagsmith-document-updated-at" not in response.headers


def test_flags__unknown_feature__404_detail(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/flags/?feature=nope", headers=env.client)
    assert response.status_code == 404
    assert response.json() == {"detail": "Given feature not found"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Invalid or missing Environment key"),
        ({"X-Environment-Key": "not-a-key"}, "Invalid or missing Environment Key"),
        ({"X-Environment-Key": "ser.unknown"}, "Invalid or missing Environment Key"),
    ],
)
def test_flags__bad_key__403(
    client: TestClient, env: Env, headers: dict[str, str], detail: str
) -> None:
    response = client.get("/api/v1/flags/", headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": detail}


def test_flags__header_name_case_insensitive(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/flags/", headers={"x-environment-key": env.client_key})
    assert response.status_code == 200


def test_flags__server_key__same_environment(client: TestClient, env: Env) -> None:
    assert (
        client.get("/api/v1/flags/", headers=env.server).json()
        == client.get("/api/v1/flags/", headers=env.client).json()
    )


def test_flags__hide_disabled_flags__only_enabled(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, project={"hide_disabled_flags": True})
    names = [f["feature"]["name"] for f in client.get("/api/v1/flags/", headers=env.client).json()]
    assert "beta" not in names and "banner" in names
    # The environment's own setting wins over the project's.
    configure(env, environment={"hide_disabled_flags": False})
    names = [f["feature"]["name"] for f in client.get("/api/v1/flags/", headers=env.client).json()]
    assert "beta" in names


def test_flags__server_key_only__hidden_from_client_keys(
    client: TestClient, make_env: Callable[..., Env]
) -> None:
    env = make_env(standard_document(server_key_only_feature_ids=[2]))
    client_names = [
        f["feature"]["name"] for f in client.get("/api/v1/flags/", headers=env.client).json()
    ]
    server_names = [
        f["feature"]["name"] for f in client.get("/api/v1/flags/", headers=env.server).json()
    ]
    assert "limit" not in client_names
    assert "limit" in server_names


def test_flags__stop_serving_flags__403(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, organisation={"stop_serving_flags": True})
    response = client.get("/api/v1/flags/", headers=env.client)
    assert response.status_code == 403
    assert response.json() == {"detail": "Organisation is disabled from serving flags."}


def test_flags__hide_sensitive_data__ids_and_feature_details_null(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, environment={"hide_sensitive_data": True})
    flag = by_name(client.get("/api/v1/flags/", headers=env.client).json())["banner"]
    assert flag["id"] is None and flag["environment"] is None
    assert flag["feature"]["created_date"] is None and flag["feature"]["default_enabled"] is None
    assert flag["feature_state_value"] == "hello"


def test_flags__cors_preflight__allows_sdk_headers(client: TestClient, env: Env) -> None:
    response = client.options(
        "/api/v1/flags/",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-environment-key,flagsmith-sdk-user-agent",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-environment-key" in allowed and "flagsmith-sdk-user-agent" in allowed


# --- identities ------------------------------------------------------------------------------


def test_get_identities__missing_identifier__200_detail(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/identities/", headers=env.client)
    assert response.status_code == 200
    assert response.json() == {"detail": "Missing identifier"}


def test_get_identities__new_identifier__creates_identity(
    client: TestClient, env: Env, state: AppState
) -> None:
    response = client.get("/api/v1/identities/?identifier=alice", headers=env.client)
    assert response.status_code == 200
    body = response.json()
    assert body["identifier"] == "alice" and body["traits"] == []
    assert "x-flagsmith-document-updated-at" in response.headers
    flag = by_name(body["flags"])["banner"]
    assert flag["variant"] is None
    assert by_name(body["flags"])["checkout"]["variant"] in ("one", "two", "control")
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 1


@pytest.mark.parametrize("value", ["true", "false", "1"])
def test_get_identities__any_transient_value__nothing_stored(
    client: TestClient, env: Env, state: AppState, value: str
) -> None:
    response = client.get(
        f"/api/v1/identities/?identifier=bob&transient={value}", headers=env.client
    )
    assert response.status_code == 200
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 0


def test_get_identities__feature_query__single_flag_or_404(client: TestClient, env: Env) -> None:
    flag = client.get("/api/v1/identities/?identifier=carol&feature=limit", headers=env.client)
    assert flag.json()["feature_state_value"] == 10
    missing = client.get("/api/v1/identities/?identifier=carol&feature=nope", headers=env.client)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Given feature not found"}


def test_post_identities__traits_stored_and_returned__200(client: TestClient, env: Env) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={
            "identifier": "dave",
            "traits": [
                {"trait_key": "plan", "trait_value": "gold"},
                {"trait_key": "age", "trait_value": 30},
            ],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"identifier", "flags", "traits"}
    traits = {t["trait_key"]: t for t in body["traits"]}
    assert traits["plan"]["trait_value"] == "gold" and traits["plan"]["transient"] is False
    assert isinstance(traits["plan"]["id"], int)
    assert traits["age"]["trait_value"] == 30
    # Both segments match; "adults" has the lower priority number, so it wins.
    flags = by_name(body["flags"])
    assert flags["banner"]["feature_state_value"] == "hello adult"
    assert flags["banner"]["feature_segment"] is not None
    assert flags["banner"]["reason"] == "TARGETING_MATCH; segment=adults"
    assert flags["beta"]["enabled"] is True
    # Stored: a later GET without traits sees them.
    again = client.get("/api/v1/identities/?identifier=dave", headers=env.client).json()
    assert {t["trait_key"]: t["trait_value"] for t in again["traits"]} == {
        "plan": "gold",
        "age": 30,
    }


def test_post_identities__null_trait_value__deletes_trait(client: TestClient, env: Env) -> None:
    client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "erin", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "erin", "traits": [{"trait_key": "plan", "trait_value": None}]},
    )
    assert response.json()["traits"] == []
    assert by_name(response.json()["flags"])["banner"]["feature_state_value"] == "hello"


def test_post_identities__transient_trait__used_not_stored(client: TestClient, env: Env) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={
            "identifier": "fay",
            "traits": [{"trait_key": "plan", "trait_value": "gold", "transient": True}],
        },
    )
    body = response.json()
    assert by_name(body["flags"])["banner"]["feature_state_value"] == "hello gold"
    assert body["traits"] == [
        {"id": None, "trait_key": "plan", "trait_value": "gold", "transient": True}
    ]
    later = client.get("/api/v1/identities/?identifier=fay", headers=env.client).json()
    assert later["traits"] == []


def test_post_identities__transient_identity__stored_traits_used_nothing_written(
    client: TestClient, env: Env, state: AppState
) -> None:
    client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "gus", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={
            "identifier": "gus",
            "transient": True,
            "traits": [{"trait_key": "age", "trait_value": 40}],
        },
    )
    flags = by_name(response.json()["flags"])
    assert flags["banner"]["feature_state_value"] == "hello adult"
    assert flags["beta"]["enabled"] is True  # from the stored "plan" trait
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Trait)) == 1


def test_post_identities__blank_identifier__sha256_of_traits_nothing_stored(
    client: TestClient, env: Env, state: AppState
) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={
            "identifier": "",
            "traits": [
                {"trait_key": "b", "trait_value": 2},
                {"trait_key": "a", "trait_value": True},
                {"trait_key": "c", "trait_value": None},
            ],
        },
    )
    assert response.status_code == 200
    assert response.json()["identifier"] == hashlib.sha256(b"aTrueb2").hexdigest()
    assert all(t["transient"] for t in response.json()["traits"])
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 0


def test_post_identities__no_identifier_no_traits__random_hex(client: TestClient, env: Env) -> None:
    first = client.post("/api/v1/identities/", headers=env.client, json={"traits": []}).json()[
        "identifier"
    ]
    second = client.post("/api/v1/identities/", headers=env.client, json={}).json()["identifier"]
    assert len(first) == 32 and first != second


def test_post_identities__client_traits_disallowed__silently_dropped(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, environment={"allow_client_traits": False})
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "hal", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    assert response.status_code == 200
    assert response.json()["traits"] == []
    # A server key may still write them.
    response = client.post(
        "/api/v1/identities/",
        headers=env.server,
        json={"identifier": "hal", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    assert [t["trait_key"] for t in response.json()["traits"]] == ["plan"]


def test_post_identities__persist_trait_data_off__evaluated_not_stored(
    client: TestClient, env: Env, configure: Callable[..., None], state: AppState
) -> None:
    configure(env, organisation={"persist_trait_data": False})
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "ivy", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    assert by_name(response.json()["flags"])["banner"]["feature_state_value"] == "hello gold"
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Trait)) == 0


def test_post_identities__non_scalar_trait_value__stored_as_python_str(
    client: TestClient, env: Env
) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "jo", "traits": [{"trait_key": "tags", "trait_value": ["a", True]}]},
    )
    assert response.json()["traits"][0]["trait_value"] == "['a', True]"


def test_post_identities__multivariate__bucketed_by_composite_key(
    client: TestClient, env: Env
) -> None:
    expected = {}
    for n in range(60):
        identifier = f"user-{n}"
        p = pct(14, f"{env.client_key}_{identifier}")
        expected[identifier] = (
            ("one_page", "one")
            if p < 30
            else ("express", "two")
            if p < 60
            else ("control", "control")
        )
    for identifier, (value, variant) in expected.items():
        flag = by_name(
            client.post(
                "/api/v1/identities/",
                headers=env.client,
                json={"identifier": identifier, "traits": []},
            ).json()["flags"]
        )["checkout"]
        assert (flag["feature_state_value"], flag["variant"]) == (value, variant), identifier
    assert len({v for v, _ in expected.values()}) == 3


def test_post_identities__identity_override__wins_and_names_identity(
    client: TestClient, make_env: Callable[..., Env]
) -> None:
    doc = standard_document(
        identity_overrides=[
            {
                "identifier": "vip",
                "identity_features": [
                    feature_state(1, "banner", value="just for you"),
                    feature_state(4, "checkout", value="vip_checkout"),
                ],
            }
        ]
    )
    env = make_env(doc)
    flags = by_name(
        client.post(
            "/api/v1/identities/",
            headers=env.client,
            json={"identifier": "vip", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
        ).json()["flags"]
    )
    assert flags["banner"]["feature_state_value"] == "just for you"
    assert flags["banner"]["identity"] is not None
    # An override without options is no split: no variant
    assert (flags["checkout"]["feature_state_value"], flags["checkout"]["variant"]) == (
        "vip_checkout",
        None,
    )


def test_post_identities__variant_only_for_a_split__as_the_sdks_local_evaluation(
    client: TestClient, make_env: Callable[..., Env], tmp_path: Path
) -> None:
    # Given gold users overriding the multivariate feature (no options), an identity override
    # of it, and everyone else on its split
    doc = standard_document(
        identity_overrides=[
            {
                "identifier": "vip",
                "identity_features": [feature_state(4, "checkout", value="vip_checkout")],
            }
        ]
    )
    gold = next(s for s in doc["project"]["segments"] if s["name"] == "gold_users")
    gold["feature_states"].append(
        feature_state(4, "checkout", value="gold_checkout", django_id=34, priority=1)
    )
    env = make_env(doc)
    document = client.get("/api/v1/environment-document/", headers=env.server)
    assert document.status_code == 200, document.text
    path = tmp_path / "document.json"
    path.write_bytes(document.content)
    local = Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(str(path)))
    users = {"goldie": {"plan": "gold"}, "vip": {}, **{f"user-{n}": {} for n in range(20)}}
    remote = {}
    for identifier, traits in users.items():
        # When the server evaluates each identity remotely, and the SDK locally
        flag = by_name(
            client.post(
                "/api/v1/identities/",
                headers=env.client,
                json={
                    "identifier": identifier,
                    "traits": [{"trait_key": k, "trait_value": v} for k, v in traits.items()],
                },
            ).json()["flags"]
        )["checkout"]
        remote[identifier] = (flag["feature_state_value"], flag["variant"])
    local_flags = {
        identifier: local.get_identity_flags(identifier, traits=traits).get_flag("checkout")
        for identifier, traits in users.items()
    }
    # Then both agree, and the overrides carry no variant
    assert remote == {i: (f.value, f.variant) for i, f in local_flags.items()}
    assert remote["goldie"] == ("gold_checkout", None)
    assert remote["vip"] == ("vip_checkout", None)
    assert {v for k, (_, v) in remote.items() if k.startswith("user-")} <= {"one", "two", "control"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"identifier": 5}, "identifier"),
        ({"identifier": "x" * 2001}, "identifier"),
        ({"identifier": "u", "traits": "nope"}, "traits"),
        ({"identifier": "u", "traits": [{"trait_value": 1}]}, "trait_key"),
        (
            {"identifier": "u", "traits": [{"trait_key": "k", "trait_value": "v" * 2001}]},
            "trait_value",
        ),
        ({"identifier": "u", "traits": [{"trait_key": "k" * 201, "trait_value": 1}]}, "trait_key"),
        ({"identifier": "u", "transient": "yes"}, "transient"),
    ],
)
def test_post_identities__bad_input__400_naming_field(
    client: TestClient, env: Env, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/identities/", headers=env.client, json=body)
    assert response.status_code == 400
    assert field in response.json()


def test_post_identities__invalid_json__400_detail(client: TestClient, env: Env) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers={**env.client, "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert response.status_code == 400
    assert "detail" in response.json()


def test_post_identities__too_many_traits__400(client: TestClient, env: Env) -> None:
    traits = [{"trait_key": f"k{i}", "trait_value": i} for i in range(201)]
    response = client.post(
        "/api/v1/identities/", headers=env.client, json={"identifier": "u", "traits": traits}
    )
    assert response.status_code == 400


def test_post_identities__body_too_large__413(client: TestClient, env: Env) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers={**env.client, "Content-Type": "application/json"},
        content=b"[" + b" " * 1_100_000 + b"]",
    )
    assert response.status_code == 413
    assert "detail" in response.json()


def test_post_identities__form_encoded__accepted(client: TestClient, env: Env) -> None:
    response = client.post(
        "/api/v1/identities/", headers=env.client, data={"identifier": "formuser"}
    )
    assert response.status_code == 200
    assert response.json()["identifier"] == "formuser"


# --- traits ------------------------------------------------------------------------------------


def test_post_trait__creates_identity_and_trait__echo(client: TestClient, env: Env) -> None:
    body = {"identity": {"identifier": "kim"}, "trait_key": "plan", "trait_value": "gold"}
    response = client.post("/api/v1/traits/", headers=env.client, json=body)
    assert response.status_code == 200
    assert response.json() == body
    identity = client.get("/api/v1/identities/?identifier=kim", headers=env.client).json()
    assert identity["traits"][0]["trait_value"] == "gold"


def test_post_trait__null_value__400(client: TestClient, env: Env) -> None:
    response = client.post(
        "/api/v1/traits/",
        headers=env.client,
        json={"identity": {"identifier": "kim"}, "trait_key": "plan", "trait_value": None},
    )
    assert response.status_code == 400


def test_post_trait__client_traits_disallowed__400(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, environment={"allow_client_traits": False})
    response = client.post(
        "/api/v1/traits/",
        headers=env.client,
        json={"identity": {"identifier": "kim"}, "trait_key": "plan", "trait_value": "x"},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Setting traits not allowed with client key."}


def test_post_trait__persist_off__403(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, organisation={"persist_trait_data": False})
    response = client.post(
        "/api/v1/traits/",
        headers=env.server,
        json={"identity": {"identifier": "kim"}, "trait_key": "plan", "trait_value": "x"},
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Organisation is not authorised to store traits."}


def test_bulk_traits__put_sets_and_null_deletes(client: TestClient, env: Env) -> None:
    client.put(
        "/api/v1/traits/bulk/",
        headers=env.client,
        json=[
            {"identity": {"identifier": "lee"}, "trait_key": "a", "trait_value": 1},
            {"identity": {"identifier": "lee"}, "trait_key": "b", "trait_value": "x"},
        ],
    )
    response = client.put(
        "/api/v1/traits/bulk/",
        headers=env.client,
        json=[{"identity": {"identifier": "lee"}, "trait_key": "a", "trait_value": None}],
    )
    assert response.status_code == 200
    traits = client.get("/api/v1/identities/?identifier=lee", headers=env.client).json()["traits"]
    assert {t["trait_key"]: t["trait_value"] for t in traits} == {"b": "x"}


def test_bulk_traits__post__405(client: TestClient, env: Env) -> None:
    assert client.post("/api/v1/traits/bulk/", headers=env.client, json=[]).status_code == 405


def test_bulk_traits__malformed__400_invalid_request_data(client: TestClient, env: Env) -> None:
    response = client.put("/api/v1/traits/bulk/", headers=env.client, json={"not": "a list"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid request data"}


def test_increment_trait__missing_starts_at_zero__then_adds(client: TestClient, env: Env) -> None:
    body = {"trait_key": "logins", "identifier": "max", "increment_by": 2}
    assert client.post("/api/v1/traits/increment-value/", headers=env.client, json=body).json() == {
        "trait_key": "logins",
        "trait_value": 2,
        "identifier": "max",
    }
    assert (
        client.post("/api/v1/traits/increment-value/", headers=env.client, json=body).json()[
            "trait_value"
        ]
        == 4
    )


def test_increment_trait__not_integer__400(client: TestClient, env: Env) -> None:
    client.post(
        "/api/v1/traits/",
        headers=env.client,
        json={"identity": {"identifier": "max"}, "trait_key": "plan", "trait_value": "gold"},
    )
    response = client.post(
        "/api/v1/traits/increment-value/",
        headers=env.client,
        json={"trait_key": "plan", "identifier": "max", "increment_by": 1},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Trait is not an integer."}


# --- environment document ----------------------------------------------------------------------


def test_environment_document__client_key__403(client: TestClient, env: Env) -> None:
    response = client.get("/api/v1/environment-document/", headers=env.client)
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid or missing Environment key"}


def test_environment_document__server_key__document_with_required_fields(
    client: TestClient, env: Env
) -> None:
    response = client.get("/api/v1/environment-document/", headers=env.server)
    assert response.status_code == 200
    doc = response.json()
    assert doc["api_key"] == env.client_key
    assert doc["name"] == "Test environment"
    assert "+00:00" in doc["updated_at"]
    state = next(s for s in doc["feature_states"] if s["feature"]["name"] == "checkout")
    assert state["django_id"] == 14
    assert [v["id"] for v in state["multivariate_feature_state_values"]] == [101, 102]
    segment = next(s for s in doc["project"]["segments"] if s["name"] == "gold_users")
    condition = segment["rules"][0]["rules"][0]["conditions"][0]
    assert condition == {"operator": "EQUAL", "property_": "plan", "value": "gold"}
    assert {s["feature_segment"]["priority"] for s in segment["feature_states"]} == {1}
    assert "last-modified" in response.headers


def test_environment_document__if_modified_since__304(
    client: TestClient, env: Env, state: AppState
) -> None:
    snapshot = state.cache.for_key(env.server_key)
    assert snapshot is not None
    later = format_datetime(snapshot.updated_at.replace(microsecond=0), usegmt=True)
    assert (
        client.get(
            "/api/v1/environment-document/", headers={**env.server, "If-Modified-Since": later}
        ).status_code
        == 304
    )
    assert (
        client.get(
            "/api/v1/environment-document/",
            headers={**env.server, "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
        ).status_code
        == 200
    )


def test_environment_document__revoked_server_key__403(
    client: TestClient, env: Env, state: AppState
) -> None:
    from sqlalchemy import update

    from ensign.storage.models import Environment, ServerKey

    assert client.get("/api/v1/environment-document/", headers=env.server).status_code == 200
    with state.units.write() as unit, unit_session(unit) as session:
        session.execute(update(ServerKey).values(active=False))
        session.execute(update(Environment).values(revision=Environment.revision + 1))
    assert client.get("/api/v1/environment-document/", headers=env.server).status_code == 403


# --- analytics ---------------------------------------------------------------------------------


def test_analytics__counts_stored__unknown_and_non_int_dropped(
    client: TestClient, env: Env, state: AppState
) -> None:
    response = client.post(
        "/api/v1/analytics/flags/",
        headers=env.client,
        json={"banner": 3, "nope": 5, "limit": "7", "beta": True},
    )
    assert response.status_code == 200
    assert response.content == b""
    client.post("/api/v1/analytics/flags/", headers=env.client, json={"banner": 2})
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.sum(FlagEvaluationCount.count))) == 5


def test_analytics__empty_document__environment_flags_unchanged(
    client: TestClient, make_env: Callable[..., Env]
) -> None:
    env = make_env(document(feature_states=[]))
    assert client.get("/api/v1/flags/", headers=env.client).json() == []


def test_post_identities__integer_beyond_64_bits__kept_as_a_number(
    client: TestClient, env: Env
) -> None:
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "big", "traits": [{"trait_key": "n", "trait_value": 2**100}]},
    )
    assert response.status_code == 200
    assert response.json()["traits"][0]["trait_value"] == pytest.approx(2**100)


def test_deprecated_flags_identifier__bare_list_of_identity_flags(
    client: TestClient, env: Env
) -> None:
    client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "old-sdk", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    response = client.get("/api/v1/flags/old-sdk", headers=env.client)
    assert response.status_code == 200
    flags = by_name(response.json())
    assert flags["banner"]["feature_state_value"] == "hello gold"


def test_identities__traits_of_every_type__round_trip_typed(client: TestClient, env: Env) -> None:
    traits = [
        {"trait_key": "s", "trait_value": "12"},
        {"trait_key": "i", "trait_value": 12},
        {"trait_key": "f", "trait_value": 1.5},
        {"trait_key": "b", "trait_value": False},
        {"trait_key": "e", "trait_value": ""},
    ]
    client.post(
        "/api/v1/identities/", headers=env.client, json={"identifier": "typed", "traits": traits}
    )
    stored = client.get("/api/v1/identities/?identifier=typed", headers=env.client).json()["traits"]
    assert {t["trait_key"]: t["trait_value"] for t in stored} == {
        "s": "12",
        "i": 12,
        "f": 1.5,
        "b": False,
        "e": "",
    }
    assert isinstance({t["trait_key"]: t["trait_value"] for t in stored}["b"], bool)


def test_flags__cached_fast_path__same_answer_as_full_route(client: TestClient, env: Env) -> None:
    # The first call compiles the environment (full route); later plain calls take the fast path.
    first = client.get("/api/v1/flags/", headers=env.client)
    cached = client.get("/api/v1/flags/", headers=env.client)
    # A CORS request always goes through the full route, middleware included.
    cors = client.get("/api/v1/flags/", headers={**env.client, "Origin": "https://app.example.com"})
    assert first.content == cached.content == cors.content
    for response in (first, cached, cors):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert (
            response.headers["x-flagsmith-document-updated-at"]
            == first.headers["x-flagsmith-document-updated-at"]
        )
    assert cors.headers["access-control-allow-origin"] == "*"
