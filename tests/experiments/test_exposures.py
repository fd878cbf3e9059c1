"""Exposures recorded by identify calls and delivered to fake Heap and Mixpanel on sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ensign.services.admin import experiments
from ensign.services.admin.experiments import ExperimentInput
from ensign.services.exposures import record_exposure
from ensign.services.importing import import_document
from ensign.services.keys import AdminPrincipal
from ensign.storage.experiments import SessionExposures
from ensign.storage.models import utcnow
from ensign.web.app import create_app
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.delivery.dispatching import deliver
from tests.documents import feature_state, standard_document
from tests.fakes.fixtures import Env, Served, configure
from tests.units import unit_session


@pytest.fixture
def sdk(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as client:
        yield client


def start(state: AppState, env: Env, name: str = "Checkout test", **fields: Any) -> int:
    snapshot = state.cache.for_key(env.client_key)
    assert snapshot is not None
    data = ExperimentInput(
        name=name,
        feature=snapshot.features["checkout"].id,
        running=True,
        given=frozenset({"name", "feature", "running", *fields}),
        **fields,
    )
    with state.units.write() as unit:
        return experiments.create_experiment(unit, env.principal, env.client_key, data).id


def stop(state: AppState, env: Env, experiment_id: int) -> None:
    data = ExperimentInput(running=False, given=frozenset({"running"}))
    with state.units.write() as unit:
        experiments.update_experiment(unit, env.principal, env.client_key, experiment_id, data)


def checkout(sdk: TestClient, key: str, identifier: str, **traits: Any) -> dict[str, Any]:
    response = sdk.post(
        "/api/v1/identities/",
        headers={"X-Environment-Key": key},
        json={
            "identifier": identifier,
            "traits": [{"trait_key": k, "trait_value": v} for k, v in traits.items()],
        },
    )
    assert response.status_code == 200, response.text
    flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
    return flags["checkout"]


def experiment_events(vendors: Served) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mixpanel = [e for e in vendors.mixpanel.events if e["event"] == "$experiment_started"]
    heap = [e for e in vendors.heap.events if e["event"] == "Experiment Viewed"]
    return mixpanel, heap


def test_exposures__repeat_calls__one_event_per_user_with_the_served_variant(
    state: AppState, sdk: TestClient, env: Env, vendors: Served
) -> None:
    # Given both integrations and a running experiment on the multivariate feature
    configure(state, env, "heap", vendors.heap_url)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    experiment_id = start(state, env)
    served: dict[str, str] = {}

    # When 30 users are identified three times each
    for _ in range(3):
        for n in range(30):
            flag = checkout(sdk, env.client_key, f"user-{n}")
            assert flag["metadata"]["experiment"] == {
                "id": experiment_id,
                "name": "Checkout test",
                "in_experiment": True,
            }
            served[f"user-{n}"] = flag["variant"]
    deliver(state, lambda: all(len(e) >= 30 for e in experiment_events(vendors)))

    # Then each vendor got exactly one exposure per user, naming the variant served
    mixpanel, heap = experiment_events(vendors)
    assert len(mixpanel) == 30
    assert len(heap) == 30
    assert {
        e["properties"]["distinct_id"]: e["properties"]["Variant name"] for e in mixpanel
    } == served
    assert {e["identity"]: e["properties"]["Variant name"] for e in heap} == served
    assert {e["properties"]["Experiment name"] for e in mixpanel + heap} == {"Checkout test"}
    assert set(served.values()) == {"one", "two", "control"}
    assert all(e["properties"]["token"] == "mixpanel-key" for e in mixpanel)
    assert len({e["properties"]["$insert_id"] for e in mixpanel}) == 30
    assert len({e["idempotency_key"] for e in heap}) == 30


def test_exposures__override_or_outside_segment__not_in_experiment_and_not_sent(
    state: AppState, sdk: TestClient, organisation: Organisation, vendors: Served
) -> None:
    # Given an identity override for "vip" and an experiment limited to gold users
    document = standard_document(
        identity_overrides=[
            {
                "identifier": "vip",
                "identity_features": [feature_state(4, "checkout", value="vip_checkout")],
            }
        ]
    )
    with state.units.write() as unit, unit_session(unit) as session:
        imported = import_document(session, organisation.id, document)
    env = Env(
        imported.environment_key,
        imported.server_key,
        imported.environment_id,
        AdminPrincipal(organisation.id, 0, "tests"),
    )
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    snapshot = state.cache.for_key(env.client_key)
    assert snapshot is not None
    gold = _segment_id(sdk, organisation, snapshot.project_id, "gold_users")
    start(state, env, segment=gold)

    # When a gold user, a user outside the segment and the overridden gold user are identified
    member = checkout(sdk, env.client_key, "member", plan="gold")
    outsider = checkout(sdk, env.client_key, "outsider", plan="free")
    vip = checkout(sdk, env.client_key, "vip", plan="gold")
    deliver(state, lambda: len(experiment_events(vendors)[0]) >= 1)

    # Then only the member is in the experiment, and only the member's exposure is sent
    assert member["metadata"]["experiment"]["in_experiment"] is True
    assert outsider["metadata"]["experiment"]["in_experiment"] is False
    assert vip["metadata"]["experiment"]["in_experiment"] is False
    assert vip["feature_state_value"] == "vip_checkout"
    mixpanel, _ = experiment_events(vendors)
    assert [e["properties"]["distinct_id"] for e in mixpanel] == ["member"]


def test_exposures__stopped_experiment__no_metadata_and_no_new_exposures(
    state: AppState, sdk: TestClient, env: Env, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url)
    experiment_id = start(state, env)
    checkout(sdk, env.client_key, "early")

    stop(state, env, experiment_id)
    late = checkout(sdk, env.client_key, "late")
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    checkout(sdk, env.client_key, "later")
    deliver(state, lambda: len(vendors.mixpanel.profiles) >= 1)

    _, heap = experiment_events(vendors)
    assert "metadata" not in late
    assert [e["identity"] for e in heap] == ["early"]
    assert experiment_events(vendors)[0] == []


def test_exposures__integration_without_exposures__gets_only_flags(
    state: AppState, sdk: TestClient, env: Env, vendors: Served
) -> None:
    configure(state, env, "heap", vendors.heap_url, exposures=False)
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    start(state, env)

    checkout(sdk, env.client_key, "user-1")
    deliver(
        state,
        lambda: len(experiment_events(vendors)[0]) == 1 and len(vendors.heap.events) >= 1,
    )

    assert experiment_events(vendors)[1] == []
    assert len(vendors.heap.events) == 1


def _segment_id(sdk: TestClient, organisation: Organisation, project_id: int, name: str) -> int:
    response = sdk.get(f"/api/v1/projects/{project_id}/segments/", headers=organisation.headers)
    assert response.status_code == 200, response.text
    return int(next(s["id"] for s in response.json()["results"] if s["name"] == name))


def test_exposures__mixpanel_api_secret__sent_through_import(
    state: AppState, sdk: TestClient, env: Env, vendors: Served
) -> None:
    configure(state, env, "mixpanel", vendors.mixpanel_url, api_secret="s3cret")
    start(state, env)

    checkout(sdk, env.client_key, "user-1")
    deliver(state, lambda: len(experiment_events(vendors)[0]) == 1)

    imports = [r for r in vendors.mixpanel.requests if r.get("path") == "/import"]
    assert len(imports) == 1
    assert imports[0]["headers"]["authorization"] == "Basic czNjcmV0Og=="
    assert imports[0]["query"] == {"strict": "1"}


def test_record_exposure__same_variant_once__a_new_variant_again(
    state: AppState, env: Env, vendors: Served
) -> None:
    # Given a running experiment and an integration taking exposures
    configure(state, env, "heap", vendors.heap_url)
    start(state, env)
    snapshot = state.cache.for_key(env.client_key)
    assert snapshot is not None
    experiment = snapshot.experiments["checkout"]
    at = utcnow()

    # When the same identity is recorded with one variant twice, then another
    with state.units.write() as unit, unit_session(unit) as session:
        writer = SessionExposures(session)
        first = record_exposure(writer, snapshot, experiment, "jo", "one", at)
        again = record_exposure(writer, snapshot, experiment, "jo", "one", at)
        changed = record_exposure(writer, snapshot, experiment, "jo", "two", at)
    deliver(state, lambda: len(experiment_events(vendors)[1]) >= 2)

    # Then the first sight of each variant is an exposure, and only those are sent
    assert (first, again, changed) == (True, False, True)
    assert [e["properties"]["Variant name"] for e in experiment_events(vendors)[1]] == [
        "one",
        "two",
    ]


def test_exposures__amplitude__exposure_names_feature_variant_and_experiment(
    state: AppState, sdk: TestClient, env: Env, vendors: Served
) -> None:
    configure(state, env, "amplitude", vendors.amplitude_url)
    start(state, env)

    served = checkout(sdk, env.client_key, "jo")
    checkout(sdk, env.client_key, "jo")

    def exposures() -> list[dict[str, Any]]:
        return [e for e in vendors.amplitude.events if e["event_type"] == "$exposure"]

    deliver(state, lambda: len(exposures()) == 1 and vendors.amplitude.user("jo") is not None)
    (exposure,) = exposures()
    assert exposure["user_id"] == "jo"
    assert exposure["event_properties"] == {
        "flag_key": "checkout",
        "variant": served["variant"],
        "experiment_key": "Checkout test",
    }
