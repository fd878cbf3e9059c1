"""Outbox housekeeping: retention, the backlog cap, the attempt log's cap and give-up on time,
against fake vendors on real sockets."""

from __future__ import annotations

import dataclasses
import datetime as dt

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from ensign.delivery.housekeeping import Housekeeper, RetentionSettings
from ensign.storage.models import utcnow
from ensign.web.deps import AppState
from tests.delivery.test_worker import attempts_of, dispatch_settings, drive, sdk, status_of
from tests.fakes.fixtures import Env, Served, configure
from tests.fakes.script import Answer

__all__ = ["sdk"]


def identify(sdk: TestClient, env: Env, i: int) -> None:
    headers = {"X-Environment-Key": env.client_key}
    response = sdk.get(f"/api/v1/identities/?identifier=user-{i}", headers=headers)
    assert response.status_code == 200


def stored(state: AppState, table: str) -> int:
    with state.db.read_session() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def given_up_metric(kind: str) -> float:
    labels = {"kind": kind, "outcome": "given_up"}
    return REGISTRY.get_sample_value("ensign_delivery_evaluations_total", labels) or 0.0


def housekeeper(state: AppState, at: dt.datetime, **overrides: object) -> Housekeeper:
    config = dataclasses.replace(RetentionSettings.from_settings(state.settings), **overrides)
    return Housekeeper(state.db, config, clock=lambda: at)


def test_housekeeping__after_retention__finished_rows_and_orphans_deleted_counters_kept(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given Heap refusing every evaluation for good while Mixpanel is down
    heap_id = configure(state, env, "heap", vendors.heap_url)
    mixpanel_id = configure(state, env, "mixpanel", vendors.mixpanel_url)
    vendors.heap.script.always = Answer(400, body=b"bad key")
    vendors.mixpanel.script.always = Answer(503)
    for i in range(5):
        identify(sdk, env, i)
    drive(
        state,
        lambda: status_of(state, env, "heap", heap_id).failed == 5
        and len(attempts_of(state, env, "mixpanel", mixpanel_id)) >= 3,
    )
    assert (stored(state, "outbox_deliveries"), stored(state, "evaluations")) == (10, 5)
    newest_attempts = [a.id for a in attempts_of(state, env, "mixpanel", mixpanel_id)][:2]
    now = utcnow()
    # When housekeeping runs past the retention of Heap's failed rows
    result = housekeeper(
        state, now + dt.timedelta(hours=2), retention=dt.timedelta(hours=1), attempts_kept=2
    ).run()
    # Then they are deleted; the evaluations Mixpanel still has to send are kept
    assert result.purged == 5
    assert (stored(state, "outbox_deliveries"), stored(state, "evaluations")) == (5, 5)
    # and the attempt log keeps its newest attempts
    assert [a.id for a in attempts_of(state, env, "mixpanel", mixpanel_id)] == newest_attempts
    # When Mixpanel's rows are given up and their retention passes too
    housekeeper(state, now + dt.timedelta(hours=26), retention=dt.timedelta(hours=1)).run()
    # Then nothing is left, and the counters still count every evaluation
    assert (stored(state, "outbox_deliveries"), stored(state, "evaluations")) == (0, 0)
    assert status_of(state, env, "heap", heap_id).failed == 5
    assert status_of(state, env, "mixpanel", mixpanel_id).given_up == 5
    assert status_of(state, env, "heap", heap_id).last_error == "HTTP 400: bad key"


def test_housekeeping__before_retention__finished_rows_kept(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given failed rows recorded an hour ago
    heap_id = configure(state, env, "heap", vendors.heap_url)
    vendors.heap.script.always = Answer(400)
    for i in range(3):
        identify(sdk, env, i)
    drive(state, lambda: status_of(state, env, "heap", heap_id).failed == 3)
    # When housekeeping runs within the retention
    result = housekeeper(state, utcnow() + dt.timedelta(hours=1)).run()
    # Then they stay, for inspection
    assert result.purged == 0
    assert (stored(state, "outbox_deliveries"), stored(state, "evaluations")) == (3, 3)


def test_housekeeping__backlog_over_cap__oldest_given_up_first_and_counted(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given ten evaluations waiting for Heap, with a cap of four
    heap_id = configure(state, env, "heap", vendors.heap_url)
    for i in range(10):
        identify(sdk, env, i)
    before = given_up_metric("heap")
    # When housekeeping runs
    result = housekeeper(state, utcnow(), max_backlog=4).run()
    # Then the six oldest are given up and counted
    assert result.over_backlog == 6
    status = status_of(state, env, "heap", heap_id)
    assert (status.pending, status.given_up) == (4, 6)
    assert given_up_metric("heap") - before == 6
    # and only the four newest reach Heap
    drive(state, lambda: len(vendors.heap.events) >= 4)
    assert sorted(e["identity"] for e in vendors.heap.events) == [f"user-{i}" for i in range(6, 10)]
    assert status_of(state, env, "heap", heap_id).delivered == 4


def test_housekeeping__past_max_age__given_up_with_no_delivery_task_awake(
    state: AppState, env: Env, vendors: Served, sdk: TestClient
) -> None:
    # Given a vendor asking for an hour's pause, so Heap's delivery task sleeps after one try
    heap_id = configure(state, env, "heap", vendors.heap_url)
    vendors.heap.script.always = Answer(503, headers={"Retry-After": "3600"})
    for i in range(3):
        identify(sdk, env, i)
    clock = [utcnow()]

    def given_up_once_asleep() -> bool:
        if attempts_of(state, env, "heap", heap_id) and clock[0] < utcnow() + dt.timedelta(hours=1):
            # When the evaluations grow older than the maximum age while the task sleeps
            clock[0] = utcnow() + dt.timedelta(hours=25)
        return status_of(state, env, "heap", heap_id).given_up == 3

    base = dispatch_settings(state)
    settings = dataclasses.replace(
        base, housekeeping=dataclasses.replace(base.housekeeping, interval_seconds=0.1)
    )
    drive(state, given_up_once_asleep, settings=settings, clock=lambda: clock[0])
    # Then the periodic sweep gives them up: the vendor was asked once only
    assert len(attempts_of(state, env, "heap", heap_id)) == 1
    assert status_of(state, env, "heap", heap_id).pending == 0
    assert status_of(state, env, "heap", heap_id).retrying == 0
