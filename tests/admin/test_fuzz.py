"""Every admin operation in the OpenAPI schema, fed generated input: never a 5xx, and another
organisation's data is untouched."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.admin.conftest import Admin, World

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def _resolve(schema: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """Inline `$ref`s so that hypothesis-jsonschema can generate from the schema alone."""
    if depth > 8:
        return {}
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _resolve(components[name], components, depth + 1)
        return {
            k: _resolve(v, components, depth + 1)
            for k, v in schema.items()
            if k not in ("discriminator", "examples", "example")
        }
    if isinstance(schema, list):
        return [_resolve(v, components, depth + 1) for v in schema]
    return schema


def _body_strategy(operation: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return st.none()
    try:
        valid = from_schema(_resolve(content["schema"], components))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            valid.example()  # generation is lazy: a schema it cannot read fails only here
    except Exception:
        return json_values
    return st.one_of(valid, valid, json_values)


def _setup(admin: Admin) -> dict[str, Any]:
    project = admin.project("Fuzzed")
    env = admin.environment(project["id"])
    feature = admin.feature(project["id"], "fuzz_flag", initial_value="x")
    segment = admin.made(
        f"/api/v1/projects/{project['id']}/segments/",
        {
            "name": "s",
            "rules": [
                {
                    "type": "ALL",
                    "rules": [],
                    "conditions": [{"operator": "EQUAL", "property": "a", "value": "1"}],
                }
            ],
        },
    )
    identity = admin.made(
        f"/api/v1/environments/{env['api_key']}/identities/", {"identifier": "fuzz-user"}
    )
    return {
        "org_id": admin.organisation_id,
        "project_id": project["id"],
        "api_key": env["api_key"],
        "feature_id": feature["id"],
        "segment_id": segment["id"],
        "identity_id": identity["id"],
    }


def _other_organisation_state(other: Admin, env_key: str) -> Any:
    return (
        other.get("/api/v1/projects/").json(),
        other.get(f"/api/v1/environments/{env_key}/document/").json(),
        other.client.get("/api/v1/flags/", headers={"X-Environment-Key": env_key}).json(),
        other.get("/api/v1/audit/").json()["count"],
    )


@pytest.mark.slow
def test_admin_api__generated_input_on_every_operation__never_5xx_and_other_org_untouched(
    world: World, admin: Admin, client_for_fuzz: TestClient
) -> None:
    # Given: data in the fuzzed organisation, and another organisation's data to protect
    known = _setup(admin)
    other = world.new_organisation("Bystander")
    other_project = other.project("Theirs")
    other_env = other.environment(other_project["id"])
    other.feature(other_project["id"], "their_flag", initial_value="keep")
    before = _other_organisation_state(other, other_env["api_key"])

    schema = client_for_fuzz.app.openapi()  # type: ignore[attr-defined]
    components = schema.get("components", {}).get("schemas", {})
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "SDK" not in operation.get("tags", [])
    ]
    assert len(operations) > 60

    def fill(path: str, choice: dict[str, Any]) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(choice.get(name, 1))

        return re.sub(r"\{(\w+)\}", value, path)

    bodies = {
        (path, method): _body_strategy(operation, components)
        for path, method, operation in operations
    }

    @st.composite
    def requests(draw: st.DrawFn) -> tuple[str, str, Any, dict[str, str]]:
        path, method, operation = draw(st.sampled_from(operations))
        params: dict[str, Any] = {}
        for name in re.findall(r"\{(\w+)\}", path):
            candidates = [v for k, v in known.items() if k.split("_")[0] in name or k == name]
            params[name] = draw(
                st.one_of(
                    st.sampled_from(candidates or [1]),
                    st.integers(-5, 10**12),
                    st.text(
                        alphabet=st.characters(
                            min_codepoint=33,
                            max_codepoint=0x2FFF,
                            exclude_characters="/?#%\x7f",
                            exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
                        ),
                        min_size=1,
                        max_size=8,
                    ),
                )
            )
        query = {
            p["name"]: draw(st.one_of(st.text(max_size=8), st.integers(-3, 10**10).map(str)))
            for p in operation.get("parameters", [])
            if p.get("in") == "query" and draw(st.booleans())
        }
        body = draw(bodies[(path, method)])
        return method.upper(), fill(path, params), body, query

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=requests())
    def run(request: tuple[str, str, Any, dict[str, str]]) -> None:
        method, path, body, query = request
        response = admin.client.request(
            method,
            path,
            headers=admin.headers,
            params=query,
            json=body if method in ("POST", "PUT", "PATCH") else None,
        )
        assert response.status_code < 500, (method, path, body, response.text)
        if response.content and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            response.json()

    run()

    # Then: the other organisation's projects, document, flags and audit trail are as they were
    assert _other_organisation_state(other, other_env["api_key"]) == before


@pytest.fixture
def client_for_fuzz(world: World) -> TestClient:
    return world.client
