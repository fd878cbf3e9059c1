"""What `ensign serve` runs: the web app in uvicorn's processes and, when the settings ask for
it, the delivery process beside them (`delivery.supervisor`). Web and delivery never import
each other; this module joins them.

The web app is imported only once the metrics are set up (`shared_metrics`): prometheus_client
chooses between in-process and shared (multiprocess) values when it is first imported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ensign.delivery.supervisor import DeliveryProcess
from ensign.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def create_app(settings: Settings | None = None) -> FastAPI:
    from ensign.web import app as web

    return web.create_app(settings or Settings())


def create() -> FastAPI:
    """The factory uvicorn imports in each worker process: settings come from the environment."""
    return create_app(Settings())


@contextmanager
def shared_metrics() -> Iterator[None]:
    """`/metrics` of any process of this `serve` (every web worker, the delivery process)
    shows all of them: their values live in files of one fresh directory, summed when read.
    An operator's own PROMETHEUS_MULTIPROC_DIR is used as it is. Enter it before anything
    imports prometheus_client."""
    if os.environ.get(METRICS_DIR_VARIABLE):
        yield
        return
    directory = tempfile.mkdtemp(prefix="ensign-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = directory
    try:
        yield
    finally:
        os.environ.pop(METRICS_DIR_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def serve(settings: Settings, *, workers: int) -> None:
    """Serve the API (and deliver, unless `ENSIGN_DELIVERY_IN_SERVE` is off) until stopped."""
    import uvicorn

    delivery = None
    if settings.delivery_in_serve:
        delivery = DeliveryProcess(stop_timeout_seconds=settings.delivery_timeout_seconds + 5)
        delivery.start()
    try:
        uvicorn.run(
            "ensign.server:create",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="info",
            access_log=False,
        )
    finally:
        if delivery is not None:
            delivery.stop()
