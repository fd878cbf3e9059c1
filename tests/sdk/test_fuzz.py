"""Whatever a client sends to the SDK API, the answer is never a 5xx and unrelated data survives."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sdk.conftest import Env

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "0", "12", "1.5", "-3", "true", "False", "ser.x", "a" * 2001]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
trait = st.fixed_dictionaries(
    {},
    optional={
        "trait_key": st.one_of(st.text(max_size=12), json_values),
        "trait_value": json_values,
        "transient": st.one_of(st.booleans(), json_values),
    },
)
identify_body = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "identifier": st.one_of(st.text(max_size=20), json_values),
            "traits": st.one_of(st.lists(trait, max_size=5), json_values),
            "transient": st.one_of(st.booleans(), json_values),
        },
    ),
)
trait_item = st.fixed_dictionaries(
    {},
    optional={
        "identity": st.one_of(
            st.fixed_dictionaries({"identifier": st.one_of(st.text(max_size=10), json_values)}),
            json_values,
        ),
        "trait_key": st.one_of(st.text(max_size=10), json_values),
        "trait_value": json_values,
    },
)
requests = st.one_of(
    st.tuples(st.just("POST"), st.just("/api/v1/identities/"), identify_body),
    st.tuples(st.just("POST"), st.just("/api/v1/traits/"), st.one_of(trait_item, json_values)),
    st.tuples(
        st.just("PUT"),
        st.just("/api/v1/traits/bulk/"),
        st.one_of(st.lists(trait_item, max_size=4), json_values),
    ),
    st.tuples(
        st.just("POST"),
        st.just("/api/v1/traits/increment-value/"),
        st.one_of(
            st.fixed_dictionaries(
                {
                    "trait_key": st.text(max_size=5),
                    "identifier": st.text(max_size=5),
                    "increment_by": json_values,
                }
            ),
            json_values,
        ),
    ),
    st.tuples(
        st.just("POST"),
        st.just("/api/v1/analytics/flags/"),
        st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=4), json_values),
    ),
    st.tuples(
        st.sampled_from(["GET", "DELETE", "PATCH"]),
        st.sampled_from(
            [
                "/api/v1/flags/",
                "/api/v1/identities/",
                "/api/v1/environment-document/",
                "/api/v1/traits/bulk/",
            ]
        ),
        st.none(),
    ),
)
queries = st.dictionaries(
    st.sampled_from(["identifier", "feature", "transient", "page"]),
    st.text(max_size=20),
    max_size=3,
)


@pytest.mark.slow
def test_sdk_api__any_request__never_5xx_and_unrelated_data_intact(
    client: TestClient, env: Env
) -> None:
    # Given: a known identity whose state must not change
    keeper = {"identifier": "keeper", "traits": [{"trait_key": "plan", "trait_value": "gold"}]}
    before = client.post("/api/v1/identities/", headers=env.client, json=keeper).json()
    flags_before = client.get("/api/v1/flags/", headers=env.client).json()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=requests, query=queries, server=st.booleans(), raw=st.booleans())
    def run(request: tuple[str, str, Any], query: dict[str, str], server: bool, raw: bool) -> None:
        method, path, body = request
        headers = dict(env.server if server else env.client)
        if raw and isinstance(body, str):
            response = client.request(
                method,
                path,
                params=query,
                headers={**headers, "Content-Type": "application/json"},
                content=body.encode("utf-8", "surrogatepass"),
            )
        else:
            response = client.request(
                method, path, params=query, headers=headers, json=body if method != "GET" else None
            )
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400 and response.content:
            assert isinstance(response.json(), dict)

    run()

    # Then: unrelated data is as it was
    after = client.get("/api/v1/identities/?identifier=keeper", headers=env.client).json()
    assert {t["trait_key"]: t["trait_value"] for t in after["traits"]} == {
        t["trait_key"]: t["trait_value"] for t in before["traits"]
    }
    assert client.get("/api/v1/flags/", headers=env.client).json() == flags_before
