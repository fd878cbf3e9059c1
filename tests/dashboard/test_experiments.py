"""The experiment page: started from the feature's page, exposures against the weights with
the sample-ratio warning, the exposure events' queue per integration, start and stop."""

from __future__ import annotations

import datetime as dt
import json
import re

from ensign.services.admin.organisations import create_organisation
from ensign.services.importing import import_document
from ensign.services.keys import create_admin_key
from ensign.storage.experiments import SessionExposures
from ensign.storage.models import IntegrationConfig, OutboxDelivery, RecordedEvaluation
from ensign.web.deps import AppState
from tests.dashboard.conftest import Browser, Seeded
from tests.documents import standard_document
from tests.units import unit_session

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
WARNING = "Sample ratio mismatch: exposures do not follow the weights"


def _checkout(browser: Browser, seeded: Seeded) -> int:
    """The seeded multivariate feature: variants `one` 30%, `two` 30%, control 40%."""
    page = browser.get(f"/environments/{seeded.environment_id}/features?q=checkout")
    feature_id: int = page.context["rows"][0]["feature"].id
    return feature_id


def _start(browser: Browser, seeded: Seeded) -> str:
    feature_id = _checkout(browser, seeded)
    response = browser.post(
        f"/environments/{seeded.environment_id}/features/{feature_id}/experiments",
        {"experiment_name": "Checkout test"},
    )
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location


def _expose(state: AppState, location: str, counts: dict[str, int]) -> None:
    experiment_id = int(location.rsplit("/", 1)[1])
    with state.units.write() as unit, unit_session(unit) as session:
        for variant, count in counts.items():
            for i in range(count):
                SessionExposures(session).insert_exposure(
                    experiment_id, f"{variant}-{i}", variant, NOW
                )


def test_experiment__started_from_the_feature__linked_and_shown(
    signed_in: Browser, seeded: Seeded
) -> None:
    location = _start(signed_in, seeded)
    feature_id = _checkout(signed_in, seeded)

    feature_page = signed_in.get(f"/environments/{seeded.environment_id}/features/{feature_id}")
    page = signed_in.get(location)

    assert f'href="{location}"' in feature_page.text
    assert page.status_code == 200
    assert page.template.name == "pages/experiment.html"
    variants = [(v.key, v.weight, v.exposures) for v in page.context["results"].variants]
    assert variants == [("control", 40.0, 0), ("one", 30.0, 0), ("two", 30.0, 0)]
    assert "<svg" in page.text
    assert "no p-value yet (no exposures)" in page.text
    assert WARNING not in page.text


