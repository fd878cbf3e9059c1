"""A catastrophic REGEX condition costs an evaluation a few milliseconds, not seconds, on every
surface that evaluates segments (issue 22)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.documents import condition, document, feature_state, segment
from tests.sdk.conftest import Env

# `^(a+)+$` is the reported pattern; `^(a|a)*$` is one the regex engine cannot shortcut, so its
# match runs into the budget. Under Python's `re` each takes seconds against these traits.
EVIL = [("^(a+)+$", "a" * 28 + "!"), ("^(a|a)*$", "a" * 24 + "!")]


def _env(make_env: Callable[..., Env], pattern: str) -> Env:
    return make_env(
        document(
            feature_states=[feature_state(1, "banner", value="plain", django_id=11)],
            segments=[
                segment(
                    21,
                    "pattern",
                    [condition("REGEX", "name", pattern)],
                    [feature_state(1, "banner", value="matched", django_id=31, priority=1)],
                )
            ],
        )
    )


def _ofrep(client: TestClient, env: Env, name: str) -> Any:
    response = client.post(
        "/ofrep/v1/evaluate/flags/banner",
        headers={"Authorization": f"Bearer {env.client_key}"},
        json={"context": {"targetingKey": "u1", "name": name}},
    )
    assert response.status_code == 200
    return response.json()["value"]


def _identify(client: TestClient, env: Env, name: str) -> Any:
    response = client.post(
        "/api/v1/identities/",
        headers=env.client,
        json={
            "identifier": "u1",
            "traits": [{"trait_key": "name", "trait_value": name}],
            "transient": True,
        },
    )
    assert response.status_code == 200
    return next(f["feature_state_value"] for f in response.json()["flags"])


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = call()
    return time.perf_counter() - started, answer


@pytest.mark.parametrize("surface", [_ofrep, _identify], ids=["ofrep", "identify"])
@pytest.mark.parametrize(("pattern", "evil"), EVIL)
def test_regex__catastrophic_pattern__answers_within_100ms_more_than_a_plain_request(
    client: TestClient,
    make_env: Callable[..., Env],
    surface: Callable[[TestClient, Env, str], Any],
    pattern: str,
    evil: str,
) -> None:
    env = _env(make_env, pattern)
    assert surface(client, env, "aaaa") == "matched"  # also compiles the environment

    # The best of three of each, so that a busy machine's pauses do not count.
    plain = min(_timed(lambda: surface(client, env, "b"))[0] for _ in range(3))
    timings = [_timed(lambda: surface(client, env, evil)) for _ in range(3)]

    assert {answer for _, answer in timings} == {"plain"}
    assert min(seconds for seconds, _ in timings) - plain < 0.1
