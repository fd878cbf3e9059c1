"""Server benchmark: Ensign against the fastest possible app on the same stack, in one run.

Starts `ensign serve` (one worker, SQLite) with a large document imported, and a minimal
Starlette app on uvicorn that returns a precomputed body of the same size (the "limit").
Loads both with wrk using the same settings, and prints requests per second, p50 and p99,
and Ensign's figures as a fraction of the limit's. Needs `wrk` (Debian package `wrk`).

    uv run python bench/server.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BENCH_DATA = Path(os.environ.get("ENSIGN_BENCH_DATA", REPO.parent / "shared" / "bench-data"))

LIMIT_APP = textwrap.dedent(
    """
    import sys
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    BODY = open(sys.argv[1], "rb").read()
    IDENTITY_BODY = open(sys.argv[2], "rb").read()

    async def flags(request):
        return Response(BODY, media_type="application/json")

    async def identities(request):
        await request.body()
        return Response(IDENTITY_BODY, media_type="application/json")

    app = Starlette(routes=[
        Route("/api/v1/flags/", flags),
        Route("/api/v1/identities/", identities, methods=["POST"]),
        Route("/health", flags),
    ])
    """
)

POST_SCRIPT = textwrap.dedent(
    """
    -- New identifiers in every run and thread: wrk's random numbers start from the same seed
    -- in each, and a repeat identity is a different (cheaper) call.
    local threads = 0
    setup = function(thread)
      threads = threads + 1
      thread:set("thread_id", string.format("%d-%d", os.time(), threads))
    end
    local counter = 0
    request = function()
      counter = counter + 1
      local body = string.format(
        '{"identifier":"bench-%s-%d","traits":[{"trait_key":"plan","trait_value":"gold"},' ..
        '{"trait_key":"signup_days","trait_value":%d},{"trait_key":"locale","trait_value":"en-GB"}]}',
        thread_id, counter, counter % 90)
      return wrk.format("POST", "/api/v1/identities/", {
        ["Content-Type"] = "application/json",
        ["X-Environment-Key"] = "__KEY__"}, body)
    end
    """
)


# Every benchmark's scratch directory: /tmp/ensign-bench-<name>-<pid>-<random>.
WORK_PREFIX = "ensign-bench-"
# A directory without a live owner nothing has written to for this long is left from a run
# killed outright (or from before the owner's pid was in the name).
STALE_SECONDS = 3600


def work_directory(name: str) -> Path:
    """A scratch directory for this run, removed when it ends: normally, on Ctrl-C, or on
    SIGTERM (which ends it as Ctrl-C does, so that its `finally` blocks stop the servers first).
    A run killed outright cannot clean up, so those left by earlier runs are removed first."""
    remove_stale_work()
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{name}-{os.getpid()}-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    return work


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def remove_stale_work() -> None:
    """Remove the scratch directories of benchmark runs that are gone."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        owner = _owner(path.name)
        if owner is not None and _alive(owner):
            continue
        if owner is None and time.time() - _last_write(path) < STALE_SECONDS:
            continue  # perhaps a run of an older version of these scripts, still going
        shutil.rmtree(path, ignore_errors=True)


def _owner(name: str) -> int | None:
    parts = name.removeprefix(WORK_PREFIX).split("-")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _last_write(path: Path) -> float:
    try:
        return max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
    except OSError:
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early: {url}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server did not start: {url}")


def wrk(
    url: str, args: argparse.Namespace, *, key: str | None = None, script: Path | None = None
) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if key:
        command += ["-H", f"X-Environment-Key: {key}"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", output)
        assert match, output
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    total = re.search(r"(\d+) requests in", output)
    return {
        "requests": float(total.group(1)) if total else 0.0,
        "rps": rps,
        "p50": percentile("50"),
        "p99": percentile("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def bench_document(path: Path, work: Path) -> Path:
    """`path`, or a generated document of the same shape in `work` when it is absent."""
    if path.exists():
        return path
    sys.path.insert(0, str(REPO / "bench"))
    from envgen import generate_document  # type: ignore[import-not-found]

    document = work / "generated.json"
    document.write_text(json.dumps(generate_document(seed=1)))
    print(f"{path} absent: using a generated document of the same shape")
    return document


def ensign_cli(*args: str, env: dict[str, str]) -> str:
    """Run an `ensign` command and answer its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "ensign.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def import_environment(document: Path, env: dict[str, str]) -> dict[str, str]:
    """Import `document` as a new project; answers its keys (`environment_key`, ...)."""
    return dict(json.loads(ensign_cli("import", str(document), env=env)))


def start_ensign(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`ensign serve` with one worker process on 127.0.0.1:`port`, once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ensign.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", process)
    except BaseException:
        process.terminate()
        raise
    return process


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--document", type=Path, default=BENCH_DATA / "env_large.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    work = work_directory("server")
    document = bench_document(args.document, work)
    env = {**os.environ, "ENSIGN_DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}"}
    key = import_environment(document, env)["environment_key"]
    ensign_port, limit_port = free_port(), free_port()
    ensign = start_ensign(ensign_port, env)
    limit = None
    try:
        flags_body = httpx.get(
            f"http://127.0.0.1:{ensign_port}/api/v1/flags/", headers={"X-Environment-Key": key}
        ).content
        identity_body = httpx.post(
            f"http://127.0.0.1:{ensign_port}/api/v1/identities/",
            headers={"X-Environment-Key": key},
            json={"identifier": "warmup", "traits": [{"trait_key": "plan", "trait_value": "gold"}]},
        ).content
        (work / "flags.json").write_bytes(flags_body)
        (work / "identity.json").write_bytes(identity_body)
        (work / "limit_app.py").write_text(LIMIT_APP)
        limit = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import sys, uvicorn; sys.argv[1:] = [{str(work / 'flags.json')!r}, {str(work / 'identity.json')!r}]; "
                f"sys.path.insert(0, {str(work)!r}); import limit_app; "
                f"uvicorn.run(limit_app.app, host='127.0.0.1', port={limit_port}, log_level='warning', access_log=False)",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(f"http://127.0.0.1:{limit_port}/health", limit)
        script = work / "post.lua"
        script.write_text(POST_SCRIPT.replace("__KEY__", key))

        print(
            f"document: {document.name}; flags body {len(flags_body)} bytes; wrk -t1 -c{args.connections} -d{args.duration}s"
        )
        results = {}
        results["limit GET"] = wrk(f"http://127.0.0.1:{limit_port}/api/v1/flags/", args)
        results["ensign GET /flags/"] = wrk(
            f"http://127.0.0.1:{ensign_port}/api/v1/flags/", args, key=key
        )
        results["limit POST"] = wrk(
            f"http://127.0.0.1:{limit_port}/api/v1/identities/", args, key=key, script=script
        )
        results["ensign POST /identities/"] = wrk(
            f"http://127.0.0.1:{ensign_port}/api/v1/identities/", args, key=key, script=script
        )

        print(f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for name, r in results.items():
            print(f"{name:28} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors']:8.0f}")
        flags_ratio = results["ensign GET /flags/"]["rps"] / results["limit GET"]["rps"]
        post_ratio = results["ensign POST /identities/"]["rps"] / results["limit POST"]["rps"]
        print(f"GET /flags/ at {flags_ratio:.0%} of the limit (target >= 50%)")
        print(
            f"POST /identities/ at {post_ratio:.0%} of the limit's POST (target >= 15%), "
            f"p99 {results['ensign POST /identities/']['p99']:.1f} ms (target < 25 ms)"
        )
    finally:
        for process in (ensign, limit):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
