"""Running a real dispatcher in a test until a condition holds."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

from ensign.delivery.worker import Dispatcher, DispatchSettings, make_client
from ensign.web.deps import AppState


def deliver(
    state: AppState,
    until: Callable[[], bool],
    *,
    allow_private: bool | None = None,
    resolve: Callable[[str, int], Sequence[str]] | None = None,
) -> None:
    """Run a dispatcher until `until()` holds (at most 15 s). `allow_private` overrides the
    state's destination rule; `resolve` replaces the resolver."""
    settings = dataclasses.replace(
        DispatchSettings.from_settings(state.settings), refresh_interval_seconds=0.05
    )
    if allow_private is not None:
        settings = dataclasses.replace(settings, allow_private_destinations=allow_private)

    async def run() -> None:
        client = (
            make_client(settings) if resolve is None else make_client(settings, resolve=resolve)
        )
        dispatcher = Dispatcher(state.db, client, settings)
        task = asyncio.create_task(dispatcher.run())
        started = time.monotonic()
        try:
            while not until():
                assert time.monotonic() - started < 15, "the condition did not hold in time"
                await asyncio.sleep(0.02)
        finally:
            dispatcher.stop()
            await task
            await client.aclose()

    asyncio.run(run())
