"""`ensign serve`'s delivery process: one `ensign worker` beside the web process, started
again when it dies, and never outliving `serve`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port, wait_for
from tests.fakes.fixtures import Connector, Env, Served

pytestmark = pytest.mark.slow


def delivery_processes(serve_pid: int) -> list[int]:
    """The `ensign worker --parent` processes started by `serve_pid`."""
    # Listed under the thread that started each (serve's watcher thread starts a replacement).
    children = [
        child
        for task in Path(f"/proc/{serve_pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    found = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"worker" in command and b"--parent" in command:
            found.append(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; its parent has not collected it yet


def identify(served: ServerProcess, env: Env, identifier: str) -> None:
    response = httpx.post(
        f"{served.api_url}identities/",
        headers={"X-Environment-Key": env.client_key},
        json={"identifier": identifier},
    )
    assert response.status_code == 200, response.text


def test_delivery_process__killed__started_again_and_delivers(
    served: ServerProcess, connect: Connector, env: Env, vendors: Served
) -> None:
    # Given a Heap integration, and serve's one delivery process
    connect(env.client_key, "heap", api_key="heap-key", base_url=vendors.heap_url)
    assert served.process is not None
    wait_for(lambda: len(delivery_processes(served.process.pid)) == 1)
    (first,) = delivery_processes(served.process.pid)

    # When it is killed outright, and identify calls go on
    os.kill(first, signal.SIGKILL)
    for i in range(5):
        identify(served, env, f"after-kill-{i}")

    # Then serve starts another, which delivers them
    wait_for(
        lambda: [p for p in delivery_processes(served.process.pid) if p != first],
        timeout=30,
    )
    wait_for(lambda: len({e["identity"] for e in vendors.heap.events}) == 5)
    assert len(delivery_processes(served.process.pid)) == 1
    # And its deliveries count in serve's /metrics
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'ensign_delivery_evaluations_total{kind="heap",outcome="delivered"} 5.0' in metrics


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_serve__stopped_or_killed__its_delivery_process_and_metrics_files_go_too(
    served: ServerProcess, how: signal.Signals
) -> None:
    assert served.process is not None
    serve_pid = served.process.pid
    wait_for(lambda: len(delivery_processes(serve_pid)) == 1)
    (delivery,) = delivery_processes(serve_pid)
    assert metrics_directories(served)

    served.process.send_signal(how)
    code = served.process.wait(timeout=20)

    wait_for(lambda: not alive(delivery), timeout=10)
    if how is signal.SIGTERM:
        assert code == 0
        assert metrics_directories(served, serve_pid) == []
    else:
        # Left behind by the killed process: the next `serve` removes them.
        assert metrics_directories(served, serve_pid)
        served.start()
        assert metrics_directories(served, serve_pid) == []


def metrics_directories(served: ServerProcess, serve_pid: int | None = None) -> list[Path]:
    if serve_pid is None:
        assert served.process is not None
        serve_pid = served.process.pid
    return list(served.tmp_dir.glob(f"ensign-metrics-{serve_pid}-*"))


def test_serve__delivery_off__no_delivery_process(database_url: str, tmp_path: Path) -> None:
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    process.start(extra_env={"ENSIGN_DELIVERY_IN_SERVE": "false"})
    try:
        assert process.process is not None
        # `serve` starts its delivery process before it serves: there would be one by now.
        assert delivery_processes(process.process.pid) == []
    finally:
        process.stop()
