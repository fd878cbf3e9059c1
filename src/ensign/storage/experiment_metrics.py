"""Per-user aggregates of experiments' metrics, and their running totals per variant.

Who was exposed first to what, each such user's value of each metric, and the sums over users
per variant (`experiment_metric_totals`) are all updated as exposures and events arrive, in
their transactions, so that results read a few rows whatever the number of users or events.
Written on raw driver cursors: the identify path records exposures on one, and an event batch
touches thousands of rows, which SQLAlchemy's statement compilation would slow tenfold.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.base import sqlite_timestamp
from ensign.storage.models import (
    Experiment,
    ExperimentMetricTotal,
    ExperimentMetricUser,
    ExperimentMetricValue,
)

# Reserved totals (metric names given by users are never empty and never start with "$").
USERS = "$users"  # per variant the users counted in metrics; variant "" those left out
EXPOSURES = "$exposures"  # per variant the distinct identities exposed to it
LEFT_OUT = ""
# Totals are sums over shards, so a change may go to any of them: on PostgreSQL each
# connection writes to its own (by backend pid), so that concurrent transactions (identify
# group commits, event batches, in every process) seldom wait on, or deadlock over, the same
# rows. SQLite has one writer: one shard.
SHARDS = 64
_SHARD = {False: "0", True: f"mod(pg_backend_pid(), {SHARDS})"}

_NEW_USER = (
    "INSERT INTO experiment_metric_users (experiment_id, identifier, variant, exposed_at, "
    "multiple) VALUES (?, ?, ?, ?, false) ON CONFLICT (experiment_id, identifier) DO NOTHING "
    "RETURNING variant"
)
# Only the statement that flips the flag gets a row back, so of two racing exposures one
# moves the user out of the totals.
_NOW_MULTIPLE = (
    "UPDATE experiment_metric_users SET multiple = true "
    "WHERE experiment_id = ? AND identifier = ? AND NOT multiple RETURNING variant"
)
_FORGET_VALUES = (
    "DELETE FROM experiment_metric_values WHERE experiment_id = ? AND identifier = ? "
    "RETURNING metric, events, value"
)
_ADD_TOTAL = (
    "INSERT INTO experiment_metric_totals (experiment_id, metric, variant, shard, users, "
    "converted, total, squares) VALUES {rows} "
    "ON CONFLICT (experiment_id, metric, variant, shard) DO UPDATE SET "
    "users = experiment_metric_totals.users + excluded.users, "
    "converted = experiment_metric_totals.converted + excluded.converted, "
    "total = experiment_metric_totals.total + excluded.total, "
    "squares = experiment_metric_totals.squares + excluded.squares"
)
_ADD_VALUES = (
    "INSERT INTO experiment_metric_values (experiment_id, metric, identifier, variant, events, "
    "value) VALUES {rows} ON CONFLICT (experiment_id, metric, identifier) DO UPDATE SET "
    "events = experiment_metric_values.events + excluded.events, "
    "value = experiment_metric_values.value + excluded.value "
    "RETURNING experiment_id, metric, identifier, events, value"
)


@dataclass(frozen=True)
class TotalKey:
    experiment_id: int
    metric: str
    variant: str


@dataclass
class Delta:
    users: int = 0
    converted: int = 0
    total: float = 0.0
    squares: float = 0.0


def _add_totals(cursor: Any, deltas: dict[TotalKey, Delta], *, postgres: bool) -> None:
    """Add to the running totals, in key order so that concurrent writers on PostgreSQL lock
    rows in the same order (no deadlock)."""
    keys = sorted(deltas, key=lambda k: (k.experiment_id, k.metric, k.variant))
    shard = _SHARD[postgres]
    for chunk in dialect.chunks(keys, 500):
        params: list[object] = []
        for k in chunk:
            d = deltas[k]
            params += (k.experiment_id, k.metric, k.variant)
            params += (d.users, d.converted, d.total, d.squares)
        rows = ",".join(f"(?, ?, ?, {shard}, ?, ?, ?, ?)" for _ in chunk)
        cursor.execute(dialect.driver_sql(_ADD_TOTAL.format(rows=rows), postgres=postgres), params)


def note_exposure(
    cursor: Any,
    experiment_id: int,
    identifier: str,
    variant: str,
    at: dt.datetime,
    *,
    postgres: bool,
) -> None:
    """Record a new exposure (a first one per identity and variant) for metrics, on a raw
    driver cursor in the caller's transaction. An identity now exposed to a second variant
    leaves the metrics: its values are dropped and its later events ignored."""
    stamp: object = at if postgres else sqlite_timestamp(at)
    deltas: dict[TotalKey, Delta] = defaultdict(Delta)
    deltas[TotalKey(experiment_id, EXPOSURES, variant)].users += 1
    cursor.execute(
        dialect.driver_sql(_NEW_USER, postgres=postgres),
        (experiment_id, identifier, variant, stamp),
    )
    if cursor.fetchone() is not None:
        deltas[TotalKey(experiment_id, USERS, variant)].users += 1
    else:
        cursor.execute(
            dialect.driver_sql(_NOW_MULTIPLE, postgres=postgres), (experiment_id, identifier)
        )
        row = cursor.fetchone()
        if row is not None:
            first = row[0]
            deltas[TotalKey(experiment_id, USERS, first)].users -= 1
            deltas[TotalKey(experiment_id, USERS, LEFT_OUT)].users += 1
            cursor.execute(
                dialect.driver_sql(_FORGET_VALUES, postgres=postgres), (experiment_id, identifier)
            )
            for metric, events, value in cursor.fetchall():
                delta = deltas[TotalKey(experiment_id, metric, first)]
                delta.converted -= 1 if events > 0 else 0
                delta.total -= value
                delta.squares -= value * value
    _add_totals(cursor, deltas, postgres=postgres)


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
    """Add (events, value) to each user's metric value, creating it at its first event, and
    the change to the variant's totals: a first event converts the user, and Σvalue² moves by
    new² - old². Keys are sorted so that concurrent batches lock rows in one order."""
    if not increments:
        return
    postgres = dialect.is_postgres(session)
    keys = sorted(increments, key=lambda k: (k.experiment_id, k.metric, k.identifier))
    by_row = {(k.experiment_id, k.metric, k.identifier): k for k in keys}
    deltas: dict[TotalKey, Delta] = defaultdict(Delta)
    with dialect.driver_cursor(session) as cursor:
        for chunk in dialect.chunks(keys, 500):
            params: list[object] = []
            for k in chunk:
                events, value = increments[k]
                params += (k.experiment_id, k.metric, k.identifier, k.variant, events, value)
            rows = ",".join("(?, ?, ?, ?, ?, ?)" for _ in chunk)
            cursor.execute(
                dialect.driver_sql(_ADD_VALUES.format(rows=rows), postgres=postgres), params
            )
            for experiment_id, metric, identifier, events, value in cursor.fetchall():
                key = by_row[(experiment_id, metric, identifier)]
                added_events, added = increments[key]
                old = value - added
                delta = deltas[TotalKey(experiment_id, metric, key.variant)]
                delta.converted += 1 if events == added_events else 0
                delta.total += added
                delta.squares += value * value - old * old
        _add_totals(cursor, deltas, postgres=postgres)


@dataclass(frozen=True)
class Totals:
    users: int = 0
    converted: int = 0
    total: float = 0.0
    squares: float = 0.0


def totals(session: Session, experiment_id: int) -> dict[str, dict[str, Totals]]:
    """Metric (or `USERS`, `EXPOSURES`) → variant → its totals over the shards."""
    table = ExperimentMetricTotal
    rows = session.execute(
        select(
            table.metric,
            table.variant,
            func.sum(table.users),
            func.sum(table.converted),
            func.sum(table.total),
            func.sum(table.squares),
        )
        .where(table.experiment_id == experiment_id)
        .group_by(table.metric, table.variant)
    )
    found: dict[str, dict[str, Totals]] = defaultdict(dict)
    for metric, variant, users, converted, total, squares in rows:
        found[metric][variant] = Totals(
            int(users or 0), int(converted or 0), float(total or 0), float(squares or 0)
        )
    return found


def forget_metrics(session: Session, experiment_id: int, metrics: Iterable[str]) -> None:
    """Drop the values and totals of metrics removed or redefined."""
    names = list(metrics)
    if not names:
        return
    for table in (ExperimentMetricValue, ExperimentMetricTotal):
        session.execute(
            delete(table)
            .where(table.experiment_id == experiment_id, table.metric.in_(names))
            .execution_options(synchronize_session=False)
        )
