"""The PyPI OpenFeature SDK with the generic OFREP provider, driving a real `ensign serve`:
no Flagsmith SDK involved."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api as openfeature_api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.conftest import ServerProcess
from tests.documents import feature_state, standard_document
from tests.e2e.test_official_sdk import ensign_import

pytestmark = pytest.mark.slow


@pytest.fixture
def keys(database_url: str, tmp_path: Path) -> dict[str, Any]:
    doc = standard_document(
        identity_overrides=[
            {
                "identifier": "vip",
                "identity_features": [feature_state(1, "banner", value="vip banner")],
            }
        ]
    )
    doc["feature_states"].append(feature_state(6, "layout", value='{"columns": 3}', django_id=16))
    doc["feature_states"].append(feature_state(7, "team/flag", value="on the team", django_id=17))
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return ensign_import(database_url, path)


@pytest.fixture
def client(server: ServerProcess, keys: dict[str, Any]) -> Iterator[OpenFeatureClient]:
    key = keys["environment_key"]
    provider = OFREPProvider(server.url, headers_factory=lambda: {"Authorization": f"Bearer {key}"})
    openfeature_api.set_provider(provider, domain="ofrep")
    yield openfeature_api.get_client("ofrep")
    openfeature_api.clear_providers()


def context(targeting_key: str, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=targeting_key, attributes=attributes)


def test_provider__typed_values(client: OpenFeatureClient) -> None:
    gold = context("of-1", plan="gold")
    assert client.get_string_value("banner", "default", gold) == "hello gold"
    assert client.get_integer_value("limit", 0) == 10
    assert client.get_integer_value("zero", 7) == 0
    assert client.get_object_value("layout", {}) == {"columns": 3}
    assert client.get_boolean_value("beta", False, gold) is True
    details = client.get_boolean_details("beta", True, context("of-2"))
    assert (details.value, details.reason, details.variant) == (False, Reason.DISABLED, "off")
    vip = client.get_string_details("banner", "default", context("vip"))
    assert (vip.value, vip.reason) == ("vip banner", Reason.TARGETING_MATCH)
    assert vip.flag_metadata == {"featureId": 1}


def test_provider__errors__default_value_and_code(client: OpenFeatureClient) -> None:
    missing = client.get_string_details("nope", "fallback", context("of-3"))
    assert (missing.value, missing.error_code) == ("fallback", ErrorCode.FLAG_NOT_FOUND)
    anonymous = client.get_string_details("banner", "fallback")
    assert (anonymous.value, anonymous.error_code) == (
        "fallback",
        ErrorCode.TARGETING_KEY_MISSING,
    )
    wrong_type = client.get_integer_details("banner", 5, context("of-4"))
    assert (wrong_type.value, wrong_type.error_code) == (5, ErrorCode.TYPE_MISMATCH)


def test_provider__key_with_a_slash__evaluated(client: OpenFeatureClient) -> None:
    details = client.get_string_details("team/flag", "default", context("of-5"))
    assert (details.value, details.error_code) == ("on the team", None)
    assert details.flag_metadata == {"featureId": 7}


# Each flag of the document with the typed call a user would make for it.
TYPED: dict[str, Callable[[OpenFeatureClient], Callable[..., Any]]] = {
    "banner": lambda c: c.get_string_details,
    "checkout": lambda c: c.get_string_details,
    "limit": lambda c: c.get_integer_details,
    "zero": lambda c: c.get_integer_details,
    "beta": lambda c: c.get_boolean_details,
    "layout": lambda c: c.get_object_details,
}
DEFAULTS = {"banner": "", "checkout": "", "limit": -1, "zero": -1, "beta": False, "layout": {}}


def expected(flag: dict[str, Any]) -> tuple[Any, str, str]:
    """OFREP's value, reason and variant for a flag object of Ensign's identity API."""
    enabled, value = flag["enabled"], flag["feature_state_value"]
    if enabled and value is not None:
        if isinstance(value, str) and value.startswith("{"):
            value = json.loads(value)
    else:
        value = enabled
    reason = flag["reason"].split(";")[0] if enabled else "DISABLED"
    if reason == "DEFAULT":
        reason = "STATIC"  # OFREP's enum has no DEFAULT; the Flagsmith provider says STATIC
    return value, reason, flag.get("variant") or ("on" if enabled else "off")


def test_provider__200_random_contexts__match_ensign_identity_evaluation(
    client: OpenFeatureClient, server: ServerProcess, keys: dict[str, Any]
) -> None:
    rng = random.Random(20261126)
    seen_reasons = set()
    with httpx.Client(base_url=server.api_url) as http:
        for n in range(200):
            identifier = "vip" if n % 25 == 0 else f"ctx-{rng.randrange(10**6)}"
            attributes: dict[str, Any] = {}
            if rng.random() < 0.5:
                attributes["plan"] = rng.choice(["gold", "free"])
            if rng.random() < 0.5:
                attributes["age"] = rng.randint(5, 60)
            response = http.post(
                "identities/",
                headers={"X-Environment-Key": keys["environment_key"]},
                json={
                    "identifier": identifier,
                    "traits": [{"trait_key": k, "trait_value": v} for k, v in attributes.items()],
                    "transient": True,
                },
            )
            flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
            for name, typed in TYPED.items():
                details = typed(client)(name, DEFAULTS[name], context(identifier, **attributes))
                assert details.error_code is None, (name, details.error_message)
                got = (details.value, details.reason, details.variant)
                assert got == expected(flags[name]), (identifier, attributes, name)
                seen_reasons.add(details.reason)
    # The comparison covers every kind of reason.
    assert seen_reasons == {"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED"}
