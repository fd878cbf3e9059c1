"""OFREP evaluations of a running experiment's feature: the experiment in the flag's metadata,
and one exposure per user at the vendors, as a remote identify call gives."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ensign.web.deps import AppState
from tests.delivery.dispatching import deliver
from tests.experiments.test_exposures import experiment_events, sdk, start, stop
from tests.fakes.fixtures import Env, Served, configure

__all__ = ["sdk"]

FLAG = "/ofrep/v1/evaluate/flags/"


def ofrep_checkout(sdk: TestClient, env: Env, identifier: str) -> dict[str, Any]:
    response = sdk.post(
        FLAG + "checkout",
        headers={"Authorization": f"Bearer {env.client_key}"},
        json={"context": {"targetingKey": identifier}},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_ofrep__running_experiment__metadata_and_one_exposure_per_user(
    state: AppState, sdk: TestClient, env: Env, vendors: Served
) -> None:
    # Given Mixpanel and a running experiment on the multivariate feature
    configure(state, env, "mixpanel", vendors.mixpanel_url)
    experiment_id = start(state, env)

    # When 20 users are evaluated twice each over OFREP
    served = {}
    for _ in range(2):
        for n in range(20):
            body = ofrep_checkout(sdk, env, f"user-{n}")
            assert body["metadata"]["experimentId"] == experiment_id
            assert body["metadata"]["experimentName"] == "Checkout test"
            assert body["metadata"]["inExperiment"] is True
            served[f"user-{n}"] = body["variant"]
    deliver(state, lambda: len(experiment_events(vendors)[0]) >= 20)

    # Then Mixpanel got one exposure per user, naming the variant OFREP served
    mixpanel, _ = experiment_events(vendors)
    assert {
        e["properties"]["distinct_id"]: e["properties"]["Variant name"] for e in mixpanel
    } == served

    # And once stopped, the metadata names no experiment
    stop(state, env, experiment_id)
    body = ofrep_checkout(sdk, env, "user-0")
    assert set(body["metadata"]) == {"featureId"}
