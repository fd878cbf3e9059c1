"""JSON nested thousands deep, sent to every surface that reads JSON: a 400 in the surface's
own format before anything else runs, and nothing in the log (issue 22)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.sdk.conftest import Env, env, make_env

__all__ = ["env", "make_env"]


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


NESTED = "The JSON body nests more than 256 levels deep."

# (method, path, the answer's shape); no credentials anywhere: nothing needs them to refuse.
SURFACES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/flags/", {"detail": NESTED}),
    ("POST", "/api/v1/identities/", {"detail": NESTED}),
    ("POST", "/api/v1/traits/", {"detail": NESTED}),
    ("POST", "/api/v1/analytics/flags/", {"detail": NESTED}),
    # The events API refuses a deep event alone, keeping the batch's others (tests/events).
    ("GET", "/sse/environments/abc/stream", {"detail": NESTED}),
    (
        "POST",
        "/ofrep/v1/evaluate/flags/banner",
        {"key": "banner", "errorCode": "PARSE_ERROR", "errorDetails": NESTED},
    ),
    ("POST", "/ofrep/v1/evaluate/flags", {"errorCode": "PARSE_ERROR", "errorDetails": NESTED}),
    ("GET", "/api/v1/projects/", {"error": "invalid", "detail": NESTED}),
    ("POST", "/api/v1/projects/", {"error": "invalid", "detail": NESTED}),
    ("POST", "/api/v1/projects/import/", {"error": "invalid", "detail": NESTED}),
    ("POST", "/api/v1/environments/abc/cohort-sync-keys/", {"error": "invalid", "detail": NESTED}),
    (
        "POST",
        "/api/v1/cohort-sync/mixpanel/",
        {"action": None, "status": "failure", "error": {"message": NESTED, "code": 400}},
    ),
]


@pytest.mark.parametrize("body", [deep(5000), deep(990), deep_object(300)], ids=len)
@pytest.mark.parametrize(
    ("method", "path", "answer"), SURFACES, ids=[f"{s[0]} {s[1]}" for s in SURFACES]
)
def test_deep_body__every_json_surface__400_in_its_format_and_no_log(
    client: TestClient,
    env: Env,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    answer: Any,
    body: str,
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    assert (response.status_code, response.json()) == (400, answer)
    # The test client logs its own requests; the server, nothing.
    assert [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")] == []


def test_deep_body__with_a_valid_key__400_before_anything_else(
    client: TestClient, env: Env
) -> None:
    response = client.post("/api/v1/identities/", headers=env.client, content=deep(5000))
    assert (response.status_code, response.json()) == (400, {"detail": NESTED})


def test_body_256_deep__still_parsed_by_the_route(client: TestClient, env: Env) -> None:
    # Within the limit, the route's own answer: the context is not an object.
    response = client.post(
        "/ofrep/v1/evaluate/flags/banner",
        headers={"Authorization": f"Bearer {env.client_key}"},
        json={"context": {"targetingKey": "u", "deep": _nested(250)}},
    )
    assert response.status_code == 200, response.text


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value
