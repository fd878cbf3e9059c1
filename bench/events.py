"""Events benchmark: how fast one `ensign serve` takes the SDKs' event batches, and how fast
one `ensign worker` delivers them, in one run.

1. Accepted. One `ensign serve` (one worker process, SQLite, delivery off so that it only
   records) with a Heap and a Mixpanel integration that send events. `--clients` concurrent
   clients post batches of `--batch` distinct custom events (as the SDKs send them:
   `{"events": [...]}`, epoch-millisecond timestamps) for `--duration` seconds; prints events
   accepted per second (target: at least 20,000).
2. Delivered. One `ensign worker` then works through everything recorded (to Heap's bulk
   track and Mixpanel's /track on a fast local fake vendor) until nothing waits; prints events
   delivered per second (each event counts once per vendor). More than
   `ENSIGN_OUTBOX_MAX_BACKLOG` (100,000) waiting per integration is over the backlog cap: the
   worker gives the oldest up, as it would in production, and the run reports how many, from
   each integration's delivery counts, rather than waiting for them.

    scripts/uv run python bench/events.py [--clients 4] [--batch 1000] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
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
    bench_document,
    ensign_cli,
    free_port,
    import_environment,
    start_ensign,
    wait_for,
    work_directory,
)

VENDOR_APP = textwrap.dedent(
    """
    import time
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    import orjson

    STATS = {"heap": 0, "mixpanel": 0, "rejected": 0, "first_at": None, "last_at": None}

    def seen(kind, count):
        now = time.time()
        STATS["first_at"] = STATS["first_at"] or now
        STATS["last_at"] = now
        STATS[kind] += count

    # Cheap checks (tests/fakes validates every field): this shares the machine.
    async def track(request):
        body = await request.body()
        events = body.count(b'"idempotency_key":')
        if not body.startswith(b'{"app_id":') or not 1 <= events <= 1000:
            STATS["rejected"] += 1
            return Response("Bad request", status_code=400)
        seen("heap", events)
        return Response(b"")

    async def mp_track(request):
        body = await request.body()
        events = body.count(b'"$insert_id":')
        if not body.startswith(b'[{"event":') or not 1 <= events <= 2000:
            STATS["rejected"] += 1
            return Response(b'{"status":0,"error":"bad"}', media_type="application/json")
        seen("mixpanel", events)
        return Response(b'{"status":1,"error":null}', media_type="application/json")

    async def stats(request):
        return Response(orjson.dumps(STATS), media_type="application/json")

    app = Starlette(routes=[
        Route("/api/track", track, methods=["POST"]),
        Route("/track", mp_track, methods=["POST"]),
        Route("/stats", stats),
    ])
    """
)


def start_vendor(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (work / "events_vendor.py").write_text(VENDOR_APP)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, uvicorn; sys.path.insert(0, {str(work)!r}); import events_vendor; "
            f"uvicorn.run(events_vendor.app, host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False)",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/stats", process)
    return process, url


def batch_body(client: int, number: int, size: int) -> bytes:
    now = int(time.time() * 1000)
    run = uuid.uuid4().hex[:8]
    return orjson.dumps(
        {
            "events": [
                {
                    "event": "purchase",
                    "feature_name": None,
                    "identifier": f"user-{client}-{i % 500}",
                    "value": str(i),
                    "traits": None,
                    "metadata": {"sdk_version": "6.3.0", "batch": f"{run}-{number}"},
                    "timestamp": now,
                }
                for i in range(size)
            ]
        }
    )


async def load(url: str, key: str, args: argparse.Namespace) -> tuple[int, int, float]:
    """Post batches from `args.clients` clients for `args.duration` seconds; answers (events
    accepted, requests refused, seconds)."""
    accepted = refused = 0
    deadline = time.monotonic() + args.duration
    headers = {"X-Environment-Key": key, "Content-Type": "application/json; charset=utf-8"}

    async def client(number: int) -> None:
        nonlocal accepted, refused
        async with httpx.AsyncClient(timeout=30) as http:
            sent = 0
            while time.monotonic() < deadline:
                body = batch_body(number, sent, args.batch)
                sent += 1
                response = await http.post(f"{url}/api/v1/events", content=body, headers=headers)
                if response.status_code == 202:
                    accepted += int(response.json()["accepted"])
                else:
                    refused += 1

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(args.clients)))
    return accepted, refused, time.monotonic() - started


# The whole delivery phase may take this long; past it the run stops and says where it was.
DRAIN_SECONDS = 600


def drain(deliveries: list[str], headers: dict[str, str], accepted: int) -> list[dict[str, Any]]:
    """Wait until every integration has settled what was accepted (delivered, failed or given
    up over the backlog cap) and nothing waits; answers each one's delivery counts."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        counts = [httpx.get(url, headers=headers).json() for url in deliveries]
        if all(
            c["delivered"] + c["failed"] + c["given_up"] >= accepted
            and c["pending"] + c["retrying"] == 0
            for c in counts
        ):
            return counts
        if time.monotonic() > deadline:
            raise SystemExit(f"not settled in {DRAIN_SECONDS} s: {counts}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--document", type=Path, default=BENCH_DATA / "env_small.json")
    args = parser.parse_args()
    work = work_directory("events")
    vendor, vendor_url = start_vendor(work)
    env = {
        **os.environ,
        "ENSIGN_DATABASE_URL": f"sqlite:///{work / 'events.sqlite3'}",
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
        "ENSIGN_DELIVERY_IN_SERVE": "false",
        "ENSIGN_DELIVERY_POLL_INTERVAL_SECONDS": "0.1",
        # It measures the server, from one key: the key's rate limit (5,000 a second) would be
        # the number measured.
        "ENSIGN_EVENTS_PER_SECOND": "0",
    }
    server: subprocess.Popen[bytes] | None = None
    try:
        keys = import_environment(bench_document(args.document, work), env)
        admin = ensign_cli("api-key", "create", "--name", "bench", env=env).strip().split()[-1]
        port = free_port()
        server = start_ensign(port, env)
        url = f"http://127.0.0.1:{port}"
        integrations = f"{url}/api/v1/environments/{keys['environment_key']}/integrations"
        admin_headers = {"Authorization": f"Api-Key {admin}"}
        deliveries = []
        for kind in ("heap", "mixpanel"):
            response = httpx.post(
                f"{integrations}/{kind}/",
                headers=admin_headers,
                json={"api_key": f"{kind}-key", "base_url": vendor_url, "events": True},
            )
            response.raise_for_status()
            deliveries.append(f"{integrations}/{kind}/{response.json()['id']}/deliveries/")
        time.sleep(1)  # the snapshot follows the new integrations
        accepted, refused, seconds = asyncio.run(load(url, keys["server_key"], args))
        print(
            f"accepted: {accepted:,} events in {seconds:.1f} s from {args.clients} clients "
            f"posting batches of {args.batch}: {accepted / seconds:,.0f} events/s "
            f"(refused requests: {refused}; target: at least 20,000/s)"
        )
        started_at = time.time()
        worker = subprocess.Popen(
            [sys.executable, "-m", "ensign.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            counts = drain(deliveries, admin_headers, accepted)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        stats: dict[str, Any] = httpx.get(f"{vendor_url}/stats").json()
        total = stats["heap"] + stats["mixpanel"]
        given_up = sum(c["given_up"] for c in counts)
        failed = sum(c["failed"] for c in counts)
        delivered = " and ".join(format(c["delivered"], ",") for c in counts)
        print(
            f"settled: of {accepted:,} events accepted, per integration, delivered "
            f"{delivered} (Heap, Mixpanel); "
            f"given up over the backlog cap: {given_up:,}; failed: {failed:,}"
        )
        if total and stats["first_at"] is not None:
            busy = max(stats["last_at"] - stats["first_at"], 1e-3)
            print(
                f"delivered: {total:,} events by one `ensign worker`: {total / busy:,.0f} "
                f"events/s from first to last delivery ({busy:.1f} s); "
                f"{total / (stats['last_at'] - started_at):,.0f}/s counting its start-up; "
                f"rejected by the vendor: {stats['rejected']}"
            )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        vendor.terminate()
        vendor.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
