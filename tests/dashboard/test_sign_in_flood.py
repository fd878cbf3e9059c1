"""A flood of wrong passwords against a real `ensign serve` leaves the SDK API's writes as fast
as they were: password checks hold no database lock and wait their turn at low priority, and
the flood soon gets 429s with `Retry-After` (the default limits)."""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ensign.services import accounts
from ensign.services.admin.organisations import create_organisation
from ensign.services.importing import import_document
from ensign.storage.db import Database
from ensign.storage.unit_of_work import Units
from tests.conftest import ServerProcess, free_port
from tests.dashboard.conftest import PASSWORD, csrf_of
from tests.documents import standard_document

pytestmark = pytest.mark.slow

EMAIL = "admin@example.com"
FLOOD_THREADS = 16
MEASURE_SECONDS = 2.5
PACE_SECONDS = 0.02
MAX_SLOWDOWN = 3.0


def flood(url: str, seconds: float, ready: Any, results: Any) -> None:
    """Wrong passwords for one account from many threads until the deadline (run in a process
    of its own, so that the measuring client does not wait for this one's GIL)."""
    statuses: Counter[int] = Counter()
    retry_after: list[str | None] = []
    lock = threading.Lock()
    deadline: list[float] = []
    # The clock starts once every thread holds a form token, however long that took.
    started = threading.Barrier(
        FLOOD_THREADS + 1, action=lambda: deadline.append(time.monotonic() + seconds)
    )

    def guess(thread: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            csrf = csrf_of(client.get("/sign-in").text)
            started.wait()
            attempt = 0
            while time.monotonic() < deadline[0]:
                attempt += 1
                response = client.post(
                    "/sign-in",
                    data={"csrf_token": csrf, "email": EMAIL, "password": f"{thread}-{attempt}"},
                )
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 429:
                        retry_after.append(response.headers.get("retry-after"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(FLOOD_THREADS)]
    for thread in threads:
        thread.start()
    started.wait()
    ready.set()
    for thread in threads:
        thread.join()
    results.put({"statuses": dict(statuses), "retry_after": retry_after})


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    db = Database(database_url)
    with Units(db).write() as unit:
        session = unit.session
        organisation = create_organisation(unit, name="Flood")
        accounts.create_user(
            session, email=EMAIL, password=PASSWORD, organisation_id=organisation.id
        )
        environment_key = import_document(
            session, organisation.id, standard_document()
        ).environment_key
    db.dispose()
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    # Production's Argon2 cost (the other tests hash cheaply): the flood is its password checks.
    process.start(extra_env={"ENSIGN_PASSWORD_HASH_PROFILE": "RFC_9106_LOW_MEMORY"})
    yield process, environment_key
    process.stop()


def _new_identity_seconds(client: httpx.Client) -> float:
    body = {
        "identifier": f"calm-{uuid.uuid4().hex}",
        "traits": [{"trait_key": "plan", "trait_value": "free"}],
    }
    started = time.perf_counter()
    response = client.post("/api/v1/identities/", json=body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def _p50_over(client: httpx.Client, seconds: float) -> float:
    """The median new-identity latency of requests sent at a steady pace for `seconds`, as
    an app would send them."""
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(_new_identity_seconds(client))
        time.sleep(PACE_SECONDS)
    return statistics.median(samples)


def test_sign_in_flood__sdk_writes_keep_their_latency__flood_gets_429s(
    served: tuple[ServerProcess, str],
) -> None:
    server, environment_key = served
    sdk = httpx.Client(
        base_url=server.url, headers={"X-Environment-Key": environment_key}, timeout=60
    )
    _p50_over(sdk, 0.5)  # warm up

    # Given: the SDK API's new-identity latency with nothing else going on
    quiet_before = _p50_over(sdk, MEASURE_SECONDS)

    # When: wrong passwords flood the sign-in form from many threads meanwhile
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    flooding = context.Process(
        target=flood, args=(server.url, MEASURE_SECONDS + 0.2, ready, results)
    )
    flooding.start()
    try:
        assert ready.wait(60), "the flood did not start"
        time.sleep(0.1)
        under_flood = _p50_over(sdk, MEASURE_SECONDS)
        outcome = results.get(timeout=120)
    finally:
        flooding.join(30)
        if flooding.is_alive():
            flooding.kill()
    # The machine's own load drifts (tests share it): the slower quiet run is the baseline.
    quiet = max(quiet_before, _p50_over(sdk, MEASURE_SECONDS))
    sdk.close()

    # Then: the SDK path is not slowed beyond noise, and the flood was turned away
    assert under_flood <= MAX_SLOWDOWN * quiet, (
        f"new-identity p50 {under_flood * 1000:.1f} ms under the flood, "
        f"{quiet * 1000:.1f} ms without; flood answers {outcome['statuses']}"
    )
    statuses = outcome["statuses"]
    assert set(statuses) <= {400, 429}, statuses
    assert statuses.get(400, 0) <= 10  # the default limit per account
    assert statuses.get(429, 0) > 0
    assert all(value is not None and int(value) > 0 for value in outcome["retry_after"])
