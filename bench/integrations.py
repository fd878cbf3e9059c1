"""Analytics integrations benchmark: what Heap and Mixpanel delivery costs, in one run.

1. Identify throughput. One `ensign serve` (one worker, SQLite) holds two imports of the large
   document: one environment with both a Heap and a Mixpanel integration, pointing at a fast
   local fake vendor, and one without. wrk loads `POST /api/v1/identities/` on each, with the
   same settings, alternately for `--rounds` rounds (waiting between runs until the dispatcher
   has delivered everything), and prints req/s, p50, p99 and the on/off ratio
   (target: at most 15% lower with the integrations on). `--dispatcher worker` delivers from
   a separate `ensign worker` process instead of `ensign serve`'s own delivery process; `--dispatcher none`
   delivers nothing, which measures the cost of recording alone.
2. Send on change. The same two environments, both integrations in `deliver="changes"` mode
   (the default) and an experiment running on a multivariate feature: wrk loads `POST /api/v1/identities/` with a pool of `--pool` identities
   already identified once (repeat identities: nothing changed, every delivery is
   suppressed), on and off alternately, and prints the on/off ratio (target: at least 90%);
   then one run per environment where each identity is called five times in a row, and prints
   the share of deliveries suppressed (from the integrations' counters: 80% is the most
   possible).
3. Drain rate. A fresh database gets `--evaluations` outbox evaluations for each of Heap and
   Mixpanel (the large document's flags, distinct identities), then one `ensign worker`
   process delivers them to the fast fake vendor; prints evaluations delivered per second
   (target: at least 5,000 per worker).

The fake vendor (a separate process) checks each request's shape and size limits cheaply (by
counting fields in the raw body, so that it takes little of the machine) and counts what it
accepts; it answers as the vendors do when they accept.

    uv run python bench/integrations.py [--duration 10] [--connections 32] [--rounds 2]
        [--dispatcher serve|worker|none] [--evaluations 50000] [--database-url postgresql://...]
        [--only throughput|changes|drain] [--pool 2000] [--no-experiment]

`--database-url` runs the drain part on that (empty, scratch) database instead of a fresh
SQLite file; its outbox is filled and emptied, nothing else is removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import (  # type: ignore[import-not-found]
    BENCH_DATA,
    POST_SCRIPT,
    bench_document,
    ensign_cli,
    free_port,
    import_environment,
    start_ensign,
    wait_for,
    work_directory,
    wrk,
)

VENDOR_APP = textwrap.dedent(
    """
    import time
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    STATS = {"heap_requests": 0, "heap_events": 0, "mixpanel_requests": 0,
             "mixpanel_updates": 0, "mixpanel_events": 0, "rejected": 0, "first_at": None,
             "last_at": None}

    def seen():
        now = time.time()
        if STATS["first_at"] is None:
            STATS["first_at"] = now
        STATS["last_at"] = now

    def bad(text):
        STATS["rejected"] += 1
        return Response(text, status_code=400, media_type="text/plain")

    # Cheap checks only (the fakes in tests/fakes validate every field): the vendor shares
    # the machine with the server and wrk, and should take as little of it as it can.
    async def track(request):
        body = await request.body()
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return bad("Bad request")
        events = body.count(b'"idempotency_key":')
        if not body.startswith(b'{"app_id":') or not 1 <= events <= 1000 \
                or body.count(b'"identity":') != events:
            return bad("Bad request")
        STATS["heap_requests"] += 1
        STATS["heap_events"] += events
        seen()
        return Response(b"", media_type="text/plain")

    async def engage(request):
        body = await request.body()
        updates = body.count(b'"$distinct_id":')
        if not body.startswith(b'[{"$token":') or not 1 <= updates <= 2000 \
                or body.count(b'"$set":{') != updates:
            STATS["rejected"] += 1
            return Response(orjson.dumps({"status": 0, "error": "bad"}),
                            media_type="application/json")
        STATS["mixpanel_requests"] += 1
        STATS["mixpanel_updates"] += updates
        seen()
        return Response(b'{"status": 1, "error": null}', media_type="application/json")

    async def mixpanel_track(request):
        body = await request.body()
        events = body.count(b'"$insert_id":')
        if not body.startswith(b'[{"event":') or not 1 <= events <= 2000 \
                or body.count(b'"distinct_id":') != events:
            STATS["rejected"] += 1
            return Response(orjson.dumps({"status": 0, "error": "bad"}),
                            media_type="application/json")
        STATS["mixpanel_events"] += events
        seen()
        return Response(b'{"status": 1, "error": null}', media_type="application/json")

    async def stats(request):
        return Response(orjson.dumps(STATS), media_type="application/json")

    async def reset(request):
        for key in STATS:
            STATS[key] = None if key.endswith("_at") else 0
        return Response(b"")

    app = Starlette(routes=[
        Route("/api/track", track, methods=["POST"]),
        Route("/engage", engage, methods=["POST"]),
        Route("/track", mixpanel_track, methods=["POST"]),
        Route("/stats", stats),
        Route("/reset", reset, methods=["POST"]),
        Route("/health", stats),
    ])
    """
)


class Vendor:
    """The fast fake Heap and Mixpanel (one uvicorn process serving both paths)."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        (work / "fast_vendor.py").write_text(VENDOR_APP)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import sys, uvicorn; sys.path.insert(0, {str(work)!r}); import fast_vendor; "
                f"uvicorn.run(fast_vendor.app, host='127.0.0.1', port={self.port}, "
                "log_level='warning', access_log=False)",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(f"{self.url}/health", self.process)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/stats", timeout=5).json())

    def reset(self) -> None:
        httpx.post(f"{self.url}/reset", timeout=5)

    def wait_delivered(self, heap: int, mixpanel: int, *, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["heap_events"] >= heap and stats["mixpanel_updates"] >= mixpanel:
                return stats
            if time.monotonic() > deadline:
                raise SystemExit(f"not delivered in {timeout:g} s: {stats}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# --- 1. identify throughput, integrations on versus off -----------------------------------------


def throughput(args: argparse.Namespace, work: Path, vendor: Vendor) -> None:
    document = bench_document(args.document, work)
    env = {
        **os.environ,
        "ENSIGN_DATABASE_URL": f"sqlite:///{work / 'throughput.sqlite3'}",
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
    }
    key_off = import_environment(document, env)["environment_key"]
    key_on = import_environment(document, env)["environment_key"]
    admin_key = ensign_cli("api-key", "create", "--name", "bench", env=env).strip()
    port = free_port()
    worker = None
    delivering = args.dispatcher != "none"
    if args.dispatcher != "serve":
        env["ENSIGN_DELIVERY_IN_SERVE"] = "false"
    if args.dispatcher == "worker":
        worker = subprocess.Popen(
            [sys.executable, "-m", "ensign.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ensign = start_ensign(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        for kind in ("heap", "mixpanel"):
            response = httpx.post(
                f"{base}/api/v1/environments/{key_on}/integrations/{kind}/",
                headers={"Authorization": f"Api-Key {admin_key}"},
                # Every call recorded, as the target is set (send on change is part 2).
                json={
                    "api_key": f"bench-{kind}",
                    "base_url": vendor.url,
                    "deliver": "every_evaluation",
                },
            )
            response.raise_for_status()
        # The serving process follows the new revision within its cache poll interval.
        for key in (key_on, key_off):
            for i in range(50):
                httpx.post(
                    f"{base}/api/v1/identities/",
                    headers={"X-Environment-Key": key},
                    json={"identifier": f"warmup-{i}"},
                ).raise_for_status()
                time.sleep(0.02)
        if delivering:
            vendor.wait_delivered(1, 1, timeout=30)
        scripts = {}
        for label, key in (("off", key_off), ("on", key_on)):
            scripts[label] = work / f"post-{label}.lua"
            scripts[label].write_text(POST_SCRIPT.replace("__KEY__", key))
        where = {
            "serve": "by `ensign serve` (its own delivery process)",
            "worker": "in one `ensign worker` process",
            "none": "off (recording only)",
        }[args.dispatcher]
        print(
            f"identify throughput: document {document.name}; wrk -t1 -c{args.connections} "
            f"-d{args.duration}s; {args.rounds} rounds; delivery {where}"
        )
        runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for round_ in range(args.rounds):
            order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
            for label in order:
                time.sleep(1)
                vendor.reset()
                result = wrk(f"{base}/api/v1/identities/", args, key=None, script=scripts[label])
                if label == "on" and delivering:
                    # What the dispatcher had not yet delivered when the load stopped.
                    stats = vendor.stats()
                    result["backlog"] = result["requests"] - stats["heap_events"]
                    started = time.monotonic()
                    requests = int(result["requests"])
                    if result["errors"]:
                        print(f"  {result['errors']:.0f} calls failed: not all were recorded")
                        requests -= int(result["errors"])
                    stats = vendor.wait_delivered(requests, requests, timeout=120)
                    result["catch_up"] = time.monotonic() - started
                    result["batches"] = stats["heap_requests"] + stats["mixpanel_requests"]
                runs[label].append(result)
                print(
                    f"  round {round_ + 1} {label:3}: {result['rps']:7.0f} req/s "
                    f"p50 {result['p50']:6.2f} ms p99 {result['p99']:6.2f} ms "
                    f"non-2xx {result['errors']:.0f}"
                    + (
                        f"; {2 * result['requests']:.0f} evaluations in "
                        f"{result['batches']:.0f} vendor requests, backlog at end "
                        f"{result['backlog']:.0f}, delivered {result['catch_up']:.1f} s later"
                        if label == "on" and delivering
                        else ""
                    )
                )
    finally:
        for process in (ensign, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)

    def median(label: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[label])

    print(f"{'POST /identities/':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for label in ("off", "on"):
        name = f"integrations {label} (median)"
        print(
            f"{name:28} {median(label, 'rps'):9.0f} "
            f"{median(label, 'p50'):8.2f} {median(label, 'p99'):8.2f}"
        )
    ratios = [on["rps"] / off["rps"] for on, off in zip(runs["on"], runs["off"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"with integrations on: {ratio:.0%} of the throughput off "
        f"({1 - ratio:.0%} lower; target: at most 15% lower); per round: "
        + ", ".join(f"{r:.0%}" for r in ratios)
    )


# --- 2. send on change: repeat identities -----------------------------------------------------

# Identities from a pool (`__POOL__` of them) with the same traits every time; with `__EACH__`
# > 0, each identity instead `__EACH__` times in a row, then never again.
REPEAT_SCRIPT = textwrap.dedent(
    """
    local counter = 0
    request = function()
      counter = counter + 1
      local n = counter % __POOL__
      if __EACH__ > 0 then n = math.floor(counter / __EACH__) end
      local body = string.format(
        '{"identifier":"__PREFIX__-%d","traits":[{"trait_key":"plan","trait_value":"gold"},' ..
        '{"trait_key":"locale","trait_value":"en-GB"}]}', n)
      return wrk.format("POST", "/api/v1/identities/", {
        ["Content-Type"] = "application/json",
        ["X-Environment-Key"] = "__KEY__"}, body)
    end
    """
)


def repeat_script(work: Path, key: str, prefix: str, *, pool: int, each: int = 0) -> Path:
    path = work / f"{prefix}.lua"
    path.write_text(
        REPEAT_SCRIPT.replace("__KEY__", key)
        .replace("__PREFIX__", prefix)
        .replace("__POOL__", str(pool))
        .replace("__EACH__", str(each))
    )
    return path


def changes(args: argparse.Namespace, work: Path, vendor: Vendor) -> None:
    document = bench_document(args.document, work)
    env = {
        **os.environ,
        "ENSIGN_DATABASE_URL": f"sqlite:///{work / 'changes.sqlite3'}",
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
    }
    key_off = import_environment(document, env)["environment_key"]
    key_on = import_environment(document, env)["environment_key"]
    admin_key = ensign_cli("api-key", "create", "--name", "bench", env=env).strip()
    admin = {"Authorization": f"Api-Key {admin_key}"}
    port = free_port()
    ensign = start_ensign(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        ids = {}
        for kind in ("heap", "mixpanel"):
            response = httpx.post(
                f"{base}/api/v1/environments/{key_on}/integrations/{kind}/",
                headers=admin,
                json={"api_key": f"bench-{kind}", "base_url": vendor.url, "deliver": "changes"},
            )
            response.raise_for_status()
            ids[kind] = response.json()["id"]
        experiment = (
            start_experiment(base, admin, key_on, "feature_00") if args.experiment else None
        )

        def counters() -> dict[str, dict[str, int]]:
            return {
                kind: httpx.get(
                    f"{base}/api/v1/environments/{key_on}/integrations/{kind}/{id_}/deliveries/",
                    headers=admin,
                ).json()
                for kind, id_ in ids.items()
            }

        # Every identity of the pool identified once, so that later calls repeat it.
        with httpx.Client(base_url=base) as client:
            for key in (key_off, key_on):
                for i in range(args.pool):
                    client.post(
                        "/api/v1/identities/",
                        headers={"X-Environment-Key": key},
                        json={
                            "identifier": f"repeat-{i}",
                            "traits": [
                                {"trait_key": "plan", "trait_value": "gold"},
                                {"trait_key": "locale", "trait_value": "en-GB"},
                            ],
                        },
                    ).raise_for_status()
        vendor.wait_delivered(args.pool, args.pool, timeout=60)
        print(
            f"send on change: document {document.name}; wrk -t1 -c{args.connections} "
            f"-d{args.duration}s; {args.rounds} rounds; {args.pool} repeat identities; "
            f"delivery by `ensign serve`'s delivery process; experiment {experiment} running on feature_00 "
            "(integrations on only)"
        )
        runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for round_ in range(args.rounds):
            for label in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                time.sleep(1)
                key = key_on if label == "on" else key_off
                script = repeat_script(work, key, "repeat", pool=args.pool)
                result = wrk(f"{base}/api/v1/identities/", args, script=script)
                runs[label].append(result)
                print(
                    f"  round {round_ + 1} {label:3}: {result['rps']:7.0f} req/s "
                    f"p50 {result['p50']:6.2f} ms p99 {result['p99']:6.2f} ms "
                    f"non-2xx {result['errors']:.0f}"
                )
        ratios = [on["rps"] / off["rps"] for on, off in zip(runs["on"], runs["off"], strict=True)]
        print(
            f"repeat identities, integrations on (changes): {statistics.median(ratios):.0%} of "
            "the throughput off (target: at least 90%); per round: "
            + ", ".join(f"{r:.0%}" for r in ratios)
        )
        before, exposures_before = counters(), vendor.stats()["mixpanel_events"]
        five = {}
        for label, key in (("off", key_off), ("on", key_on)):
            time.sleep(1)
            script = repeat_script(work, key, f"five-{label}", pool=1, each=5)
            five[label] = wrk(f"{base}/api/v1/identities/", args, script=script)
        time.sleep(2)  # the exposures recorded by the last calls reach the vendor
        after = counters()
        # The integrations' counters count exposures (one per new identity in the experiment)
        # among their deliveries; the suppressed share is of the flag-set deliveries.
        exposures = vendor.stats()["mixpanel_events"] - exposures_before
        print(
            f"each identity called five times: {five['on']['rps']:.0f} req/s on, "
            f"{five['off']['rps']:.0f} off ({five['on']['rps'] / five['off']['rps']:.0%})"
        )
        # Counted by the server (wrk leaves out the calls in flight when it stops); whatever
        # was recorded is delivered, pending or failed by now.
        fields = ("suppressed", "delivered", "pending", "retrying", "failed", "given_up")
        for kind in ids:
            delta = {f: after[kind][f] - before[kind][f] for f in fields}
            calls = sum(delta.values()) - exposures
            print(
                f"  {kind}: {delta['suppressed']} of {calls} flag-set deliveries suppressed "
                f"({delta['suppressed'] / calls:.1%}; at most 80%), besides {exposures} exposures"
            )
    finally:
        ensign.terminate()
        ensign.wait(timeout=20)


def start_experiment(base: str, admin: dict[str, str], key: str, feature_name: str) -> int:
    """Start an experiment on a multivariate feature of the environment, by the admin API."""
    project = httpx.get(f"{base}/api/v1/environments/{key}/", headers=admin).json()["project"]
    features = httpx.get(
        f"{base}/api/v1/projects/{project}/features/",
        headers=admin,
        params={"search": feature_name, "page_size": 100},
    ).json()["results"]
    feature = next(f["id"] for f in features if f["name"] == feature_name)
    response = httpx.post(
        f"{base}/api/v1/environments/{key}/experiments/",
        headers=admin,
        json={"name": "bench", "feature": feature, "segment": None, "running": True},
    )
    response.raise_for_status()
    return int(response.json()["id"])


# --- 3. drain rate of one worker -----------------------------------------------------------------


def preload(database_url: str, document: Path, vendor_url: str, count: int) -> None:
    """Migrate, import `document`, configure both integrations and record `count` evaluations
    for each, with the document's flags and distinct identities."""
    from ensign.integrations.values import property_value
    from ensign.services import integrations
    from ensign.services.importing import import_document
    from ensign.services.keys import AdminPrincipal
    from ensign.services.organisations import default_organisation
    from ensign.storage.db import Database, migrate
    from ensign.storage.identities import IdentityStore
    from ensign.storage.outbox import OutboxRecord
    from ensign.storage.unit_of_work import Units

    migrate(database_url)
    db = Database(database_url)
    data = orjson.loads(document.read_bytes())
    with db.session() as session:
        organisation_id = default_organisation(session).id
        result = import_document(session, organisation_id, data, project_name="drain bench")
    principal = AdminPrincipal(organisation_id, 0, "bench")
    ids = []
    environment_id = 0
    with Units(db).write() as unit:
        for kind in ("heap", "mixpanel"):
            config = integrations.create_integration(
                unit,
                principal,
                result.environment_key,
                kind,
                integrations.IntegrationInput(
                    api_key=f"bench-{kind}",
                    base_url=vendor_url,
                    given=frozenset({"api_key", "base_url"}),
                ),
                allow_private=True,
            )
            ids.append(config.id)
            environment_id = config.environment_id
    # Stored as the outbox stores them: feature name → value sent.
    flags = orjson.dumps(
        {
            state["feature"]["name"]: property_value(
                bool(state["enabled"]), state["feature_state_value"]
            )
            for state in data["feature_states"]
        }
    ).decode()
    now = dt.datetime.now(dt.UTC)
    connection = db.engine.raw_connection()
    try:
        store = IdentityStore(connection.cursor(), is_postgres=not db.is_sqlite)
        for start in range(0, count, 5000):
            records = [
                OutboxRecord(environment_id, tuple(ids), uuid.uuid4().hex, f"drain-{i}", flags, now)
                for i in range(start, min(count, start + 5000))
            ]
            store.insert_outbox(records)
            connection.commit()
    finally:
        connection.close()
        db.dispose()


def drain(args: argparse.Namespace, work: Path, vendor: Vendor) -> None:
    document = bench_document(args.document, work)
    database_url = args.database_url or f"sqlite:///{work / 'drain.sqlite3'}"
    count = args.evaluations
    started = time.monotonic()
    preload(database_url, document, vendor.url, count)
    print(
        f"drain: {count} evaluations for each of Heap and Mixpanel "
        f"({len(orjson.loads(document.read_bytes())['feature_states'])} flags each) "
        f"recorded in {time.monotonic() - started:.1f} s on "
        f"{'PostgreSQL' if database_url.startswith('postgres') else 'SQLite'}"
    )
    vendor.reset()
    env = {
        **os.environ,
        "ENSIGN_DATABASE_URL": database_url,
        "ENSIGN_DELIVERY_POLL_INTERVAL_SECONDS": "0.1",
        # The fake vendor listens on the loopback address, which delivery refuses by default.
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
    }
    started_at = time.time()
    worker = subprocess.Popen(
        [sys.executable, "-m", "ensign.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stats = vendor.wait_delivered(count, count, timeout=600)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    total = stats["heap_events"] + stats["mixpanel_updates"]
    busy = stats["last_at"] - stats["first_at"]
    wall = stats["last_at"] - started_at
    print(
        f"  one `ensign worker`: {total} evaluations in {stats['heap_requests']} Heap and "
        f"{stats['mixpanel_requests']} Mixpanel requests, rejected {stats['rejected']}"
    )
    print(
        f"  drain rate: {total / busy:,.0f} evaluations/s from first to last delivery "
        f"({busy:.1f} s); {total / wall:,.0f}/s including the worker's start-up ({wall:.1f} s) "
        "(target: at least 5,000/s per worker)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--evaluations", type=int, default=50_000)
    parser.add_argument("--document", type=Path, default=BENCH_DATA / "env_large.json")
    parser.add_argument("--database-url", default=None, help="drain on this scratch database")
    parser.add_argument("--only", choices=("throughput", "changes", "drain"), default=None)
    parser.add_argument("--pool", type=int, default=2000, help="changes: repeat identities")
    parser.add_argument(
        "--no-experiment",
        dest="experiment",
        action="store_false",
        help="changes: without the running experiment",
    )
    parser.add_argument(
        "--dispatcher",
        choices=("serve", "worker", "none"),
        default="serve",
        help="throughput: deliver from `ensign serve`'s own delivery process (the default), a separate `ensign worker`, "
        "or not at all (the cost of recording alone)",
    )
    args = parser.parse_args()
    if args.only != "drain" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    work = work_directory("integrations")
    vendor = Vendor(work)
    try:
        if args.only in (None, "throughput"):
            throughput(args, work, vendor)
        if args.only in (None, "changes"):
            changes(args, work, vendor)
        if args.only in (None, "drain"):
            drain(args, work, vendor)
    finally:
        vendor.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
