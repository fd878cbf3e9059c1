"""What `ensign serve` runs: the web app, with the delivery dispatcher beside it when the
settings ask for it. Web and delivery never import each other; this module joins them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ensign.delivery.running import start_dispatcher
from ensign.settings import Settings
from ensign.web import app as web
from ensign.web.deps import AppState


@asynccontextmanager
async def dispatching(state: AppState) -> AsyncIterator[None]:
    """Deliver recorded evaluations for as long as the app runs."""
    dispatcher = start_dispatcher(state.settings, state.db)
    try:
        yield
    finally:
        await dispatcher.aclose()


def create_app(settings: Settings | None = None, *, state: AppState | None = None) -> FastAPI:
    settings = settings or (state.settings if state else Settings())
    companion = dispatching if settings.delivery_in_serve else None
    return web.create_app(settings, state=state, companion=companion)


def create() -> FastAPI:
    """The factory uvicorn imports in each worker process: settings come from the environment."""
    return create_app(Settings())
