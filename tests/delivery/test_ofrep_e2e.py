"""OFREP evaluations reach the integrations, as transient identifies do: a real `ensign serve`
with the generic OFREP provider, and fake Heap and Mixpanel on sockets."""

from __future__ import annotations

import httpx
import pytest
from openfeature import api as openfeature_api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from tests.conftest import ServerProcess, wait_for
from tests.fakes.fixtures import Connector, Env, Served

pytestmark = pytest.mark.slow


def test_ofrep__identified_evaluations__reach_heap_and_mixpanel(
    served: ServerProcess, connect: Connector, env: Env, vendors: Served
) -> None:
    for kind, base in (("heap", vendors.heap_url), ("mixpanel", vendors.mixpanel_url)):
        connect(env.client_key, kind, api_key=f"{kind}-key", base_url=base)
    provider = OFREPProvider(served.url, headers_factory=lambda: {"X-API-Key": env.client_key})
    openfeature_api.set_provider(provider, domain="ofrep-delivery")
    client = openfeature_api.get_client("ofrep-delivery")
    try:
        gold = EvaluationContext(targeting_key="of-gold", attributes={"plan": "gold"})
        assert client.get_string_value("banner", "", gold) == "hello gold"
        # The bulk call records every flag.
        bulk = httpx.post(
            f"{served.url}/ofrep/v1/evaluate/flags",
            headers={"Authorization": f"Bearer {env.client_key}"},
            json={"context": {"targetingKey": "of-bulk", "age": 40}},
        )
        assert bulk.status_code == 200
        # Without a targeting key there is nobody to send.
        assert client.get_integer_value("limit", 0) == 10
    finally:
        openfeature_api.clear_providers()
    wait_for(lambda: {e["identity"] for e in vendors.heap.events} == {"of-gold", "of-bulk"})
    wait_for(lambda: len(vendors.mixpanel.profiles) == 2)
    by_identity = {e["identity"]: e["properties"] for e in vendors.heap.events}
    # The single evaluation sends the flag evaluated, the bulk one every flag.
    assert by_identity["of-gold"] == {"banner": "hello gold"}
    assert by_identity["of-bulk"]["banner"] == "hello adult"
    assert set(by_identity["of-bulk"]) == {"banner", "beta", "checkout", "limit", "zero"}
    assert vendors.mixpanel.profiles[("mixpanel-key", "of-gold")] == {"banner": "hello gold"}
    assert vendors.mixpanel.profiles[("mixpanel-key", "of-bulk")] == by_identity["of-bulk"]
