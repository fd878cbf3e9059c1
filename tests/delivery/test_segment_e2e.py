"""The official Flagsmith SDK driving a real `ensign serve`, with the fake Segment and RudderStack
on sockets: two environments' write keys never crossed, an outage survived, and exposures and
custom events arriving as `track` messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from flagsmith import Flagsmith
from flagsmith.analytics import EventProcessorConfig

from ensign.integrations.values import property_value
from ensign.services.importing import import_document
from ensign.web.deps import AppState
from tests.conftest import Organisation, ServerProcess, wait_for
from tests.documents import standard_document
from tests.fakes.fixtures import Connector, Env, SegmentServed
from tests.units import unit_session

pytestmark = pytest.mark.slow


def test_official_sdk__two_environments_and_an_outage__each_key_gets_only_its_users_once(
    organisation: Organisation,
    env: Env,
    state: AppState,
    segment_vendors: SegmentServed,
    connect: Connector,
) -> None:
    # Given two environments, each with Segment and RudderStack under write keys of its own
    with state.units.write() as unit, unit_session(unit) as session:
        other = import_document(session, organisation.id, standard_document()).environment_key
    segment, rudder = segment_vendors.segment, segment_vendors.rudderstack
    keys = {env.client_key: ("seg-a", "rs-a"), other: ("seg-b", "rs-b")}
    segment.write_keys.update({"seg-a", "seg-b"})
    rudder.write_keys.update({"rs-a", "rs-b"})
    for env_key, (segment_key, rudder_key) in keys.items():
        connect(env_key, "segment", api_key=segment_key, base_url=segment_vendors.segment_url)
        connect(
            env_key, "rudderstack", api_key=rudder_key, base_url=segment_vendors.rudderstack_url
        )
    # and both vendors down for the first requests
    segment.script.fail(4, 503)
    rudder.script.fail(4, 502)
    served = connect.server
    clients = {k: Flagsmith(environment_key=k, api_url=served.api_url) for k in keys}
    expected: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in keys}
    # When the SDK identifies 15 users in each environment, interleaved, twice
    for _ in range(2):
        for n in range(15):
            for env_key, flagsmith in clients.items():
                identifier = f"{env_key[-4:]}-user-{n}"
                traits = {"plan": "gold"} if n % 2 else {}
                flags = flagsmith.get_identity_flags(identifier, traits=traits)
                expected[env_key][identifier] = {
                    name: property_value(f.enabled, f.value) for name, f in flags.flags.items()
                }
    wait_for(lambda: len(segment.messages) == 30 and len(rudder.messages) == 30)
    connect.settled()  # anything doubled or crossed would have arrived by then
    # Then each write key holds exactly its environment's users, each once, with its flags
    for env_key, (segment_key, rudder_key) in keys.items():
        assert segment.identifies(segment_key) == expected[env_key]
        assert rudder.identifies(rudder_key) == expected[env_key]
    assert len(segment.messages) == len(rudder.messages) == 30
    assert all(m["type"] == "identify" for m in segment.messages + rudder.messages)


def test_official_sdk__experiment_flag_and_track_event__experiment_viewed_and_track(
    served: ServerProcess,
    organisation: Organisation,
    env: Env,
    segment_vendors: SegmentServed,
    connect: Connector,
) -> None:
    # Given both destinations taking exposures and events, and a running experiment
    for kind, url in (
        ("segment", segment_vendors.segment_url),
        ("rudderstack", segment_vendors.rudderstack_url),
    ):
        connect(env.client_key, kind, api_key=f"{kind}-key", base_url=url, events=True)
    flags = httpx.get(f"{served.api_url}flags/", headers={"X-Environment-Key": env.client_key})
    feature = next(f["feature"]["id"] for f in flags.json() if f["feature"]["name"] == "checkout")
    with connect.change(env.client_key):
        created = httpx.post(
            f"{served.api_url}environments/{env.client_key}/experiments/",
            headers=organisation.headers,
            json={"name": "Checkout test", "feature": feature},
        )
        assert created.status_code == 201, created.text
    flagsmith = Flagsmith(
        environment_key=env.client_key,
        api_url=served.api_url,
        enable_events=True,
        event_processor_config=EventProcessorConfig(
            events_api_url=served.url, flush_interval_seconds=0.2
        ),
    )
    # When users are served the experiment's flag (twice each) and one of them buys
    served_variants = {}
    for user in ("buyer-1", "buyer-2", "buyer-3"):
        for _ in range(2):
            served_variants[user] = flagsmith.get_experiment_flag("checkout", user).variant
    flagsmith.track_event("purchase", identifier="buyer-1", value=42.5, metadata={"plan": "gold"})
    # Then each vendor gets one Experiment Viewed per user, with the variant served, and the
    # purchase as a track under its own name
    for fake in (segment_vendors.segment, segment_vendors.rudderstack):
        wait_for(lambda f=fake: len(f.tracks()) == 4)
    connect.settled()  # anything doubled would have arrived by then
    experiment_id = str(created.json()["id"])
    for fake in (segment_vendors.segment, segment_vendors.rudderstack):
        viewed = fake.tracks("Experiment Viewed")
        assert {m["userId"]: m["properties"]["variation_id"] for m in viewed} == served_variants
        assert all(
            m["properties"]
            == {
                "experiment_id": experiment_id,
                "experiment_name": "Checkout test",
                "variation_id": served_variants[m["userId"]],
                "variation_name": served_variants[m["userId"]],
            }
            for m in viewed
        )
        (purchase,) = fake.tracks("purchase")
        assert purchase["userId"] == "buyer-1"
        assert purchase["properties"]["plan"] == "gold"
        assert len(fake.tracks()) == 4
        assert fake.duplicates == 0
