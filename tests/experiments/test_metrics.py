"""An experiment's metrics end to end: defined with `PATCH …/experiments/{id}/`, fed by identify
calls (exposures, at the app's injected clock) and `POST /api/v1/events`, read from
`GET …/results/`. Attribution: first exposure's variant, the window after it, identities exposed
to two variants left out."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ensign.settings import Settings
from ensign.storage.db import Database
from ensign.storage.experiments import SessionExposures
from ensign.web.app import build_state, create_app
from tests.admin.conftest import Admin, make_organisation

# Event timestamps are believed within the last five days: the experiment happens 3 days ago.
T = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
HOUR = dt.timedelta(hours=1)


@dataclass
class Lab:
    url: str
    client: TestClient
    admin: Admin
    now: list[dt.datetime]


@pytest.fixture
def lab(database_url: str) -> Iterator[Lab]:
    now = [T]
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    app = create_app(state=build_state(settings, clock=lambda: now[0]))
    with TestClient(app) as client:
        organisation_id, key = make_organisation(database_url, "Acme")
        yield Lab(database_url, client, Admin(client, organisation_id, key), now)


def _experiment(admin: Admin, weight: float) -> tuple[str, str]:
    """An environment's key and its running experiment's URL, on a feature whose variant
    `express` has `weight` percent."""
    project = admin.project()
    environment = admin.environment(project["id"])
    feature = admin.feature(
        project["id"], "checkout", initial_value="classic", default_enabled=True
    )
    admin.made(
        f"/api/v1/projects/{project['id']}/features/{feature['id']}/mv-options/",
        {"value": "express", "key": "express", "default_percentage_allocation": weight},
    )
    base = f"/api/v1/environments/{environment['api_key']}/experiments/"
    experiment = admin.made(base, {"name": "Checkout test", "feature": feature["id"]})
    return environment["api_key"], f"{base}{experiment['id']}/"


def _identify(lab: Lab, key: str, identifier: str) -> None:
    response = lab.client.post(
        "/api/v1/identities/", headers={"X-Environment-Key": key}, json={"identifier": identifier}
    )
    assert response.status_code == 200, response.text


def _event(identifier: str, at: dt.datetime, amount: float | None = None) -> dict[str, Any]:
    return {
        "event": "purchase",
        "feature_name": None,
        "identifier": identifier,
        "value": None,
        "traits": None,
        "metadata": {} if amount is None else {"amount": amount},
        "timestamp": int(at.timestamp() * 1000),
    }


def _send(lab: Lab, key: str, *events: dict[str, Any]) -> None:
    """Send events as an SDK flushes them: received after they happened (the server takes
    event times later than its clock as that time)."""
    exposed_at = lab.now[0]
    lab.now[0] = T + 3 * 24 * HOUR
    try:
        response = lab.client.post(
            "/api/v1/events", json={"events": list(events)}, headers={"X-Environment-Key": key}
        )
    finally:
        lab.now[0] = exposed_at
    assert response.status_code == 202, response.text


METRICS = [
    {"name": "bought", "event": "purchase", "kind": "conversion", "window_hours": 24},
    {"name": "purchases", "event": "purchase", "kind": "count", "window_hours": 24},
    {
        "name": "revenue",
        "event": "purchase",
        "kind": "sum",
        "property": "amount",
        "window_hours": 24,
        "primary": True,
    },
]


def test_metrics__window_and_multiple_exposures__attributed_to_the_first_variant(
    lab: Lab,
) -> None:
    # Given metrics on an experiment whose variant takes everyone, and ann and cy served it at T
    key, url = _experiment(lab.admin, weight=100)
    response = lab.admin.patch(url, {"metrics": METRICS})
    assert response.status_code == 200, response.text
    assert [m["name"] for m in response.json()["metrics"]] == ["bought", "purchases", "revenue"]
    _identify(lab, key, "ann")
    _identify(lab, key, "cy")
    experiment_id = int(url.rstrip("/").rsplit("/", 1)[1])

    # When ann buys before her exposure, twice inside the 24 h window and once after it, cy
    # buys and is then exposed to control as well, bob is exposed to control an hour after T
    # and buys, and dan, never exposed, buys
    _send(
        lab,
        key,
        _event("ann", T - HOUR, 100),
        _event("ann", T + HOUR, 10),
        _event("ann", T + 23 * HOUR, 5),
        _event("ann", T + 25 * HOUR, 1000),
        _event("cy", T + HOUR, 50),
    )
    database = Database(lab.url)
    try:
        with database.session() as session:
            writer = SessionExposures(session)
            writer.insert_exposure(experiment_id, "cy", "control", T + 2 * HOUR)
            writer.insert_exposure(experiment_id, "bob", "control", T + HOUR)
    finally:
        database.dispose()
    _send(
        lab,
        key,
        _event("bob", T + 30 * 60 * dt.timedelta(seconds=1), 999),  # before his exposure
        _event("bob", T + 2 * HOUR, 7),
        _event("cy", T + 3 * HOUR, 70),
        _event("dan", T + HOUR, 20),
    )

    body = lab.admin.get(url + "results/").json()

    # Then ann counts in express with her two events in the window, bob in control with his
    # one after exposure; cy is left out and counted; dan counts nowhere
    assert body["metric_users"] == {"express": 1, "control": 1}
    assert body["multiple_exposures"] == 1
    assert body["min_users"] == 100
    figures = {m["name"]: {v["variant"]: v for v in m["variants"]} for m in body["metrics"]}
    bought = figures["bought"]
    assert (bought["control"]["users"], bought["control"]["converted"]) == (1, 1)
    assert (bought["express"]["users"], bought["express"]["converted"]) == (1, 1)
    assert bought["express"]["rate"] == 1.0
    assert figures["purchases"]["express"]["mean"] == 2.0
    assert figures["purchases"]["control"]["mean"] == 1.0
    assert figures["revenue"]["express"]["mean"] == 15.0
    assert figures["revenue"]["control"]["mean"] == 7.0
    # One user a side is far below the minimum sample: figures given, marked
    assert bought["express"]["insufficient_data"] is True
    assert bought["control"]["lift"] is None
    assert bought["express"]["lift"] == 0.0
    assert [m["primary"] for m in body["metrics"]] == [False, False, True]


def test_metrics__redefined__its_values_start_again(lab: Lab) -> None:
    # Given a count metric with one counted event
    key, url = _experiment(lab.admin, weight=100)
    lab.admin.patch(url, {"metrics": METRICS[1:2]})
    _identify(lab, key, "ann")
    _send(lab, key, _event("ann", T + HOUR))

    # When it is redefined (a longer window) and another event arrives
    changed = {**METRICS[1], "window_hours": 48}
    assert lab.admin.patch(url, {"metrics": [changed]}).status_code == 200
    _send(lab, key, _event("ann", T + 2 * HOUR))

    # Then only the event after the change counts
    body = lab.admin.get(url + "results/").json()
    (metric,) = body["metrics"]
    assert {v["variant"]: v["mean"] for v in metric["variants"]}["express"] == 1.0
    assert metric["window_hours"] == 48

    # And making it primary, which changes nothing it measures, keeps its values
    assert lab.admin.patch(url, {"metrics": [{**changed, "primary": True}]}).status_code == 200
    (metric,) = lab.admin.get(url + "results/").json()["metrics"]
    assert {v["variant"]: v["mean"] for v in metric["variants"]}["express"] == 1.0


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ("bought", "metrics: Input should be a valid list"),
        ([{"name": "x", "event": "e", "kind": "median"}], "metrics[0].kind: one of"),
        ([{"name": "x", "event": "e", "kind": "sum"}], "metrics[0].property"),
        ([{"name": "", "event": "e", "kind": "count"}], "metrics[0].name"),
        ([{"name": "$users", "event": "e", "kind": "count"}], "may not begin with $"),
        ([{"name": "x", "event": "e", "kind": "count", "window_hours": 0}], "window_hours"),
        ([{"name": "x", "event": "e", "kind": "count", "window_hours": True}], "window_hours"),
        ([{"name": "x", "event": "e", "kind": "count", "colour": 1}], "unknown field 'colour'"),
        (
            [
                {"name": "x", "event": "e", "kind": "count"},
                {"name": "x", "event": "f", "kind": "count"},
            ],
            "own name",
        ),
        (
            [
                {"name": "x", "event": "e", "kind": "count", "primary": True},
                {"name": "y", "event": "e", "kind": "count", "primary": True},
            ],
            "at most one primary",
        ),
    ],
)
def test_metrics__bad_definitions__400_naming_the_field(
    lab: Lab, metrics: Any, message: str
) -> None:
    _, url = _experiment(lab.admin, weight=50)

    response = lab.admin.patch(url, {"metrics": metrics})

    assert response.status_code == 400, response.text
    assert message in response.text
    assert lab.admin.get(url).json()["metrics"] == []


def test_metrics__events_over_several_batches__totals_match_the_users_values(lab: Lab) -> None:
    # Given six users in the variant, five of whom buy (amounts over three batches)
    key, url = _experiment(lab.admin, weight=100)
    lab.admin.patch(url, {"metrics": METRICS})
    amounts = {"u1": [3.0, 4.5], "u2": [10.0], "u3": [1.0, 1.0, 1.0, 2.0], "u4": [7.25], "u5": []}
    amounts["u6"] = [0.5, 99.0, 12.0]
    for identifier in amounts:
        _identify(lab, key, identifier)

    # When their events arrive in batches that each hold part of a user's events
    for batch in range(3):
        events = [
            _event(identifier, T + (batch + 1) * HOUR + n * dt.timedelta(seconds=1), amount)
            for identifier, spent in amounts.items()
            for n, amount in enumerate(spent)
            if n % 3 == batch
        ]
        _send(lab, key, *events)

    # Then each metric's figures are those of the per-user values, users without events at 0
    body = lab.admin.get(url + "results/").json()
    figures = {m["name"]: {v["variant"]: v for v in m["variants"]} for m in body["metrics"]}
    counts = [float(len(spent)) for spent in amounts.values()]
    sums = [sum(spent) for spent in amounts.values()]
    express = figures["purchases"]["express"]
    assert express["users"] == 6
    assert express["mean"] == pytest.approx(statistics.mean(counts))
    assert express["stddev"] == pytest.approx(statistics.stdev(counts))
    revenue = figures["revenue"]["express"]
    assert revenue["mean"] == pytest.approx(statistics.mean(sums))
    assert revenue["stddev"] == pytest.approx(statistics.stdev(sums))
    assert figures["bought"]["express"]["converted"] == 5
    assert figures["bought"]["control"]["users"] == 0
    assert body["variants"][1]["exposures"] == 6


def test_metrics__exposures_reported_by_the_sdk__count_like_identify_ones(lab: Lab) -> None:
    # Given an experiment with a count metric
    key, url = _experiment(lab.admin, weight=100)
    lab.admin.patch(url, {"metrics": METRICS[1:2]})
    exposure = {
        **_event("ann", T),
        "event": "$flag_exposure",
        "feature_name": "checkout",
        "value": "express",
    }

    # When the SDK reports ann's exposure twice and her purchase in the same batch
    _send(
        lab,
        key,
        exposure,
        {**exposure, "timestamp": exposure["timestamp"] + 1},
        _event("ann", T + HOUR),
    )

    # Then she counts once, with her purchase
    body = lab.admin.get(url + "results/").json()
    (metric,) = body["metrics"]
    assert body["metric_users"] == {"express": 1}
    assert {v["variant"]: v["mean"] for v in metric["variants"]}["express"] == 1.0
