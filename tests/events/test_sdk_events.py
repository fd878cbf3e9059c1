"""The official Python SDK (flagsmith 6.3, `enable_events=True`) against a real `ensign serve`,
with the fake Heap and Mixpanel on sockets: custom events and exposures from remote and local
evaluation, an SDK retry after a 5xx, and a SIGKILL after the 202."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from flagsmith import Flagsmith
from flagsmith.analytics import EventProcessorConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ensign.services.importing import import_document
from ensign.services.keys import AdminPrincipal
from ensign.web.deps import AppState
from tests.conftest import Organisation, ServerProcess, free_port, wait_for
from tests.documents import feature_state, standard_document
from tests.fakes.fixtures import SERVER_ENV, Connector, Env, Served
from tests.fakes.script import ServedApp
from tests.units import unit_session

pytestmark = pytest.mark.slow


def connect_vendors(connect: Connector, env: Env, vendors: Served) -> None:
    for kind, base in (("heap", vendors.heap_url), ("mixpanel", vendors.mixpanel_url)):
        connect(env.client_key, kind, api_key=f"{kind}-key", base_url=base, events=True)


def sdk(key: str, api_url: str, events_api_url: str, *, local: bool = False) -> Flagsmith:
    return Flagsmith(
        environment_key=key,
        api_url=api_url,
        enable_local_evaluation=local,
        enable_events=True,
        event_processor_config=EventProcessorConfig(
            events_api_url=events_api_url, flush_interval_seconds=0.2
        ),
    )


def counters(served: ServerProcess, organisation: Organisation, env: Env) -> dict[str, Any]:
    response = httpx.get(
        f"{served.api_url}environments/{env.client_key}/events/", headers=organisation.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def start_experiment(connect: Connector, env: Env) -> None:
    served = connect.server
    features = httpx.get(
        f"{served.api_url}flags/", headers={"X-Environment-Key": env.client_key}
    ).json()
    feature_id = next(f["feature"]["id"] for f in features if f["feature"]["name"] == "checkout")
    with connect.change(env.client_key):
        response = httpx.post(
            f"{served.api_url}environments/{env.client_key}/experiments/",
            headers=connect.organisation.headers,
            json={"name": "Checkout test", "feature": feature_id},
        )
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("mode", ["remote", "local"])
def test_sdk_events__experiment_flag_and_track_event__reach_the_vendors(
    served: ServerProcess,
    organisation: Organisation,
    env: Env,
    vendors: Served,
    connect: Connector,
    mode: str,
) -> None:
    # Given both integrations sending events, a running experiment, and the SDK pointed at
    # Ensign's events API (the API URL in local mode, the host's in remote mode)
    connect_vendors(connect, env, vendors)
    start_experiment(connect, env)
    local = mode == "local"
    key = env.server_key if local else env.client_key
    flagsmith = sdk(key, served.api_url, f"{served.url}/api/" if local else served.url, local=local)
    before = int(time.time() * 1000)
    # When the application serves the experiment's flag and users convert
    served_variants = {}
    for user in ("buyer-1", "buyer-2", "buyer-3"):
        for _ in range(2):  # seen twice: one exposure
            if local:
                # SDK 6.3's local engine gives flags a variant but no experiment metadata, so
                # `get_experiment_flag` sends nothing there: the application reports the
                # exposure itself.
                flag = flagsmith.get_identity_flags(user).get_flag("checkout")
                flagsmith.track_exposure_event("checkout", identifier=user, value=flag.variant)
            else:
                flag = flagsmith.get_experiment_flag("checkout", identifier=user)
            served_variants[user] = flag.variant
    flagsmith.track_event("purchase", identifier="buyer-1", value=42.5, metadata={"plan": "gold"})
    flagsmith.track_exposure_event("banner", identifier="buyer-1", value="control")

    # Then Mixpanel gets one $experiment_started per user, with the variant served, and the
    # purchase; Heap the same as Experiment Viewed and purchase
    # (remote identify calls also send Heap their flag sets, under another name)
    def heap_events() -> list[dict[str, Any]]:
        return [e for e in vendors.heap.events if e["event"] != "Flagsmith Feature Flags"]

    wait_for(lambda: len(heap_events()) == 4 and len(vendors.mixpanel.events) == 4)
    connect.settled()  # anything doubled would have arrived by then
    after = int(time.time() * 1000)
    # One exposure per user although both the server (remote identify) and the SDK saw it
    assert len(vendors.mixpanel.events) == 4
    assert all(served_variants.values()), served_variants
    started = {
        e["properties"]["distinct_id"]: e["properties"]
        for e in vendors.mixpanel.events
        if e["event"] == "$experiment_started"
    }
    assert {u: p["Variant name"] for u, p in started.items()} == served_variants
    assert all(p["Experiment name"] == "Checkout test" for p in started.values())
    assert all(before <= p["time"] <= after for p in started.values())
    purchase = next(e["properties"] for e in vendors.mixpanel.events if e["event"] == "purchase")
    assert purchase["distinct_id"] == "buyer-1"
    assert purchase["value"] == "42.5"
    assert before <= purchase["time"] <= after
    viewed = {
        e["identity"]: e["properties"]["Variant name"]
        for e in heap_events()
        if e["event"] == "Experiment Viewed"
    }
    assert viewed == served_variants
    assert len(heap_events()) == 4
    heap_purchase = next(e for e in heap_events() if e["event"] == "purchase")
    assert heap_purchase["identity"] == "buyer-1"
    assert heap_purchase["properties"]["plan"] == "gold"
    assert vendors.mixpanel.duplicate_events == 0
    assert vendors.heap.duplicates == 0
    # And the exposure for a feature with no running experiment is counted, logged, unsent
    counts = counters(served, organisation, env)
    assert counts["unmatched"] == 1
    assert counts["unmatched_exposures"][0]["feature_name"] == "banner"


class FailAfterForwarding:
    """A proxy in front of the server that forwards the first events POST, then answers the
    SDK 502 as if the server had failed: the SDK re-sends a batch the server already holds."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.failed = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["POST"])])

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{self.upstream}{request.url.path}", content=body, headers=headers
            )
        with self._lock:
            self.forwarded += 1
            if self.failed == 0 and answer.status_code == 202:
                self.failed += 1
                return Response(b"bad gateway", status_code=502)
        return Response(answer.content, status_code=answer.status_code)


