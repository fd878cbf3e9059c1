"""The real `ensign serve` process, the official Flagsmith SDK, and fake vendors on sockets."""

from __future__ import annotations

import signal

import httpx
import pytest
from flagsmith import Flagsmith

from ensign.integrations.values import property_value
from tests.conftest import ServerProcess, wait_for
from tests.fakes.fixtures import SERVER_ENV, Connector, Env, Served

pytestmark = pytest.mark.slow


def test_official_sdk__identity_calls_and_sigkill__every_evaluation_arrives(
    served: ServerProcess, connect: Connector, env: Env, vendors: Served
) -> None:
    # Given both integrations, configured through the admin API, and Heap failing at first
    for kind, base in (("heap", vendors.heap_url), ("mixpanel", vendors.mixpanel_url)):
        connect(env.client_key, kind, api_key=f"{kind}-key", base_url=base)
    vendors.heap.script.fail(5, 503)
    flagsmith = Flagsmith(environment_key=env.client_key, api_url=served.api_url)
    expected: dict[str, dict[str, object]] = {}

    def call(i: int) -> None:
        identifier = f"sdk-user-{i}"
        traits = {"plan": "gold"} if i % 2 else {}
        flags = flagsmith.get_identity_flags(identifier, traits=traits)
        expected[identifier] = {
            name: property_value(flag.enabled, flag.value) for name, flag in flags.flags.items()
        }

    # When the server is killed mid-run and started again
    for i in range(20):
        call(i)
    assert served.process is not None
    served.process.send_signal(signal.SIGKILL)
    served.process.wait()
    served.start(extra_env=SERVER_ENV)
    for i in range(20, 40):
        call(i)
    # Then every evaluation arrives, values checked one by one
    wait_for(lambda: len({e["identity"] for e in vendors.heap.events}) == 40)
    wait_for(lambda: len(vendors.mixpanel.profiles) == 40)
    for event in vendors.heap.events:
        assert event["properties"] == expected[event["identity"]]
    assert len(vendors.heap.events) == 40  # duplicates only where Heap dedupes them by key
    for (token, identifier), profile in vendors.mixpanel.profiles.items():
        assert token == "mixpanel-key"
        assert profile == expected[identifier]
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'ensign_delivery_requests_total{kind="heap",outcome="delivered"}' in metrics
