"""The factory uvicorn imports in each worker process: settings come from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from ensign.settings import Settings
from ensign.web.app import create_app


def create() -> FastAPI:
    return create_app(Settings())
