"""A vendor that hangs never slows the flags endpoint: the request path only records."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from tests.conftest import ServerProcess, wait_for
from tests.fakes.fixtures import Connector, Env, Served
from tests.fakes.script import Answer

pytestmark = pytest.mark.slow

CALLS = 100


def median_identify_ms(client: httpx.Client, prefix: str) -> float:
    """Median latency of CALLS identify calls, each a new identity with traits."""
    timings = []
    for i in range(CALLS):
        started = time.perf_counter()
        response = client.post(
            "identities/",
            json={
                "identifier": f"{prefix}-{i}",
                "traits": [{"trait_key": "plan", "trait_value": "gold"}],
            },
        )
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(timings)


def test_hanging_vendor__identify_latency__within_noise_of_healthy(
    served: ServerProcess, connect: Connector, env: Env, vendors: Served
) -> None:
    # Given both integrations on a running server
    for kind, base in (("heap", vendors.heap_url), ("mixpanel", vendors.mixpanel_url)):
        connect(env.client_key, kind, api_key=f"{kind}-key", base_url=base)
    with httpx.Client(
        base_url=served.api_url, headers={"X-Environment-Key": env.client_key}, timeout=10
    ) as client:
        median_identify_ms(client, "warmup")
        wait_for(lambda: len(vendors.heap.events) >= CALLS, timeout=30)

        # When identify calls are timed with healthy vendors, then with both vendors hanging
        healthy = median_identify_ms(client, "healthy")
        wait_for(lambda: len(vendors.heap.events) >= 2 * CALLS, timeout=30)
        hang = Answer(hang_seconds=60)
        vendors.heap.script.always = hang
        vendors.mixpanel.script.always = hang
        sent = len(vendors.heap.requests)
        client.post("identities/", json={"identifier": "first-to-hang"})
        wait_for(lambda: len(vendors.heap.requests) > sent)  # a delivery is hanging now
        hanging = median_identify_ms(client, "hanging")

    print(f"identify median: healthy {healthy:.2f} ms, vendor hanging {hanging:.2f} ms")
    # Then the latency is the same within noise
    assert hanging <= 2 * healthy + 5, f"hanging {hanging:.1f} ms, healthy {healthy:.1f} ms"
    # And nothing is lost: once the vendors answer again, every evaluation arrives
    vendors.heap.script.clear()
    vendors.mixpanel.script.clear()
    wait_for(lambda: len({e["identity"] for e in vendors.heap.events}) == 3 * CALLS + 1, timeout=30)
    wait_for(lambda: len(vendors.mixpanel.profiles) == 3 * CALLS + 1, timeout=30)
