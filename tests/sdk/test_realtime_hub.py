"""The realtime hub on a real database: what a listener hears, when, and the connection limit.

The streams themselves, over HTTP with the official SDK, are in tests/e2e/test_realtime.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import orjson
import pytest
from fastapi.testclient import TestClient
from flagsmith.mappers import (
    map_environment_document_to_environment_updated_at,
    map_sse_event_to_stream_event,
)
from hypothesis import given
from hypothesis import strategies as st
from sseclient import Event

from ensign.errors import AtCapacity
from ensign.services.documents import isoformat
from ensign.services.realtime import Listener, RealtimeHub
from ensign.storage.environments import touch_environments
from ensign.web.deps import AppState
from ensign.web.sdk.stream import event
from tests.conftest import Organisation
from tests.sdk.conftest import Env
from tests.units import unit_session


async def heard(listener: Listener, timeout: float = 2.0) -> float | None:
    """The next value the listener is told, or None when it is ended."""
    async with asyncio.timeout(timeout):
        while listener.pending is None and not listener.closed:
            listener.wake.clear()
            await listener.wake.wait()
    value, listener.pending = listener.pending, None
    return value


def change(state: AppState, env: Env) -> None:
    """An admin change as every write makes it: bump the revision, then check the cache."""
    with state.units.write() as unit, unit_session(unit) as session:
        touch_environments(session, environment_ids=[env.environment_id])


def test_hub__change_committed_in_this_process__listener_told_new_updated_at_then_again(
    state: AppState, make_env: Callable[..., Env]
) -> None:
    env = make_env()

    async def scenario() -> None:
        hub = RealtimeHub(state.cache, max_connections=10, repeat_after_seconds=0.3)
        hub.start()
        before = state.cache.for_key(env.client_key)
        assert before is not None
        listener = hub.subscribe(before)
        # On connect: the document's current `updated_at`.
        assert await heard(listener) == before.updated_at.timestamp()

        await asyncio.to_thread(change, state, env)

        told = await heard(listener, timeout=1.0)
        after = state.cache.cached(env.environment_id)
        assert after is not None
        assert told == after.updated_at.timestamp() > before.updated_at.timestamp()
        # Once more, for an SDK whose re-fetch reached a process that had not seen it yet.
        assert await heard(listener, timeout=1.0) == told
        hub.close()
        assert await heard(listener) is None
        assert listener.closed

    asyncio.run(scenario())


def test_hub__environment_deleted_in_this_process__its_listeners_ended(
    state: AppState, make_env: Callable[..., Env], client: TestClient, organisation: Organisation
) -> None:
    env = make_env()

    async def scenario() -> None:
        hub = RealtimeHub(state.cache, max_connections=10, repeat_after_seconds=1)
        hub.start()
        snapshot = state.cache.for_key(env.client_key)
        assert snapshot is not None
        listener = hub.subscribe(snapshot)
        await heard(listener)

        deleted = await asyncio.to_thread(
            client.delete, f"/api/v1/environments/{env.client_key}/", headers=organisation.headers
        )
        assert deleted.status_code == 204

        # The stream ends; an SDK reconnecting then learns that the environment is gone.
        assert await heard(listener) is None
        hub.unsubscribe(listener)
        assert hub.connections == 0

    asyncio.run(scenario())


def test_hub__more_listeners_than_the_limit__refused_until_one_leaves(
    state: AppState, make_env: Callable[..., Env]
) -> None:
    env = make_env()

    async def scenario() -> None:
        hub = RealtimeHub(state.cache, max_connections=2, repeat_after_seconds=1)
        hub.start()
        snapshot = state.cache.for_key(env.client_key)
        assert snapshot is not None
        first, _ = hub.subscribe(snapshot), hub.subscribe(snapshot)
        with pytest.raises(AtCapacity) as refused:
            hub.subscribe(snapshot)
        assert refused.value.retry_after_seconds > 0
        hub.unsubscribe(first)
        hub.unsubscribe(first)  # twice: counted once
        hub.subscribe(snapshot)
        assert hub.connections == 2

    asyncio.run(scenario())


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(dt.UTC),
    )
)
def test_event__read_by_the_official_sdk__equals_the_documents_updated_at(
    moment: dt.datetime,
) -> None:
    # The SDK re-fetches when the event's time is later than its document's: equal must
    # compare equal, or every connect would re-fetch (or a change could be missed).
    raw = event(moment.timestamp())
    assert raw.startswith(b"event: environment_updated\ndata: ") and raw.endswith(b"\n\n")
    data = raw.split(b"data: ", 1)[1].strip()
    streamed = map_sse_event_to_stream_event(Event(data=data.decode()))["updated_at"]
    document = {"updated_at": isoformat(moment)}
    assert streamed == map_environment_document_to_environment_updated_at(document) == moment
    assert orjson.loads(data) == {"updated_at": moment.timestamp()}