def test_experiment__skewed_exposures__warns(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    # Given exposures far from 40/30/30
    location = _start(signed_in, seeded)
    _expose(state, location, {"control": 20, "one": 60, "two": 20})

    page = signed_in.get(location)

    assert page.context["results"].srm_p_value < 0.001
    assert WARNING in page.text
    bars = re.findall(r'<g class="bar" data-variant="([^"]+)"', page.text)
    assert bars == ["control", "one", "two"]


def test_experiment__exposures_following_the_weights__no_warning(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    location = _start(signed_in, seeded)
    _expose(state, location, {"control": 41, "one": 30, "two": 29})

    page = signed_in.get(location)

    assert page.context["results"].srm_p_value > 0.5
    assert WARNING not in page.text
    assert "consistent with the weights" in page.text


def test_experiment__stop_and_start__audited_and_shown(signed_in: Browser, seeded: Seeded) -> None:
    location = _start(signed_in, seeded)

    stopped = signed_in.post(f"{location}/stop")
    after_stop = signed_in.get(location)
    started = signed_in.post(f"{location}/start")
    after_start = signed_in.get(location)
    audit = signed_in.get("/audit")

    assert stopped.status_code == 303
    assert after_stop.context["experiment"].running is False
    assert "Start experiment" in after_stop.text
    assert started.status_code == 303
    assert after_start.context["experiment"].running is True
    assert "Experiment stopped: Checkout test" in audit.text


def test_experiment__second_on_the_feature__message_next_to_the_name(
    signed_in: Browser, seeded: Seeded
) -> None:
    first = _start(signed_in, seeded)
    feature_id = _checkout(signed_in, seeded)
    signed_in.post(f"{first}/stop")
    second = _start(signed_in, seeded)

    restart = signed_in.post(f"{first}/start")

    assert second != first
    assert restart.status_code == 400
    assert "already running" in restart.text
    blank = signed_in.post(
        f"/environments/{seeded.environment_id}/features/{feature_id}/experiments",
        {"experiment_name": " "},
    )
    assert blank.status_code == 400
    assert 'id="experiment_name-error"' in blank.text


def test_experiment__exposure_events__queue_per_integration(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    # Given a Heap integration with, queued: one exposure event of this experiment waiting, one
    # failed, one of another experiment, and a flag-set evaluation (not an exposure)
    location = _start(signed_in, seeded)
    experiment_id = int(location.rsplit("/", 1)[1])
    with state.units.write() as unit, unit_session(unit) as session:
        heap = IntegrationConfig(
            environment_id=seeded.environment_id,
            kind="heap",
            api_key="1234",
            region="us",
            base_url="https://heapanalytics.com",
            enabled=True,
            options={"exposures": True},
        )
        session.add(heap)
        session.flush()
        mine = {"experiment": "Checkout test", "variant": "one", "experiment_id": experiment_id}
        other = {**mine, "experiment_id": experiment_id + 1}
        queued = [
            ("exposure", mine, "pending"),
            ("exposure", mine, "failed"),
            ("exposure", other, "pending"),
            ("flags", {"checkout": "one_page"}, "pending"),
        ]
        for n, (kind, payload, status) in enumerate(queued):
            evaluation = RecordedEvaluation(
                environment_id=seeded.environment_id,
                kind=kind,
                event_key=f"key-{n}",
                identifier=f"user-{n}",
                flags=json.dumps(payload, separators=(",", ":")),
                evaluated_at=NOW,
            )
            session.add(evaluation)
            session.flush()
            session.add(
                OutboxDelivery(
                    integration_id=heap.id,
                    evaluation_id=evaluation.id,
                    status=status,
                    next_attempt_at=NOW,
                )
            )

    page = signed_in.get(location)

    [heap_row] = page.context["deliveries"]
    assert (heap_row["label"], heap_row["pending"], heap_row["failed"]) == ("Heap", 1, 1)
    assert heap_row["sends"] is True


def test_experiment__unknown_or_in_another_environment__not_found(
    signed_in: Browser, seeded: Seeded
) -> None:
    # (Signed-out visitors are sent to sign in: tests/dashboard/test_access.py, every route.)
    location = _start(signed_in, seeded)
    experiment_id = location.rsplit("/", 1)[1]

    unknown = signed_in.get(f"/environments/{seeded.environment_id}/experiments/999999")
    elsewhere = signed_in.get(f"/environments/999999/experiments/{experiment_id}")

    assert unknown.status_code == 404
    assert elsewhere.status_code == 404


def test_experiment__another_organisations__not_found_and_not_stoppable(
    signed_in: Browser, state: AppState
) -> None:
    # Given an experiment in another organisation's environment
    with state.units.write() as unit:
        session = unit.session
        other = create_organisation(unit, name="Other")
        imported = import_document(session, other.id, standard_document())
        key = create_admin_key(unit, other.id, "other")
    features = signed_in.client.get(
        f"/api/v1/projects/{imported.project_id}/features/",
        headers={"Authorization": f"Api-Key {key}"},
    ).json()["results"]
    checkout = next(f for f in features if f["name"] == "checkout")
    experiment = signed_in.client.post(
        f"/api/v1/environments/{imported.environment_key}/experiments/",
        headers={"Authorization": f"Api-Key {key}"},
        json={"name": "Theirs", "feature": checkout["id"]},
    ).json()
    path = f"/environments/{imported.environment_id}/experiments/{experiment['id']}"

    assert signed_in.get(path).status_code == 404
    assert signed_in.post(f"{path}/stop").status_code == 404
    assert (
        signed_in.client.get(
            f"/api/v1/environments/{imported.environment_key}/experiments/{experiment['id']}/",
            headers={"Authorization": f"Api-Key {key}"},
        ).json()["running"]
        is True
    )


def test_experiment__forged_sdk_exposure__counted_by_reason_on_the_page(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    # Given a running experiment, and an SDK claiming a variant the feature does not have
    location = _start(signed_in, seeded)
    state.cache.check_now()
    forged = {
        "event": "$flag_exposure",
        "feature_name": "checkout",
        "identifier": "mallory",
        "value": "free_upgrade",
        "timestamp": int(dt.datetime.now(dt.UTC).timestamp() * 1000),
    }
    response = signed_in.client.post(
        "/api/v1/events",
        json={"events": [forged]},
        headers={"X-Environment-Key": seeded.client_key},
    )
    assert response.status_code == 202, response.text

    page = signed_in.get(location)

    # Then the page counts it as an unknown variant and lists it, and nothing was exposed
    assert re.search(r'data-count="unknown_variant">1<', page.text)
    assert '<tr data-reason="unknown_variant">' in page.text
    assert "mallory" in page.text
    assert [v.exposures for v in page.context["results"].variants] == [0, 0, 0]
