"""OFREP over raw HTTP: every error code and shape of the v0.3.0 document, ETag and 304, and
the success shapes, against the standard document (tests/documents.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ensign.storage.models import Identity, Trait
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.documents import document, feature_state, standard_document
from tests.sdk.conftest import Env
from tests.units import unit_session

FLAG = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def evaluate(client: TestClient, env: Env, key: str, context: dict[str, Any]) -> Any:
    response = client.post(FLAG + key, headers=bearer(env.client_key), json={"context": context})
    return response.status_code, response.json()


# --- authentication ----------------------------------------------------------------------------


def test_auth__missing_key__401(client: TestClient, env: Env) -> None:
    response = client.post(FLAG + "limit", json={"context": {}})
    assert response.status_code == 401
    assert response.json()["errorCode"] == "GENERAL"
    assert client.post(BULK, json={"context": {}}).status_code == 401


def test_auth__unknown_key__401(client: TestClient, env: Env) -> None:
    response = client.post(FLAG + "limit", headers=bearer("nope"), json={"context": {}})
    assert response.status_code == 401
    assert client.post(BULK, headers={"X-API-Key": "nope"}, json={}).status_code == 401


def test_auth__client_key_bearer_and_server_key_header__both_evaluate(
    client: TestClient, env: Env
) -> None:
    for headers in (bearer(env.client_key), {"X-API-Key": env.server_key}):
        response = client.post(FLAG + "limit", headers=headers, json={"context": {}})
        assert response.status_code == 200, response.text
        assert response.json()["value"] == 10


def test_auth__organisation_stopped_serving__403(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    configure(env, organisation={"stop_serving_flags": True})
    response = client.post(FLAG + "limit", headers=bearer(env.client_key), json={})
    assert response.status_code == 403


# --- single flag -------------------------------------------------------------------------------


def test_single__static_flag__exact_shape(client: TestClient, env: Env) -> None:
    status, body = evaluate(client, env, "limit", {})
    assert status == 200
    assert body == {
        "key": "limit",
        "value": 10,
        "reason": "STATIC",
        "variant": "on",
        "metadata": {"featureId": 2},
    }


def test_single__segment_match__targeting_match(client: TestClient, env: Env) -> None:
    status, body = evaluate(client, env, "banner", {"targetingKey": "u1", "plan": "gold"})
    assert (status, body["value"], body["reason"]) == (200, "hello gold", "TARGETING_MATCH")
    status, body = evaluate(client, env, "banner", {"targetingKey": "u1"})
    # A segment overrides banner, and none matched: Flagsmith's DEFAULT, which OFREP's enum
    # does not have; STATIC, as the Flagsmith OpenFeature provider says it.
    assert (body["value"], body["reason"], body["variant"]) == ("hello", "STATIC", "on")


def test_single__disabled_flag__false_disabled_off(client: TestClient, env: Env) -> None:
    status, body = evaluate(client, env, "beta", {"targetingKey": "u2"})
    assert (status, body["value"], body["reason"], body["variant"]) == (
        200,
        False,
        "DISABLED",
        "off",
    )
    # Enabled by a segment, with no value: the enabled boolean.
    status, body = evaluate(client, env, "beta", {"targetingKey": "u2", "plan": "gold"})
    assert (body["value"], body["reason"], body["variant"]) == (True, "TARGETING_MATCH", "on")


def test_single__multivariate__split_or_control(client: TestClient, env: Env) -> None:
    seen = set()
    for n in range(40):
        _, body = evaluate(client, env, "checkout", {"targetingKey": f"mv-{n}"})
        seen.add((body["reason"], body["variant"], body["value"]))
    assert ("SPLIT", "one", "one_page") in seen
    assert ("SPLIT", "two", "express") in seen
    assert ("STATIC", "control", "control") in seen


def test_single__json_object_text__served_as_object(
    client: TestClient, make_env: Callable[..., Env]
) -> None:
    env = make_env(document(feature_states=[feature_state(9, "layout", value='{"columns": 3}')]))
    status, body = evaluate(client, env, "layout", {})
    assert (status, body["value"]) == (200, {"columns": 3})


def test_single__unknown_flag__404_flag_not_found(client: TestClient, env: Env) -> None:
    status, body = evaluate(client, env, "missing", {"targetingKey": "u"})
    assert status == 404
    assert body == {
        "key": "missing",
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "Flag 'missing' was not found.",
    }
    assert evaluate(client, env, "missing", {})[0] == 404


def test_single__key_with_a_slash__evaluated_encoded_or_not(
    client: TestClient, env: Env, organisation: Organisation
) -> None:
    # Given a feature the admin API accepts with a "/" in its name
    created = client.post(
        f"/api/v1/projects/{env.project_id}/features/",
        headers=organisation.headers,
        json={"name": "team/flag", "initial_value": "on the team", "default_enabled": True},
    )
    assert created.status_code == 201, created.text

    # When it is evaluated on the single route, its key percent-encoded or as it is
    encoded = evaluate(client, env, "team%2Fflag", {"targetingKey": "u"})
    plain = evaluate(client, env, "team/flag", {"targetingKey": "u"})

    # Then both answer the flag under its own key
    assert encoded == (200, {**encoded[1], "key": "team/flag", "value": "on the team"})
    assert plain == encoded
    bulk_keys = [f["key"] for f in bulk(client, env, {"targetingKey": "u"}).json()["flags"]]
    assert "team/flag" in bulk_keys
    missing = evaluate(client, env, "team%2Fnope", {})
    assert missing == (
        404,
        {
            "key": "team/nope",
            "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": "Flag 'team/nope' was not found.",
        },
    )


def test_single__server_only_flag__not_found_for_client_keys(
    client: TestClient, make_env: Callable[..., Env]
) -> None:
    env = make_env(standard_document(server_key_only_feature_ids=[2]))
    assert evaluate(client, env, "limit", {})[0] == 404
    response = client.post(FLAG + "limit", headers={"X-API-Key": env.server_key}, json={})
    assert response.status_code == 200


def test_single__bad_json__400_parse_error(client: TestClient, env: Env) -> None:
    for content in (b"{nope", b"[1, 2]"):
        response = client.post(
            FLAG + "limit",
            headers={**bearer(env.client_key), "Content-Type": "application/json"},
            content=content,
        )
        assert response.status_code == 400
        body = response.json()
        assert (body["key"], body["errorCode"]) == ("limit", "PARSE_ERROR")
        assert body["errorDetails"]


@pytest.mark.parametrize(
    "context",
    [
        "a string",
        {"targetingKey": 12},
        {"targetingKey": "x" * 2001},
        {"targetingKey": "u", "plan": "x" * 2001},
        {"targetingKey": "u", **{f"t{n}": n for n in range(201)}},
        {"targetingKey": "u", "k" * 1001: 1},
    ],
)
def test_single__invalid_context__400_invalid_context(
    client: TestClient, env: Env, context: Any
) -> None:
    status, body = evaluate(client, env, "limit", context)
    assert status == 400
    assert (body["key"], body["errorCode"]) == ("limit", "INVALID_CONTEXT")
    assert body["errorDetails"].startswith("context")


def test_single__rules_without_targeting_key__400_targeting_key_missing(
    client: TestClient, env: Env
) -> None:
    for key in ("banner", "checkout"):
        status, body = evaluate(client, env, key, {"plan": "gold"})
        assert status == 400
        assert (body["key"], body["errorCode"]) == (key, "TARGETING_KEY_MISSING")


def test_single__transient__nothing_stored(client: TestClient, env: Env, state: AppState) -> None:
    status, body = evaluate(client, env, "banner", {"targetingKey": "ghost", "plan": "gold"})
    assert (status, body["value"]) == (200, "hello gold")
    assert evaluate(client, env, "banner", {"targetingKey": "ghost"})[1]["value"] == "hello"
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Identity)) == 0
        assert session.scalar(select(func.count()).select_from(Trait)) == 0


def test_single__stored_identity__its_traits_apply(client: TestClient, env: Env) -> None:
    client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={"identifier": "kept", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
    )
    assert evaluate(client, env, "banner", {"targetingKey": "kept"})[1]["value"] == "hello gold"


# --- bulk --------------------------------------------------------------------------------------


def bulk(client: TestClient, env: Env, context: dict[str, Any], **headers: str) -> Any:
    return client.post(
        BULK, headers={**bearer(env.client_key), **headers}, json={"context": context}
    )


def test_bulk__identified__every_flag_and_metadata(client: TestClient, env: Env) -> None:
    response = bulk(client, env, {"targetingKey": "b1", "age": 30})
    assert response.status_code == 200
    body = response.json()
    flags = {f["key"]: f for f in body["flags"]}
    assert set(flags) == {"banner", "beta", "checkout", "limit", "zero"}
    assert flags["banner"]["value"] == "hello adult"
    assert flags["banner"]["reason"] == "TARGETING_MATCH"
    assert flags["zero"] == {
        "key": "zero",
        "value": 0,
        "reason": "STATIC",
        "variant": "on",
        "metadata": {"featureId": 5},
    }
    assert isinstance(body["metadata"]["version"], str)
    assert body["eventStreams"] == [
        {"type": "sse", "endpoint": {"requestUri": f"/sse/environments/{env.client_key}/stream"}}
    ]
    assert response.headers["ETag"].startswith('"')


def test_bulk__no_targeting_key__per_flag_errors(client: TestClient, env: Env) -> None:
    flags = {f["key"]: f for f in bulk(client, env, {}).json()["flags"]}
    assert flags["banner"]["errorCode"] == "TARGETING_KEY_MISSING"
    assert flags["checkout"]["errorCode"] == "TARGETING_KEY_MISSING"
    assert flags["limit"]["value"] == 10


def test_bulk__errors__shapes_without_key(client: TestClient, env: Env) -> None:
    response = client.post(
        BULK,
        headers={**bearer(env.client_key), "Content-Type": "application/json"},
        content=b"{",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"errorCode", "errorDetails"}
    assert response.json()["errorCode"] == "PARSE_ERROR"
    response = bulk(client, env, {"targetingKey": False})
    assert (response.status_code, response.json()["errorCode"]) == (400, "INVALID_CONTEXT")


def test_bulk__etag__304_until_context_or_environment_changes(
    client: TestClient, env: Env, configure: Callable[..., None]
) -> None:
    context = {"targetingKey": "e1", "plan": "gold"}
    etag = bulk(client, env, context).headers["ETag"]
    again = bulk(client, env, context, **{"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["ETag"] == etag
    assert bulk(client, env, context, **{"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    changed = bulk(client, env, {**context, "plan": "free"}, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    configure(env, environment={"name": "renamed"})
    after = bulk(client, env, context, **{"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag


def test_bulk__etag__changes_when_stored_traits_change_the_answer(
    client: TestClient, env: Env
) -> None:
    # Given an identity stored on the free plan, and its bulk answer's ETag
    def identify(plan: str) -> None:
        response = client.post(
            "/api/v1/identities/",
            headers=env.client,
            json={"identifier": "e2", "traits": [{"trait_key": "plan", "trait_value": plan}]},
        )
        assert response.status_code == 200, response.text

    identify("free")
    first = bulk(client, env, {"targetingKey": "e2"})
    etag = first.headers["ETag"]
    assert bulk(client, env, {"targetingKey": "e2"}, **{"If-None-Match": etag}).status_code == 304

    # When its stored plan changes to gold through the SDK API
    identify("gold")
    after = bulk(client, env, {"targetingKey": "e2"}, **{"If-None-Match": etag})

    # Then the provider revalidating its cache gets the new flags and a new ETag
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    flags = {f["key"]: f for f in after.json()["flags"]}
    assert flags["banner"]["value"] == "hello gold"
    assert flags["beta"]["value"] is True
    assert after.json()["flags"] != first.json()["flags"]
    again = bulk(client, env, {"targetingKey": "e2"}, **{"If-None-Match": after.headers["ETag"]})
    assert again.status_code == 304


def test_unknown_ofrep_path__ofrep_shape(client: TestClient, env: Env) -> None:
    response = client.get(FLAG + "limit", headers=bearer(env.client_key))
    assert response.status_code == 405
    assert response.json()["errorCode"] == "GENERAL"
