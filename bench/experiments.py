"""Experiment results benchmark: how long `GET …/experiments/{id}/results/` takes for an
experiment with `--users` exposed identities (default 1,000,000) and `--events` custom events
(default 10,000,000) on three metrics (conversion, count, sum), and how fast arriving events
update the per-user aggregates. Target: results in under 1 s.

1. Set-up. A new database (SQLite, or `--database-url` naming a scratch PostgreSQL database),
   migrated; an organisation, a multivariate feature and a running experiment with the three
   metrics, through the admin API of an in-process app.
2. Load. Written straight through the tables, as the identify path and the events API would
   have left them (sending 10M events over HTTP would take far longer than what is measured):
   per identity an exposure and its per-user row (1% of identities exposed to both variants,
   so left out), per metric the identity's aggregate of its events (Poisson-distributed,
   `--events / --users` on average; a 5% lift in the variant), and the running totals per
   variant kept beside them.
3. Record. `--batches` batches of 1,000 new events for exposed identities through
   `experiment_metrics.record_events`, each in its own transaction as the events API commits
   them; prints events per second.
4. Results. The results request once (the process's first imports SciPy, which takes seconds on
   a busy machine; a server pays it once), then `--repeat` times through the in-process app;
   prints the median and the slowest.

    scripts/uv run python bench/experiments.py [--users 1000000] [--events 10000000]
        [--batches 20] [--repeat 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from ensign.services.admin.organisations import create_organisation
from ensign.services.event_requests import SdkEvent
from ensign.services.experiment_metrics import record_events
from ensign.services.keys import create_admin_key
from ensign.settings import Settings
from ensign.storage import dialect
from ensign.storage.db import Database, migrate

START = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
METRICS = [
    {"name": "bought", "event": "purchase", "kind": "conversion"},
    {"name": "purchases", "event": "purchase", "kind": "count"},
    {"name": "revenue", "event": "purchase", "kind": "sum", "property": "amount", "primary": True},
]


def _chunks(rows: Sequence[Any], size: int = 20_000) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def set_up(client: TestClient, url: str) -> tuple[str, int, int]:
    """The admin key's headers, the environment key and the experiment's id."""
    db = Database(url)
    with db.session() as session:
        organisation = create_organisation(session, name="Bench")
        key = create_admin_key(session, organisation.id, "bench")
    db.dispose()
    headers = {"Authorization": f"Api-Key {key}"}

    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(f"/api/v1/{path}", json=body, headers=headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    project = made("projects/", {"name": "Shop"})
    environment = made("environments/", {"name": "Production", "project": project["id"]})
    feature = made(
        f"projects/{project['id']}/features/",
        {"name": "checkout", "initial_value": "classic", "default_enabled": True},
    )
    made(
        f"projects/{project['id']}/features/{feature['id']}/mv-options/",
        {"value": "express", "key": "express", "default_percentage_allocation": 50},
    )
    experiment = made(
        f"environments/{environment['api_key']}/experiments/",
        {"name": "Checkout", "feature": feature["id"], "metrics": METRICS},
    )
    return key, environment["api_key"], experiment["id"]


def load(url: str, experiment_id: int, users: int, events: int) -> list[str]:
    """Exposures, per-user rows and metric aggregates; answers the identities counted."""
    rng = np.random.default_rng(1)
    variants = np.where(rng.random(users) < 0.5, "control", "express")
    multiple = rng.random(users) < 0.01
    rate = events / users
    counts = rng.poisson(np.where(variants == "express", rate * 1.05, rate))
    amounts = counts * rng.exponential(20.0, users)
    identifiers = [f"user-{n}" for n in range(users)]
    db = Database(url)
    with db.session() as session:
        postgres = dialect.is_postgres(session)
        stamp: Any = START if postgres else START.replace(tzinfo=None).isoformat(" ")
        flag = (lambda b: bool(b)) if postgres else (lambda b: int(bool(b)))
        exposures, people, values = [], [], []
        for n, identifier in enumerate(identifiers):
            variant = str(variants[n])
            exposures.append((experiment_id, identifier, variant, stamp))
            if multiple[n]:
                other = "express" if variant == "control" else "control"
                exposures.append((experiment_id, identifier, other, stamp))
            people.append((experiment_id, identifier, variant, stamp, flag(multiple[n])))
            if counts[n] and not multiple[n]:
                count = int(counts[n])
                values.append((experiment_id, "bought", identifier, variant, count, float(count)))
                values.append(
                    (experiment_id, "purchases", identifier, variant, count, float(count))
                )
                values.append(
                    (experiment_id, "revenue", identifier, variant, count, float(amounts[n]))
                )
        # The running totals per variant that recording would have kept beside those rows.
        sums: dict[tuple[str, str], list[float]] = {}

        def add(metric: str, variant: str, users: int, converted: int, value: float) -> None:
            row = sums.setdefault((metric, variant), [0, 0, 0.0, 0.0])
            row[0] += users
            row[1] += converted
            row[2] += value
            row[3] += value * value

        for _, _, variant, _ in exposures:
            add("$exposures", variant, 1, 0, 0.0)
        for _, _, variant, _, left_out in people:
            add("$users", "" if left_out else variant, 1, 0, 0.0)
        for _, metric, _, variant, _, value in values:
            add(metric, variant, 0, 1, value)
        totals = [
            (experiment_id, metric, variant, 0, *row) for (metric, variant), row in sums.items()
        ]
        statements = [
            (
                "INSERT INTO experiment_metric_totals (experiment_id, metric, variant, shard, "
                "users, converted, total, squares) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                totals,
            ),
            (
                "INSERT INTO exposures (experiment_id, identifier, variant, exposed_at) "
                "VALUES (?, ?, ?, ?)",
                exposures,
            ),
            (
                "INSERT INTO experiment_metric_users (experiment_id, identifier, variant, "
                "exposed_at, multiple) VALUES (?, ?, ?, ?, ?)",
                people,
            ),
            (
                "INSERT INTO experiment_metric_values (experiment_id, metric, identifier, "
                "variant, events, value) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            ),
        ]
        with dialect.driver_cursor(session) as cursor:
            for sql, rows in statements:
                for chunk in _chunks(rows):
                    cursor.executemany(dialect.driver_sql(sql, postgres=postgres), chunk)
    if not postgres:
        with db.session() as session:
            session.connection().exec_driver_sql("ANALYZE")
    db.dispose()
    return [i for n, i in enumerate(identifiers) if not multiple[n]]


def record(url: str, environment_id: int, identifiers: list[str], batches: int) -> float:
    """Events per second through `record_events`, 1,000 per transaction."""
    db = Database(url)
    rng = random.Random(2)
    at = START + dt.timedelta(hours=1)
    total, took = 0, 0.0
    for b in range(batches):
        batch = [
            SdkEvent(
                key=f"bench-{b}-{n}",
                name="purchase",
                feature_name=None,
                identifier=rng.choice(identifiers),
                value=None,
                metadata={"amount": rng.uniform(1, 100)},
                timestamp_ms=int(at.timestamp() * 1000),
                occurred_at=at,
                adjusted=None,
            )
            for n in range(1000)
        ]
        started = time.perf_counter()
        with db.session() as session:
            record_events(session, environment_id, batch)
        took += time.perf_counter() - started
        total += len(batch)
    db.dispose()
    return total / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ensign-bench-experiments-") as work:
        url = args.database_url or f"sqlite:///{Path(work) / 'bench.sqlite3'}"
        migrate(url)
        from ensign.web.app import create_app

        app = create_app(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        with TestClient(app) as client:
            key, env_key, experiment_id = set_up(client, url)
            started = time.perf_counter()
            identifiers = load(url, experiment_id, args.users, args.events)
            print(
                f"loaded {args.users:,} exposed users, ~{args.events:,} events "
                f"in {time.perf_counter() - started:.1f} s"
            )
            headers = {"Authorization": f"Api-Key {key}"}
            environment = client.get(f"/api/v1/environments/{env_key}/", headers=headers).json()
            rate = record(url, environment["id"], identifiers, args.batches)
            print(f"record_events: {rate:,.0f} events/s ({args.batches} batches of 1,000)")
            path = f"/api/v1/environments/{env_key}/experiments/{experiment_id}/results/"
            started = time.perf_counter()
            assert client.get(path, headers=headers).status_code == 200
            first = time.perf_counter() - started
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(path, headers=headers)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            body = response.json()
            revenue = {v["variant"]: v for v in body["metrics"][2]["variants"]}["express"]
            print(
                f"results: median {statistics.median(times) * 1000:.0f} ms, "
                f"slowest {max(times) * 1000:.0f} ms (target < 1000 ms), first request "
                f"{first * 1000:.0f} ms (it imports SciPy); "
                f"users {body['metric_users']}, left out {body['multiple_exposures']}, "
                f"revenue lift {revenue['lift']:.3f} p={revenue['p_value']:.3g}"
            )


if __name__ == "__main__":
    main()
