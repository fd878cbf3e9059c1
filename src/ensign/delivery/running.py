"""Running the dispatcher: `ensign worker`, standalone or as `ensign serve`'s delivery process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from ensign.delivery.worker import Dispatcher, DispatchSettings, make_client
from ensign.settings import Settings
from ensign.storage.db import Database

# How often `ensign serve`'s delivery process checks that `serve` is still there.
PARENT_CHECK_SECONDS = 0.5


class RunningDispatcher:
    """A dispatcher running as a task of the current event loop, with its own client."""

    def __init__(self, db: Database, settings: DispatchSettings) -> None:
        self.client = make_client(settings)
        self.dispatcher = Dispatcher(db, self.client, settings)
        self.task = asyncio.create_task(self.dispatcher.run(), name="ensign-delivery")

    async def aclose(self) -> None:
        self.dispatcher.stop()
        await asyncio.wait([self.task], timeout=self.dispatcher.settings.timeout_seconds + 5)
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.client.aclose()


def start_dispatcher(settings: Settings, db: Database) -> RunningDispatcher:
    """Start delivering in the running event loop."""
    return RunningDispatcher(db, DispatchSettings.from_settings(settings))


async def run_worker(settings: Settings, db: Database, *, parent: int | None = None) -> None:
    """`ensign worker`: deliver until SIGINT or SIGTERM, then finish the batch in flight.
    With `parent` (`ensign serve`'s delivery process), also stop once that process is gone:
    a `serve` killed outright must not leave a dispatcher behind."""
    running = start_dispatcher(settings, db)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, running.dispatcher.stop)
    watch = None if parent is None else asyncio.create_task(_stop_without(parent, running))
    try:
        await running.task
    finally:
        if watch is not None:
            watch.cancel()
        await running.aclose()


async def _stop_without(parent: int, running: RunningDispatcher) -> None:
    # An orphan is adopted by another process: its parent id changes.
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    running.dispatcher.stop()
