"""Running the dispatcher: inside `ensign serve`'s event loop, or as `ensign worker`."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from ensign.delivery.worker import Dispatcher, DispatchSettings, make_client
from ensign.settings import Settings
from ensign.storage.db import Database


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
    """Start delivering in the running event loop (used by `ensign serve`'s lifespan)."""
    return RunningDispatcher(db, DispatchSettings.from_settings(settings))


async def run_worker(settings: Settings, db: Database) -> None:
    """`ensign worker`: deliver until SIGINT or SIGTERM, then finish the batch in flight."""
    running = start_dispatcher(settings, db)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, running.dispatcher.stop)
    try:
        await running.task
    finally:
        await running.aclose()