def test_sdk_events__retry_after_a_5xx__nothing_doubled_at_the_vendor(
    served: ServerProcess,
    organisation: Organisation,
    env: Env,
    vendors: Served,
    connect: Connector,
) -> None:
    connect_vendors(connect, env, vendors)
    proxy = FailAfterForwarding(served.url)
    proxied = ServedApp(proxy.app)
    proxied.start()
    try:
        flagsmith = sdk(env.client_key, served.api_url, proxied.url + "/")
        for i in range(5):
            flagsmith.track_event("purchase", identifier=f"u{i}", value=i)
        # The first flush is stored but answered 502; the SDK keeps the events and re-sends
        # them with its next flush, along with the newer ones.
        wait_for(lambda: proxy.failed == 1)
        for i in range(5, 8):
            flagsmith.track_event("purchase", identifier=f"u{i}", value=i)
        wait_for(lambda: counters(served, organisation, env)["received"] == 8)
        wait_for(lambda: len(vendors.heap.events) == 8 and len(vendors.mixpanel.events) == 8)
        connect.settled()  # anything doubled would have arrived by then
    finally:
        proxied.stop()
    assert len(vendors.heap.events) == 8
    assert vendors.heap.duplicates == 0
    assert len(vendors.mixpanel.events) == 8
    assert vendors.mixpanel.duplicate_events == 0
    assert proxy.forwarded >= 2
    assert counters(served, organisation, env)["duplicates"] >= 5


