"""Experiments: an A/B test of one multivariate feature in one environment.

Starting, stopping or editing one bumps the environment's revision, so that every process
rebuilds its snapshot and identify calls see the change (at once here, within the cache
interval elsewhere), as with every other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput, NotFound
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change
from ensign.services.documents import feature_type
from ensign.services.keys import AdminPrincipal
from ensign.storage import experiments as experiment_store
from ensign.storage import segments as segment_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Environment, Experiment, utcnow
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

RESOURCE = "experiment"


@dataclass(frozen=True)
class ExperimentInput:
    """Fields of a create or update; on update, only those in `given` change."""

    name: str | None = None
    feature: int | None = None
    segment: int | None = None
    running: bool | None = None
    given: frozenset[str] = frozenset()


def list_experiments(
    session: Session, principal: AdminPrincipal, env_key: str, window: Window
) -> Page[Experiment]:
    env = access.environment_for(session, principal, env_key)
    return experiment_store.experiments(session, env.id, window)


def get_experiment(
    session: Session, principal: AdminPrincipal, env_key: str, experiment_id: int
) -> Experiment:
    env = access.environment_for(session, principal, env_key)
    return _experiment_in(session, env, experiment_id)


def _experiment_in(session: Session, env: Environment, experiment_id: int) -> Experiment:
    experiment = (
        experiment_store.experiment_by_id(session, experiment_id)
        if access.is_valid_id(experiment_id)
        else None
    )
    if experiment is None or experiment.environment_id != env.id:
        raise NotFound("Experiment not found.")
    return experiment


def _check_feature(session: Session, env: Environment, feature_id: int) -> None:
    feature = access.referenced_feature(session, env.project_id, feature_id)
    if feature_type(feature) != "MULTIVARIATE":
        raise InvalidInput(
            "feature: an experiment needs a multivariate feature (one with variants).",
            field="feature",
        )


def _check_segment(session: Session, env: Environment, segment_id: int) -> None:
    segment = (
        segment_store.segment_by_id(session, segment_id) if access.is_valid_id(segment_id) else None
    )
    if segment is None or segment.project_id != env.project_id:
        raise InvalidInput("segment: no such segment in this project.", field="segment")


def _save(session: Session, experiment: Experiment) -> None:
    if not experiment_store.save_experiment(session, experiment):
        raise InvalidInput(
            "feature: another experiment is already running on this feature in this "
            "environment; stop it first.",
            field="feature",
        )


def create_experiment(
    unit: UnitOfWork, principal: AdminPrincipal, env_key: str, data: ExperimentInput
) -> Experiment:
    session = unit.session
    env = access.environment_for(session, principal, env_key)
    if data.feature is None:
        raise InvalidInput("feature: required.", field="feature")
    _check_feature(session, env, data.feature)
    if data.segment is not None:
        _check_segment(session, env, data.segment)
    running = True if data.running is None else data.running
    experiment = Experiment(
        environment_id=env.id,
        feature_id=data.feature,
        segment_id=data.segment,
        name=data.name or "",
        running=running,
        started_at=utcnow() if running else None,
    )
    _save(session, experiment)
    change_path.apply(
        unit,
        principal,
        [
            _change(
                env,
                experiment.id,
                change_path.CREATED,
                f"Experiment created: {experiment.name}",
                after=row_snapshot(experiment),
            )
        ],
    )
    return experiment


def update_experiment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    env_key: str,
    experiment_id: int,
    data: ExperimentInput,
) -> Experiment:
    """Rename, re-target or start/stop an experiment (`running: false` stops it)."""
    session = unit.session
    env = access.environment_for(session, principal, env_key)
    experiment = _experiment_in(session, env, experiment_id)
    before = row_snapshot(experiment)
    given = data.given
    starting = "running" in given and data.running is True and not experiment.running
    if "name" in given and data.name is not None:
        experiment.name = data.name
    if "feature" in given and data.feature is not None:
        _check_feature(session, env, data.feature)
        experiment.feature_id = data.feature
    elif starting:
        # A start is checked as a create is: the feature may have lost its variants while
        # the experiment was stopped.
        _check_feature(session, env, experiment.feature_id)
    if "segment" in given:
        if data.segment is not None:
            _check_segment(session, env, data.segment)
        experiment.segment_id = data.segment
    if "running" in given and data.running is not None and data.running != experiment.running:
        now = utcnow()
        experiment.running = data.running
        if data.running:
            experiment.started_at, experiment.stopped_at = now, None
        else:
            experiment.stopped_at = now
    _save(session, experiment)
    stopped = before["running"] and not experiment.running
    change_path.apply(
        unit,
        principal,
        [
            _change(
                env,
                experiment.id,
                change_path.UPDATED,
                f"Experiment {'stopped' if stopped else 'updated'}: {experiment.name}",
                before=before,
                after=row_snapshot(experiment),
            )
        ],
    )
    return experiment


def delete_experiment(
    unit: UnitOfWork, principal: AdminPrincipal, env_key: str, experiment_id: int
) -> None:
    """Delete an experiment and, through the database, its exposures."""
    session = unit.session
    env = access.environment_for(session, principal, env_key)
    experiment = _experiment_in(session, env, experiment_id)
    before = row_snapshot(experiment)
    experiment_store.delete_experiment(session, experiment)
    change_path.apply(
        unit,
        principal,
        [
            _change(
                env,
                experiment_id,
                change_path.DELETED,
                f"Experiment deleted: {before['name']}",
                before=before,
            )
        ],
    )


def _change(
    env: Environment,
    experiment_id: int,
    action: str,
    log: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Change:
    """A running experiment decides its feature's variants: any change reaches the
    environment."""
    return Change(
        resource_type=RESOURCE,
        resource_id=experiment_id,
        action=action,
        log=log,
        project_id=env.project_id,
        environment_ids=(env.id,),
        before=before,
        after=after,
    )
