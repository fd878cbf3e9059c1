"""Every kind of OFREP answer Ensign gives validates against the protocol's v0.3.0 schemas
(tests/ofrep/ofrep_schema.py): single and bulk successes with every reason, and every error."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from tests.ofrep.ofrep_schema import (
    BULK_EVALUATION_FAILURE,
    BULK_EVALUATION_SUCCESS,
    EVALUATION_FAILURE,
    EVALUATION_SUCCESS,
    FLAG_NOT_FOUND,
)
from tests.sdk.conftest import Env

FLAG = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"
FLAGS = ("banner", "limit", "beta", "checkout", "zero")
# Contexts that reach every reason: segment matches (plan gold, adults), none, splits.
CONTEXTS: list[dict[str, Any]] = [
    {},
    *({"targetingKey": f"user-{n}"} for n in range(12)),
    {"targetingKey": "gold-user", "plan": "gold"},
    {"targetingKey": "adult", "age": 40},
    {"targetingKey": "child", "age": 9, "plan": "free"},
]


def _valid(schema: dict[str, Any], body: Any) -> None:
    jsonschema.Draft202012Validator(schema).validate(body)


def _post(client: TestClient, env: Env, path: str, **kwargs: Any) -> Any:
    return client.post(path, headers={"Authorization": f"Bearer {env.client_key}"}, **kwargs)


def test_single__every_flag_and_context__success_or_failure_schema(
    client: TestClient, env: Env
) -> None:
    reasons = set()
    for context in CONTEXTS:
        for key in FLAGS:
            response = _post(client, env, FLAG + key, json={"context": context})
            body = response.json()
            if response.status_code == 200:
                _valid(EVALUATION_SUCCESS, body)
                reasons.add(body["reason"])
            else:
                assert response.status_code == 400, response.text
                _valid(EVALUATION_FAILURE, body)
    # The contexts reached every reason Ensign gives, including a targeted feature's default.
    assert reasons == {"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED"}


@pytest.mark.parametrize("context", CONTEXTS, ids=range(len(CONTEXTS)))
def test_bulk__any_context__bulk_success_schema(
    client: TestClient, env: Env, context: dict[str, Any]
) -> None:
    response = _post(client, env, BULK, json={"context": context})
    assert response.status_code == 200
    _valid(BULK_EVALUATION_SUCCESS, response.json())


def test_errors__each_kind__its_schema(client: TestClient, env: Env) -> None:
    not_found = _post(client, env, FLAG + "missing", json={"context": {"targetingKey": "u"}})
    assert not_found.status_code == 404
    _valid(FLAG_NOT_FOUND, not_found.json())
    single_failures = [
        {"content": b"{nope", "headers": {"Content-Type": "application/json"}},
        {"json": {"context": "a string"}},
        {"json": {"context": {"plan": "gold"}}},  # banner's segments need a targeting key
    ]
    for request in single_failures:
        headers = {"Authorization": f"Bearer {env.client_key}", **request.pop("headers", {})}
        response = client.post(FLAG + "banner", headers=headers, **request)
        assert response.status_code == 400
        _valid(EVALUATION_FAILURE, response.json())
    for request in ({"content": b"{"}, {"json": {"context": {"targetingKey": False}}}):
        response = _post(client, env, BULK, **request)
        assert response.status_code == 400
        _valid(BULK_EVALUATION_FAILURE, response.json())


def test_schema__reason_outside_the_enum__rejected() -> None:
    answer = {"key": "banner", "value": "hello", "reason": "DEFAULT", "variant": "on"}
    with pytest.raises(jsonschema.ValidationError):
        _valid(EVALUATION_SUCCESS, answer)
    with pytest.raises(jsonschema.ValidationError):
        _valid(BULK_EVALUATION_SUCCESS, {"flags": [answer]})
