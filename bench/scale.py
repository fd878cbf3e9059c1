"""Scaling benchmark: what PostgreSQL-backed Ensign delivers as processes are added, in one run.

1. Processes. On PostgreSQL (`--database-url`, a scratch database this benchmark empties),
   one project imported from the large document with both a Heap and a Mixpanel integration
   pointing at the fast local fake vendor of `bench/integrations.py`. For 1, 2 and 4
   `ensign serve --workers N` processes (`--processes`), and 1 and 2 `ensign worker`
   delivery processes (`--workers`), wrk loads `POST /api/v1/identities/` (new identities,
   three traits) and `GET /api/v1/flags/`; prints req/s, p50, p99 and the evaluations the
   vendor received per second while the load ran (one Heap event and one Mixpanel profile
   update per identify). The same on SQLite with one process (delivery by `serve`'s own delivery process, the
   SQLite set-up) comes first, for comparison.
2. Sizes. The identities table is bulk-loaded (SQL on the server, not the API) to each of
   `--sizes` stored identities with three traits each; at each size wrk identifies random
   stored identities (one server process, one worker) and the p99 is printed, with its
   ratio to the smallest size's (target: within 20%).

    uv run python bench/scale.py --database-url postgresql://postgres@127.0.0.1:5432/bench
        [--duration 5] [--connections 32] [--processes 1,2,4] [--workers 1,2]
        [--sizes 10000,100000,1000000] [--only processes|sizes]

The machine running it also runs wrk and the fake vendor: on a small machine the figures
measure sharing the cores as much as Ensign (see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from integrations import Vendor  # type: ignore[import-not-found]
from server import (  # type: ignore[import-not-found]
    BENCH_DATA,
    POST_SCRIPT,
    bench_document,
    ensign_cli,
    free_port,
    import_environment,
    wait_for,
    work_directory,
    wrk,
)

# Identifies a random one of the first __SIZE__ bulk-loaded identities, changing one trait.
EXISTING_SCRIPT = textwrap.dedent(
    """
    math.randomseed(os.time() + math.random(1, 1000000))
    local counter = 0
    request = function()
      counter = counter + 1
      local body = string.format(
        '{"identifier":"bulk-%d","traits":[{"trait_key":"plan","trait_value":"gold"},' ..
        '{"trait_key":"signup_days","trait_value":%d},{"trait_key":"locale","trait_value":"en-GB"}]}',
        math.random(0, __SIZE__ - 1), counter % 90)
      return wrk.format("POST", "/api/v1/identities/", {
        ["Content-Type"] = "application/json",
        ["X-Environment-Key"] = "__KEY__"}, body)
    end
    """
)


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


def plain_url(url: str) -> str:
    """The libpq form of a SQLAlchemy-style URL, for psycopg."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def reset_database(url: str) -> None:
    """Empty the scratch database (every table of the public schema goes)."""
    with psycopg.connect(plain_url(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


class Deployment:
    """`ensign serve --workers N` and M `ensign worker` processes on one database."""

    def __init__(self, env: dict[str, str], processes: int) -> None:
        self.env = env
        self.port = free_port()
        self.serve = subprocess.Popen(
            [
                *(sys.executable, "-m", "ensign.cli", "serve", "--port", str(self.port)),
                *("--workers", str(processes)),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        try:
            wait_for(f"{self.base}/health", self.serve)
        except BaseException:
            self.stop()
            raise

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_workers(self, count: int) -> None:
        while len(self.workers) > count:
            self._stop(self.workers.pop())
        while len(self.workers) < count:
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ensign.cli", "worker"],
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for process in [*self.workers, self.serve]:
            self._stop(process)
        self.workers = []


def configure(base: str, env: dict[str, str], key: str, vendor: Vendor) -> None:
    """Both integrations on environment `key`, then identify until the serving processes
    have the revision with them (each follows within its cache poll interval)."""
    admin_key = ensign_cli("api-key", "create", "--name", "bench", env=env).strip()
    for kind in ("heap", "mixpanel"):
        httpx.post(
            f"{base}/api/v1/environments/{key}/integrations/{kind}/",
            headers={"Authorization": f"Api-Key {admin_key}"},
            # Every evaluation, as the targets are set (the default sends on change).
            json={
                "api_key": f"bench-{kind}",
                "base_url": vendor.url,
                "deliver": "every_evaluation",
            },
        ).raise_for_status()


def warm(base: str, key: str, vendor: Vendor, *, timeout: float = 60) -> None:
    """Identify until a delivery arrives: every process then serves the integrations."""
    vendor.reset()
    deadline = time.monotonic() + timeout
    i = 0
    while vendor.stats()["heap_events"] == 0:
        if time.monotonic() > deadline:
            raise SystemExit("no delivery reached the fake vendor")
        for _ in range(20):
            i += 1
            httpx.post(
                f"{base}/api/v1/identities/",
                headers={"X-Environment-Key": key},
                json={"identifier": f"warm-{time.time_ns()}-{i}"},
            ).raise_for_status()
        time.sleep(0.2)


def measure(
    base: str, key: str, script: Path, vendor: Vendor, args: argparse.Namespace
) -> dict[str, Any]:
    """One identify load and one flags load; the evaluations delivered during the first."""
    time.sleep(1)
    vendor.reset()
    post = wrk(f"{base}/api/v1/identities/", args, script=script)
    stats = vendor.stats()
    post["delivered_per_s"] = (stats["heap_events"] + stats["mixpanel_updates"]) / args.duration
    # Deliveries of the warm-up's identities may land in the window too: never below zero.
    post["backlog"] = max(
        0, 2 * post["requests"] - stats["heap_events"] - stats["mixpanel_updates"]
    )
    # Let delivery catch up, so that the next load does not compete with this one's backlog.
    requests = int(post["requests"])
    try:
        vendor.wait_delivered(requests, requests, timeout=120)
    except SystemExit as error:
        print(f"  (delivery had not caught up: {error})")
    flags = wrk(f"{base}/api/v1/flags/", args, key=key)
    return {"post": post, "flags": flags}


def row(name: str, result: dict[str, Any]) -> str:
    post, flags = result["post"], result["flags"]
    return (
        f"{name:30} {post['rps']:7.0f} {post['p50']:7.1f} {post['p99']:7.1f} "
        f"{post['delivered_per_s']:8.0f} {post['backlog']:8.0f} {post['errors']:6.0f} | "
        f"{flags['rps']:7.0f} {flags['p50']:7.1f} {flags['p99']:7.1f}"
    )


def processes(args: argparse.Namespace, work: Path, vendor: Vendor) -> None:
    document = bench_document(args.document, work)
    base_env = {
        **os.environ,
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
        "ENSIGN_CACHE_POLL_INTERVAL_SECONDS": "1",
    }
    print(
        f"processes: document {document.name}; wrk -t1 -c{args.connections} -d{args.duration}s; "
        "identify = POST /identities/ (new identities, 3 traits, Heap and Mixpanel on)"
    )
    print(
        f"{'set-up':30} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'deliv/s':>8} "
        f"{'backlog':>8} {'non2xx':>6} | {'flags/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
    )
    results: dict[str, dict[str, Any]] = {}

    # SQLite, one process delivering from its own delivery process: the single-machine set-up.
    env = {**base_env, "ENSIGN_DATABASE_URL": f"sqlite:///{work / 'scale.sqlite3'}"}
    key = import_environment(document, env)["environment_key"]
    script = work / "post-sqlite.lua"
    script.write_text(POST_SCRIPT.replace("__KEY__", key))
    deployment = Deployment(env, 1)
    try:
        configure(deployment.base, env, key, vendor)
        warm(deployment.base, key, vendor)
        results["sqlite"] = measure(deployment.base, key, script, vendor, args)
        print(row("SQLite, 1 process (in-serve)", results["sqlite"]), flush=True)
    finally:
        deployment.stop()

    # PostgreSQL: delivery in separate `ensign worker` processes.
    reset_database(args.database_url)
    env = {
        **base_env,
        "ENSIGN_DATABASE_URL": args.database_url,
        "ENSIGN_DELIVERY_IN_SERVE": "false",
    }
    key = import_environment(document, env)["environment_key"]
    script = work / "post-pg.lua"
    script.write_text(POST_SCRIPT.replace("__KEY__", key))
    configured = False
    for count in args.processes:
        deployment = Deployment(env, count)
        try:
            if not configured:
                configure(deployment.base, env, key, vendor)
                configured = True
            for workers in args.workers:
                deployment.set_workers(workers)
                warm(deployment.base, key, vendor)
                name = f"PG, {count} proc, {workers} worker{'s' if workers > 1 else ''}"
                results[name] = measure(deployment.base, key, script, vendor, args)
                print(row(name, results[name]), flush=True)
                if (count, workers) == (2, 1):
                    results["pg-2-1"] = results[name]
        finally:
            deployment.stop()
    if "pg-2-1" in results:
        ratio = results["pg-2-1"]["post"]["rps"] / results["sqlite"]["post"]["rps"]
        print(
            f"PostgreSQL, 2 processes and 1 worker: identify at {ratio:.0%} of SQLite's one "
            "process (target >= 80%)"
        )


# --- 2. identify p99 against the number of stored identities -------------------------------------


def bulk_load(url: str, environment_key: str, target: int) -> int:
    """Grow the environment's bulk identities (`bulk-0` ...) to `target`, each with three
    traits, in a few statements run by the server; answers how many there are."""
    with psycopg.connect(plain_url(url)) as connection:
        environment_id = connection.execute(
            "SELECT id FROM environments WHERE api_key = %s", (environment_key,)
        ).fetchone()[0]  # type: ignore[index]
        have = connection.execute(
            "SELECT count(*) FROM identities WHERE environment_id = %s AND identifier LIKE 'bulk-%%'",
            (environment_id,),
        ).fetchone()[0]  # type: ignore[index]
        if have >= target:
            return int(have)
        # The identifier hash is SHA-256 of the identifier's UTF-8, in hex, as Ensign stores it.
        connection.execute(
            "INSERT INTO identities (environment_id, identifier, identifier_hash, created_at) "
            "SELECT %s, 'bulk-' || g, encode(sha256(convert_to('bulk-' || g, 'UTF8')), 'hex'), "
            "now() FROM generate_series(%s::bigint, %s::bigint) AS g",
            (environment_id, have, target - 1),
        )
        connection.execute(
            "INSERT INTO traits (identity_id, key, value_type, value_text, created_at) "
            "SELECT i.id, t.key, t.value_type, t.value_text, now() FROM identities i "
            "CROSS JOIN (VALUES ('plan', 'str', 'silver'), ('signup_days', 'int', '7'), "
            "('locale', 'str', 'en-GB')) AS t(key, value_type, value_text) "
            "WHERE i.environment_id = %s AND i.identifier LIKE 'bulk-%%' "
            "AND NOT EXISTS (SELECT 1 FROM traits x WHERE x.identity_id = i.id)",
            (environment_id,),
        )
        connection.commit()
        connection.execute("ANALYZE identities")
        connection.execute("ANALYZE traits")
        connection.commit()
    return target


def wait_quiet(vendor: Vendor, *, timeout: float = 120) -> None:
    """Wait until deliveries stop arriving (identifying a stored identity again with the
    same flags may record nothing, so the count to wait for is not known)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        stats = vendor.stats()
        seen = (stats["heap_events"], stats["mixpanel_updates"])
        if seen == last:
            return
        last = seen
        time.sleep(2)


def sizes(args: argparse.Namespace, work: Path, vendor: Vendor) -> None:
    document = bench_document(args.document, work)
    reset_database(args.database_url)
    env = {
        **os.environ,
        "ENSIGN_DATABASE_URL": args.database_url,
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
        "ENSIGN_DELIVERY_IN_SERVE": "false",
        "ENSIGN_CACHE_POLL_INTERVAL_SECONDS": "1",
    }
    key = import_environment(document, env)["environment_key"]
    print(
        f"sizes: PostgreSQL, 1 process, 1 worker; wrk -t1 -c{args.connections} "
        f"-d{args.duration}s identifying random stored identities (3 traits, integrations on)"
    )
    print(f"{'stored identities':>18} {'load s':>7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}")
    deployment = Deployment(env, 1)
    first_p99 = None
    try:
        configure(deployment.base, env, key, vendor)
        deployment.set_workers(1)
        warm(deployment.base, key, vendor)
        # A first load warms what a fresh process warms once (prepared statements, the
        # database's caches), which would otherwise be charged to the first size alone.
        script = work / "existing-warm.lua"
        script.write_text(EXISTING_SCRIPT.replace("__KEY__", key).replace("__SIZE__", "1"))
        bulk_load(args.database_url, key, 1)
        wrk(
            f"{deployment.base}/api/v1/identities/",
            argparse.Namespace(**{**vars(args), "duration": 3}),
            script=script,
        )
        wait_quiet(vendor)
        for size in args.sizes:
            started = time.monotonic()
            bulk_load(args.database_url, key, size)
            loaded = time.monotonic() - started
            script = work / f"existing-{size}.lua"
            script.write_text(
                EXISTING_SCRIPT.replace("__KEY__", key).replace("__SIZE__", str(size))
            )
            time.sleep(1)
            vendor.reset()
            result = wrk(f"{deployment.base}/api/v1/identities/", args, script=script)
            first_p99 = first_p99 or result["p99"]
            print(
                f"{size:18,} {loaded:7.1f} {result['rps']:7.0f} {result['p50']:7.1f} "
                f"{result['p99']:7.1f}  ({result['p99'] / first_p99:.0%} of the first p99; "
                f"non-2xx {result['errors']:.0f})",
                flush=True,
            )
            wait_quiet(vendor)
    finally:
        deployment.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ENSIGN_BENCH_DATABASE_URL"),
        help="a scratch PostgreSQL database, emptied by the benchmark "
        "(default ENSIGN_BENCH_DATABASE_URL)",
    )
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int_list, default=[1, 2, 4])
    parser.add_argument("--workers", type=int_list, default=[1, 2])
    parser.add_argument("--sizes", type=int_list, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--document", type=Path, default=BENCH_DATA / "env_large.json")
    parser.add_argument("--only", choices=("processes", "sizes"), default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: it generates the load (Debian/Ubuntu: apt-get install wrk; "
            "macOS: brew install wrk)"
        )
    if not args.database_url or not args.database_url.startswith("postgres"):
        raise SystemExit(
            "give a scratch PostgreSQL database, which the benchmark empties: --database-url "
            "postgresql://... (or ENSIGN_BENCH_DATABASE_URL)"
        )
    work = work_directory("scale")
    vendor = Vendor(work)
    try:
        if args.only in (None, "processes"):
            processes(args, work, vendor)
        if args.only in (None, "sizes"):
            sizes(args, work, vendor)
    finally:
        vendor.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
