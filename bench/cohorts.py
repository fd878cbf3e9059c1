"""Cohort-sync benchmark: how long one `ensign serve` takes to answer Amplitude's cohort batches.

Amplitude's cohort webhook destination times out and sends a batch again when the answer takes
more than 1 to 2 seconds, and its batches hold 1,000 users by default. This posts, one at a
time as Amplitude does per cohort, `--batches` batches of `--batch` users entering a cohort
(every user new: identities are created too), then the same batches again (Amplitude's
resends: recognised, nothing changes), then batches of those users leaving; and prints the latency of
each kind (median and worst), measured at the client over a real socket.

    scripts/uv run python bench/cohorts.py [--batch 1000] [--batches 10] [--database-url URL]

Without --database-url it uses a new SQLite file. A PostgreSQL URL must name a scratch
database: the benchmark adds a project to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import (  # type: ignore[import-not-found]
    BENCH_DATA,
    bench_document,
    ensign_cli,
    free_port,
    import_environment,
    start_ensign,
    work_directory,
)


def batch(in_cohort: bool, users: list[str], number: int) -> dict[str, Any]:
    verb = "enter" if in_cohort else "exit"
    return {
        "cohort_name": "Bench cohort",
        "cohort_id": "bench01",
        "in_cohort": in_cohort,
        "computed_time": str(int(time.time())),
        "message_id": f"bench::{verb}::{number}",
        "users": [{"user_id": u} for u in users],
    }


def timed(client: httpx.Client, key: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/cohort-sync/amplitude/", json=body, headers={"X-Ensign-Cohort-Key": key}
    )
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.text}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--document", type=Path, default=BENCH_DATA / "env_large.json")
    args = parser.parse_args()

    work = work_directory("cohorts")
    url = args.database_url or f"sqlite:///{work / 'cohorts.sqlite3'}"
    env = {**os.environ, "ENSIGN_DATABASE_URL": url}
    environment_key = import_environment(bench_document(args.document, work), env)[
        "environment_key"
    ]
    cohort_key = ensign_cli(
        "cohort-key", "create", "--environment", environment_key, "--name", "bench", env=env
    ).strip()
    port = free_port()
    server = start_ensign(port, env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            # One small call first, so that no kind pays for the first connection.
            timed(client, cohort_key, batch(True, ["warmup"], 0))
            groups = [
                [f"user-{n:03d}-{i:05d}@example.com" for i in range(args.batch)]
                for n in range(args.batches)
            ]
            kinds: dict[str, list[float]] = {"enter (new)": [], "enter (again)": [], "leave": []}
            for number, users in enumerate(groups):
                kinds["enter (new)"].append(timed(client, cohort_key, batch(True, users, number)))
            for number, users in enumerate(groups):
                kinds["enter (again)"].append(timed(client, cohort_key, batch(True, users, number)))
            for number, users in enumerate(groups):
                kinds["leave"].append(timed(client, cohort_key, batch(False, users, number)))
    finally:
        server.terminate()
        server.wait()
    database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{database}, {args.batches} batches of {args.batch} users each, one at a time:")
    for kind, times in kinds.items():
        print(f"  {kind:14} median {statistics.median(times):7.1f} ms   worst {max(times):7.1f} ms")


if __name__ == "__main__":
    main()
