"""Per-user aggregates of experiments' metrics: who was exposed first to what, and each such
user's value of each metric, updated as exposures and events arrive. Results then group one
row per user and metric rather than scanning events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.base import sqlite_timestamp
from ensign.storage.models import Experiment, ExperimentMetricUser, ExperimentMetricValue

# A second exposure of the same identity is always to another variant (the exposures table's
# unique key lets each variant through once), so it marks the identity as exposed to several.
_NOTE_EXPOSURE = (
    "INSERT INTO experiment_metric_users (experiment_id, identifier, variant, exposed_at, "
    "multiple) VALUES (?, ?, ?, ?, false) ON CONFLICT (experiment_id, identifier) DO UPDATE "
    "SET multiple = true RETURNING multiple"
)
_FORGET_VALUES = "DELETE FROM experiment_metric_values WHERE experiment_id = ? AND identifier = ?"


def note_exposure(
    cursor: Any,
    experiment_id: int,
    identifier: str,
    variant: str,
    at: dt.datetime,
    *,
    postgres: bool,
) -> None:
    """Record a new exposure (a first one per variant) for metrics, on a raw driver cursor in
    the caller's transaction. An identity now exposed to two variants leaves the metrics: its
    values are dropped and its later events ignored."""
    stamp: object = at if postgres else sqlite_timestamp(at)
    cursor.execute(
        dialect.driver_sql(_NOTE_EXPOSURE, postgres=postgres),
        (experiment_id, identifier, variant, stamp),
    )
    row = cursor.fetchone()
    if row is not None and row[0]:
        cursor.execute(
            dialect.driver_sql(_FORGET_VALUES, postgres=postgres), (experiment_id, identifier)
        )


def running_metrics(session: Session, environment_id: int) -> list[tuple[int, list[Any]]]:
    """The running experiments of an environment that measure metrics: (id, definitions)."""
    rows = session.execute(
        select(Experiment.id, Experiment.metrics).where(
            Experiment.environment_id == environment_id, Experiment.running.is_(True)
        )
    )
    return [(int(row.id), list(row.metrics)) for row in rows if row.metrics]


@dataclass(frozen=True)
class ExposedUser:
    variant: str
    exposed_at: dt.datetime


def exposed_users(
    session: Session, experiment_ids: Sequence[int], identifiers: Sequence[str]
) -> dict[tuple[int, str], ExposedUser]:
    """(experiment, identifier) → first exposure, for those identities exposed to one variant
    only of these experiments."""
    found: dict[tuple[int, str], ExposedUser] = {}
    table = ExperimentMetricUser
    for chunk in dialect.chunks(identifiers, 500):
        rows = session.execute(
            select(table.experiment_id, table.identifier, table.variant, table.exposed_at).where(
                table.experiment_id.in_(list(experiment_ids)),
                table.identifier.in_(list(chunk)),
                table.multiple.is_(False),
            )
        )
        for experiment_id, identifier, variant, exposed_at in rows:
            found[(experiment_id, identifier)] = ExposedUser(variant, exposed_at)
    return found


@dataclass(frozen=True)
class ValueKey:
    experiment_id: int
    metric: str
    identifier: str
    variant: str


def add_values(session: Session, increments: dict[ValueKey, tuple[int, float]]) -> None:
    """Add (events, value) to each user's metric value, creating it at its first event. Keys
    are sorted so that two concurrent batches lock rows in the same order on PostgreSQL."""
    if not increments:
        return
    table = ExperimentMetricValue.__table__
    keys = sorted(increments, key=lambda k: (k.experiment_id, k.metric, k.identifier))
    for chunk in dialect.chunks(keys, 500):
        statement = dialect.upsert(session, table).values(
            [
                {
                    "experiment_id": k.experiment_id,
                    "metric": k.metric,
                    "identifier": k.identifier,
                    "variant": k.variant,
                    "events": increments[k][0],
                    "value": increments[k][1],
                }
                for k in chunk
            ]
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["experiment_id", "metric", "identifier"],
                set_={
                    "events": table.c.events + statement.excluded.events,
                    "value": table.c.value + statement.excluded.value,
                },
            )
        )


def users_by_variant(session: Session, experiment_id: int) -> tuple[dict[str, int], int]:
    """Variant → identities counted in metrics there, and how many identities were left out
    for having been exposed to more than one variant."""
    table = ExperimentMetricUser
    rows = session.execute(
        select(table.variant, table.multiple, func.count())
        .where(table.experiment_id == experiment_id)
        .group_by(table.variant, table.multiple)
    )
    users: dict[str, int] = {}
    multiple = 0
    for variant, is_multiple, count in rows:
        if is_multiple:
            multiple += int(count)
        else:
            users[variant] = int(count)
    return users, multiple


@dataclass(frozen=True)
class ValueSums:
    """Over the users of one variant with at least one counted event: how many, Σvalue and
    Σvalue² (users without a row have value 0)."""

    users: int
    total: float
    squares: float


def value_sums(session: Session, experiment_id: int, metric: str) -> dict[str, ValueSums]:
    table = ExperimentMetricValue
    rows = session.execute(
        select(
            table.variant, func.count(), func.sum(table.value), func.sum(table.value * table.value)
        )
        .where(table.experiment_id == experiment_id, table.metric == metric)
        .group_by(table.variant)
    )
    return {
        variant: ValueSums(int(count), float(total or 0), float(squares or 0))
        for variant, count, total, squares in rows
    }


def forget_metrics(session: Session, experiment_id: int, metrics: Iterable[str]) -> None:
    """Drop the values of metrics removed or redefined."""
    names = list(metrics)
    if not names:
        return
    session.execute(
        delete(ExperimentMetricValue)
        .where(
            ExperimentMetricValue.experiment_id == experiment_id,
            ExperimentMetricValue.metric.in_(names),
        )
        .execution_options(synchronize_session=False)
    )
