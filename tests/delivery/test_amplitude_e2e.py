"""The official Flagsmith SDK driving a real `ensign serve` that sends to the fake Amplitude on
a socket: flag sets as user properties, two environments with their own API keys, an outage,
experiment exposures and custom events."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flagsmith import Flagsmith
from flagsmith.analytics import EventProcessorConfig
from flagsmith.models import Flag

from ensign.integrations.values import property_value
from ensign.services.importing import import_document
from ensign.web.deps import AppState
from tests.conftest import Organisation, ServerProcess, wait_for
from tests.documents import standard_document
from tests.events.test_sdk_events import start_experiment
from tests.fakes.fixtures import Connector, Env, Served
from tests.units import unit_session

pytestmark = pytest.mark.slow


def test_official_sdk__two_environments_outage_lost_answer__each_user_once_in_its_project(
    served: ServerProcess,
    state: AppState,
    organisation: Organisation,
    env: Env,
    vendors: Served,
    connect: Connector,
) -> None:
    # Given two environments sending to two Amplitude projects, Amplitude down at first and
    # then losing one answer after ingesting its batch
    with state.units.write() as unit, unit_session(unit) as session:
        other = import_document(
            session, organisation.id, standard_document(), project_name="Other"
        ).environment_key
    amplitude = vendors.amplitude
    amplitude.api_keys = {"key-a", "key-b"}
    for env_key, api_key in ((env.client_key, "key-a"), (other, "key-b")):
        connect(env_key, "amplitude", api_key=api_key, base_url=vendors.amplitude_url, events=True)
    amplitude.script.fail(3, 503, body=b'{"code":503,"error":"unavailable"}')
    amplitude.lose_answers = 1
    expected: dict[tuple[str, str], dict[str, Any]] = {}

    # When the SDK identifies 20 users in one environment, 10 in the other, one in both
    for env_key, api_key, users in (
        (env.client_key, "key-a", [f"a-{i}" for i in range(20)] + ["shared-user"]),
        (other, "key-b", [f"b-{i}" for i in range(10)] + ["shared-user"]),
    ):
        flagsmith = Flagsmith(environment_key=env_key, api_url=served.api_url)
        for n, identifier in enumerate(users):
            flags = flagsmith.get_identity_flags(
                identifier, traits={"plan": "gold"} if n % 2 else {}
            )
            expected[(api_key, identifier)] = {
                name: property_value(flag.enabled, flag.value) for name, flag in flags.flags.items()
            }

    # Then each project holds one $identify per identify call, each user's flags as its user
    # properties, and nothing from the other environment
    wait_for(lambda: len(amplitude.events) == 32)
    connect.settled()  # anything doubled would have arrived by then
    assert amplitude.users == expected
    for api_key, count in (("key-a", 21), ("key-b", 11)):
        events = amplitude.projects[api_key]
        assert len(events) == count
        assert {e["event_type"] for e in events} == {"$identify"}
        assert len({e["insert_id"] for e in events}) == count
    # The batch whose answer was lost was sent again, and Amplitude dropped it by insert_id
    assert amplitude.duplicates > 0
    bodies = [r["body"] for r in amplitude.requests]
    assert all(b'"options":{"min_id_length":1}' in body for body in bodies)


def test_official_sdk__experiment_flag_and_track_event__exposure_and_event_in_amplitude(
    served: ServerProcess, connect: Connector, env: Env, vendors: Served
) -> None:
    # Given Amplitude taking exposures and custom events, and a running experiment
    connect(
        env.client_key,
        "amplitude",
        api_key="amplitude-key",
        base_url=vendors.amplitude_url,
        events=True,
    )
    start_experiment(connect, env)
    flagsmith = Flagsmith(
        environment_key=env.client_key,
        api_url=served.api_url,
        enable_events=True,
        event_processor_config=EventProcessorConfig(
            events_api_url=served.url, flush_interval_seconds=0.2
        ),
    )
    before = int(time.time() * 1000)
    # When three users are served the experiment's flag twice each, and one converts
    variants = {}
    for user in ("buyer-1", "buyer-2", "buyer-3"):
        for _ in range(2):
            flag = flagsmith.get_experiment_flag("checkout", identifier=user)
            assert isinstance(flag, Flag)
            variants[user] = flag.variant
    flagsmith.track_event("purchase", identifier="buyer-1", value=42.5, metadata={"plan": "gold"})

    # Then Amplitude holds one $exposure per user naming the feature, the variant and the
    # experiment, and the purchase
    def of_type(event_type: str) -> list[dict[str, Any]]:
        return [e for e in vendors.amplitude.events if e["event_type"] == event_type]

    wait_for(lambda: len(of_type("$exposure")) == 3 and len(of_type("purchase")) == 1)
    connect.settled()  # anything doubled would have arrived by then
    after = int(time.time() * 1000)
    assert all(variants.values()), variants
    exposures = {e["user_id"]: e for e in of_type("$exposure")}
    assert {u: e["event_properties"] for u, e in exposures.items()} == {
        user: {"flag_key": "checkout", "variant": variant, "experiment_key": "Checkout test"}
        for user, variant in variants.items()
    }
    assert all(before <= e["time"] <= after for e in exposures.values())
    (purchase,) = of_type("purchase")
    assert purchase["user_id"] == "buyer-1"
    assert purchase["event_properties"]["plan"] == "gold"
    assert before <= purchase["time"] <= after
    # The identify calls behind the experiment flag set each buyer's flags as user properties
    assert {u for (_, u) in vendors.amplitude.users} == set(variants)
    assert len(of_type("$exposure")) == 3
    assert vendors.amplitude.duplicates == 0
