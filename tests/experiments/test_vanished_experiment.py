"""An experiment (or its feature) deleted while a process still serves the snapshot it was in:
the evaluations served with that snapshot answer, and record no exposure for it.

The race is made deterministic: the snapshot is taken, the row deleted, then the identify
and OFREP use cases run with the stale snapshot, as a request that read the cache just
before the delete would."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from ensign.services import identify, ofrep
from ensign.services.admin import experiments, features
from ensign.services.ofrep import ContextRequest
from ensign.services.sdk_requests import IdentifyRequest
from ensign.services.snapshots import Snapshot
from ensign.storage.models import Exposure
from ensign.web.deps import AppState
from tests.conftest import PG_URL, wait_for
from tests.experiments.test_exposures import start
from tests.fakes.fixtures import Env


def _exposures(state: AppState) -> int:
    with state.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Exposure)) or 0)


def _stale_snapshot(state: AppState, env: Env, deleted: str) -> Snapshot:
    """The environment's snapshot with a running experiment, then the experiment or its
    feature deleted behind it."""
    experiment_id = start(state, env)
    snapshot = state.cache.for_key(env.client_key)
    assert snapshot is not None and "checkout" in snapshot.experiments
    with state.units.write() as unit:
        if deleted == "experiment":
            experiments.delete_experiment(unit, env.principal, env.client_key, experiment_id)
        else:
            features.delete_feature(
                unit, env.principal, snapshot.project_id, snapshot.features["checkout"].id
            )
    return snapshot


@pytest.mark.parametrize("deleted", ["experiment", "feature"])
def test_identify__stale_snapshot_of_a_deleted_experiment__answers_and_records_nothing(
    state: AppState, env: Env, deleted: str
) -> None:
    snapshot = _stale_snapshot(state, env, deleted)

    request = IdentifyRequest("jo", (), transient=False, is_server=False)
    result = identify.identify(state.identities, snapshot, request)

    assert "checkout" in result.experiments
    assert _exposures(state) == 0


@pytest.mark.parametrize("deleted", ["experiment", "feature"])
def test_ofrep__stale_snapshot_of_a_deleted_experiment__answers_and_records_nothing(
    state: AppState, env: Env, deleted: str
) -> None:
    snapshot = _stale_snapshot(state, env, deleted)

    request = ContextRequest("jo", (), is_server=False)
    resolution = ofrep.single_resolution(state.identities, snapshot, request, "checkout")

    assert resolution.experiment is not None and resolution.experiment.in_experiment
    assert _exposures(state) == 0


@pytest.mark.skipif(not PG_URL, reason="concurrent writers: PostgreSQL only")
def test_identify__experiment_deleted_during_the_insert__waits_and_records_nothing(
    state: AppState, env: Env
) -> None:
    # Given a snapshot with a running experiment, and a delete of it not yet committed
    experiment_id = start(state, env)
    snapshot = state.cache.for_key(env.client_key)
    assert snapshot is not None
    outcome: list[object] = []

    def call() -> None:
        request = IdentifyRequest("jo", (), transient=False, is_server=False)
        try:
            outcome.append(identify.identify(state.identities, snapshot, request))
        except Exception as error:  # the assertion below names it
            outcome.append(error)

    with state.db.engine.connect() as connection:
        connection.execute(text("DELETE FROM experiments WHERE id = :id"), {"id": experiment_id})
        # When an identify call records its exposure meanwhile, and the delete then commits
        caller = threading.Thread(target=call)
        caller.start()
        wait_for(lambda: _waiting_on_a_lock(state))
        connection.commit()
    caller.join(timeout=20)

    # Then the call answers, and no exposure of the deleted experiment is left
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert _exposures(state) == 0


def _waiting_on_a_lock(state: AppState) -> bool:
    """Whether another session of this database waits for a lock (the identify call's insert,
    behind the uncommitted delete)."""
    with state.db.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar()
    return bool(waiting)
