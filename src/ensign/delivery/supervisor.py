"""`ensign serve`'s delivery process: one `ensign worker` beside the web processes.

Delivery ran as a task of the web process's event loop until it was measured there: claiming
and recording a batch of a thousand rows holds the GIL for milliseconds at a time, and every
identify request waited behind it (identify with both integrations on fell to about half of
its rate with them off, p99 100 ms; with the same work in a separate process, three quarters,
p99 32 ms: `bench/integrations.py --only throughput`). A process of its own also means one
dispatcher whatever `--workers` says, which SQLite needs.

The process is started in a session of its own, so a Ctrl-C at the terminal reaches `serve`
alone, which then stops it (SIGTERM: it finishes and records the batch in flight). If it dies,
it is started again after a pause; if `serve` dies, it notices within a second and stops.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

log = logging.getLogger("ensign.delivery")

# Pauses before starting a process that exited by itself: doubling up to the cap.
RESTART_FIRST_SECONDS = 1.0
RESTART_CAP_SECONDS = 30.0
# A process that ran this long before it died was healthy: the next pause starts again at 1 s.
HEALTHY_SECONDS = 60.0


class DeliveryProcess:
    """Runs `ensign worker --parent <this pid>` until `stop()`, restarting it if it exits."""

    def __init__(
        self,
        *,
        stop_timeout_seconds: float,
    ) -> None:
        self._stop_timeout = stop_timeout_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="ensign-delivery-watch")
        self._watcher.daemon = True
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "ensign.cli", "worker", "--parent", str(os.getpid())],
            start_new_session=True,
        )

    def _watch(self) -> None:
        pause = RESTART_FIRST_SECONDS
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            if time.monotonic() - started > HEALTHY_SECONDS:
                pause = RESTART_FIRST_SECONDS
            mark_dead(process.pid)
            if self._stopping.is_set():
                return
            log.error("delivery process exited (%s); starting it again in %g s", code, pause)
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_CAP_SECONDS)
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = self._spawn()

    def stop(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL if it has not finished its batch in time."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=5)


def mark_dead(pid: int) -> None:
    """Drop a finished process's live gauges from the shared metrics (its counters stay)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
