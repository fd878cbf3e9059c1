"""What `ensign serve` runs: the web app in uvicorn's processes and, when the settings ask for
it, the delivery process beside them (`delivery.supervisor`). Web and delivery never import
each other; this module joins them.

The web app is imported only once the metrics are set up (`shared_metrics`): prometheus_client
chooses between in-process and shared (multiprocess) values when it is first imported.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uvicorn.supervisors.multiprocess import Multiprocess

from ensign import http_protocol
from ensign.delivery.supervisor import DeliveryProcess
from ensign.http_protocol import HeaderDeadlineProtocol
from ensign.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

_log = logging.getLogger("uvicorn.error")

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
        options: dict[str, Any] = {
            "factory": True,
            "host": settings.host,
            "port": settings.port,
            "workers": workers,
            "log_level": "info",
            "access_log": False,
            "http": HeaderDeadlineProtocol,
            "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
        }
        if workers > 1:
            config = uvicorn.Config(APP, **options)
            _Supervisor(config, sockets=[config.bind_socket()]).run()
        else:
            uvicorn.run(APP, **options)
    except _Stopped:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if delivery is not None:
            delivery.stop()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

APP = "ensign.server:create"

# How long a worker may take to answer the supervisor's health check before it is killed and
# replaced. uvicorn's 5 s is shorter than a worker takes to start on a busy machine (it imports
# the whole app first): workers were killed while starting, restarted, and killed again.
WORKER_HEALTHCHECK_SECONDS = 60


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, saying why it replaces a worker; uvicorn says only that
    the worker died, whether it exited, was killed, or was killed for not answering."""

    def init_processes(self) -> None:
        super().init_processes()
        self._close_child_ends()

    def keep_subprocess_alive(self) -> None:
        running = {id(p): p.process.is_alive() for p in self.processes}
        before = list(self.processes)
        started = time.monotonic()
        super().keep_subprocess_alive()
        # Only a check that waited out the timeout can have found a worker not answering.
        waited_out = time.monotonic() - started >= WORKER_HEALTHCHECK_SECONDS
        for process in before:
            if process not in self.processes:
                hung = running[id(process)] and waited_out
                _log_replaced(process.pid, process.exitcode, hung=hung)
        self._close_child_ends()

    def _close_child_ends(self) -> None:
        # uvicorn keeps each worker's end of its health-check pipe open here too, so a worker
        # that dies during a check is waited for the whole timeout. The worker has its own copy
        # once started: with this one closed, its death ends the wait at once.
        for process in self.processes:
            process.child_conn.close()


def _log_replaced(pid: int | None, exitcode: int | None, *, hung: bool) -> None:
    if hung and exitcode == -signal.SIGKILL:  # how uvicorn kills a worker that does not answer
        reason = (
            f"did not answer the health check within {WORKER_HEALTHCHECK_SECONDS} s, "
            "so it was killed (a worker blocked, or a machine too busy to run it)"
        )
    elif exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else ""
        reason = f"was killed by {name or f'signal {-exitcode}'}" + (
            " (by the kernel's out-of-memory killer, or an operator)" if name == "SIGKILL" else ""
        )
    else:
        reason = f"exited with status {exitcode} (see its log lines above)"
    _log.warning("Worker process [%s] %s; starting another.", pid, reason)


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
