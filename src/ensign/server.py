"""What `ensign serve` runs: the web app in uvicorn's processes and, when the settings ask for
it, the delivery process beside them (`delivery.supervisor`). Web and delivery never import
each other; this module joins them.

The web app is imported only once the metrics are set up (`shared_metrics`): prometheus_client
chooses between in-process and shared (multiprocess) values when it is first imported.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ensign import http_protocol
from ensign.delivery.supervisor import DeliveryProcess
from ensign.http_protocol import HeaderDeadlineProtocol
from ensign.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_PREFIX = "ensign-metrics-"


def create() -> FastAPI:
    """The factory uvicorn imports in each worker process: settings come from the environment."""
    from ensign.web import app as web

    settings = Settings()
    http_protocol.configure(settings.header_timeout_seconds)
    return web.create_app(settings)


@contextmanager
def shared_metrics() -> Iterator[None]:
    """`/metrics` of any process of this `serve` (every web worker, the delivery process)
    shows all of them: their values live in files of one fresh directory, summed when read.
    An operator's own PROMETHEUS_MULTIPROC_DIR is used as it is. Enter it before anything
    imports prometheus_client."""
    if os.environ.get(METRICS_DIR_VARIABLE):
        yield
        return
    _remove_orphaned_metrics()
    directory = tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
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
    # uvicorn shuts down gracefully on SIGINT or SIGTERM, then raises the signal again for the
    # handler it found: ours ends `serve` here (exit 0), after the delivery process and the
    # metrics directory, rather than the default handler killing the process before them.
    previous = {number: signal.signal(number, _stopped) for number in _STOP_SIGNALS}
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="info",
            access_log=False,
            http=HeaderDeadlineProtocol,
        )
    except _Stopped:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if delivery is not None:
            delivery.stop()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

APP = "ensign.server:create"


class _Stopped(Exception):
    """A stop signal, once uvicorn has shut down for it."""


def _stopped(_number: int, _frame: object) -> None:
    raise _Stopped


def _remove_orphaned_metrics() -> None:
    """Remove the metrics directories of `serve` processes that were killed (SIGKILL leaves
    theirs behind): the directory is named for its process, which no longer exists."""
    for directory in Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = directory.name.removeprefix(METRICS_DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