def test_sdk_events__bad_event__refused_alone_with_index_field_and_reason(
    served: ServerProcess, env: Env, organisation: Organisation
) -> None:
    now = int(time.time() * 1000)
    good = {"event": "purchase", "identifier": "u", "value": "1", "timestamp": now}
    response = httpx.post(
        f"{served.url}/v1/events",
        content=b'{"events": [%s, %s, {"event": "purchase", "identifier": "v", "timestamp": 1, '
        b'"value": 1e999}]}' % (orjson.dumps(good), orjson.dumps(good | {"event": "$identify"})),
        headers={"X-Environment-Key": env.client_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["refused"]] == [(1, "event"), (2, "value")]
    assert counters(served, organisation, env)["rejected"] == 2


def test_sdk_events__sigkill_after_the_202__nothing_lost(
    database_url: str, tmp_path: Path, organisation: Organisation, env: Env, vendors: Served
) -> None:
    # Given a server that records but does not deliver (no dispatcher in it)
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    process.start(extra_env={**SERVER_ENV, "ENSIGN_DELIVERY_IN_SERVE": "false"})
    try:
        connect_vendors(Connector(process, organisation), env, vendors)
        now = int(time.time() * 1000)
        batch = [
            {"event": "purchase", "identifier": f"k{i}", "value": str(i), "timestamp": now + i}
            for i in range(200)
        ]
        response = httpx.post(
            f"{process.url}/api/v1/events",
            json={"events": batch},
            headers={"X-Environment-Key": env.server_key},
        )
        assert response.status_code == 202
        # When it is killed right after answering, then started again with its dispatcher
        assert process.process is not None
        process.process.send_signal(signal.SIGKILL)
        process.process.wait()
        process.start(extra_env=SERVER_ENV)
        # Then every event accepted arrives, once
        wait_for(lambda: len(vendors.heap.events) == 200 and len(vendors.mixpanel.events) == 200)
        assert {e["identity"] for e in vendors.heap.events} == {f"k{i}" for i in range(200)}
        assert vendors.heap.duplicates == 0
    finally:
        process.stop()


def test_sdk_events__exposures_checked_against_ensigns_evaluation__only_the_real_one_recorded(
    served: ServerProcess,
    organisation: Organisation,
    state: AppState,
    vendors: Served,
    connect: Connector,
) -> None:
    # Given an environment where gold users get a segment override of the experiment's feature
    # (no variants), Mixpanel sending exposures, and an experiment running on that feature
    document = standard_document()
    gold = next(s for s in document["project"]["segments"] if s["name"] == "gold_users")
    gold["feature_states"].append(
        feature_state(4, "checkout", value="gold_checkout", django_id=34, priority=1)
    )
    with state.units.write() as unit, unit_session(unit) as session:
        imported = import_document(session, organisation.id, document)
    env = Env(
        imported.environment_key,
        imported.server_key,
        imported.environment_id,
        AdminPrincipal(organisation.id, 0, "tests"),
    )
    response = httpx.post(
        f"{served.api_url}environments/{env.client_key}/integrations/mixpanel/",
        headers=organisation.headers,
        json={"api_key": "mixpanel-key", "base_url": vendors.mixpanel_url, "events": True},
    )
    assert response.status_code == 201, response.text
    start_experiment(connect, env)
    # The SDK's own local evaluation of Ensign's document says what each user is served
    local = sdk(env.server_key, served.api_url, f"{served.url}/api/", local=True)
    variants = {
        user: local.get_identity_flags(user).get_flag("checkout").variant
        for user in ("real", "forger", "mistaken")
    }
    gold_flag = local.get_identity_flags("goldie", traits={"plan": "gold"}).get_flag("checkout")
    assert gold_flag.value == "gold_checkout"
    wrong = next(v for v in ("one", "two", "control") if v != variants["mistaken"])
    # When an application reports exposures through the SDK: one true, one forged variant,
    # one wrong variant, one user outside the experiment, one feature without an experiment
    app = sdk(env.client_key, served.api_url, served.url)
    app.track_exposure_event("checkout", identifier="real", value=variants["real"])
    app.track_exposure_event("checkout", identifier="forger", value="free_upgrade")
    app.track_exposure_event("checkout", identifier="mistaken", value=wrong)
    app.track_exposure_event("checkout", identifier="goldie", value="one", traits={"plan": "gold"})
    app.track_exposure_event("banner", identifier="real", value="control")
    wait_for(lambda: counters(served, organisation, env)["exposures"] == 5)
    # Then only the real exposure reaches Mixpanel, once
    wait_for(lambda: len(vendors.mixpanel.events) >= 1)
    time.sleep(0.5)  # anything else would arrive now
    assert [
        (e["properties"]["distinct_id"], e["properties"]["Variant name"])
        for e in vendors.mixpanel.events
    ] == [("real", variants["real"])]
    # And the others are counted by reason and kept for inspection
    counts = counters(served, organisation, env)
    assert counts["unmatched"] == 4
    reasons = ("not_in_experiment", "wrong_variant", "unknown_variant", "no_running_experiment")
    assert {r: counts[r] for r in reasons} == dict.fromkeys(reasons, 1)
    refused = {e["identifier"] + ":" + e["feature_name"]: e for e in counts["unmatched_exposures"]}
    assert refused["forger:checkout"]["reason"] == "unknown_variant"
    assert refused["mistaken:checkout"]["reason"] == "wrong_variant"
    assert refused["mistaken:checkout"]["served_variant"] == variants["mistaken"]
    assert refused["goldie:checkout"]["reason"] == "not_in_experiment"
    assert refused["real:banner"]["reason"] == "no_running_experiment"
    metrics = httpx.get(f"{served.url}/metrics").text
    assert (
        f'ensign_sdk_events_total{{environment_id="{env.environment_id}",counter="wrong_variant"}} 1'
        in metrics
    )
