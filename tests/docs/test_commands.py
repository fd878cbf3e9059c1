"""Every shell command of the README and of docs/, run as a reader types it after `make run`.

One real `ensign serve --demo` (what `make run` starts) serves a fresh SQLite file on a free
port. The variables the quick start tells the reader to export are filled from what that server
printed, and the address is rewritten to its port; nothing else in a command is changed. Each
page's commands run in order in one bash, as in the reader's terminal (a variable a page sets is
there for its later commands), from a directory beside the checkout's `scripts/`, with no
`ensign` on PATH. A command passes when it exits 0; `curl` fails on any answer that is not 2xx.
The few commands that cannot run here are listed in NOT_RUN with the reason, and a command that
is neither runnable nor listed fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ensign.cli import app
from tests.conftest import REPO, free_port
from tests.documents import standard_document

pytestmark = pytest.mark.slow

# The order a reader follows: the quick start first, integrations before the pages that use
# them. Every Markdown page of the repository's documentation is here.
PAGES = (
    "README.md",
    "docs/sdks.md",
    "docs/admin-api.md",
    "docs/dashboard.md",
    "docs/configuration.md",
    "docs/integrations.md",
    "docs/destinations.md",
    "docs/destinations/amplitude.md",
    "docs/destinations/segment.md",
    "docs/destinations/rudderstack.md",
    "docs/destinations/webhook.md",
    "docs/experiments.md",
    "docs/events.md",
    "docs/cohorts.md",
    "docs/scaling.md",
    "docs/performance.md",
    "docs/development.md",
    "docs/architecture.md",
    "docs/settings.md",
)

_BENCH = "a long-running benchmark"
_POSTGRES = "needs the production PostgreSQL server the page names"
NOT_RUN: dict[str, dict[str, str]] = {
    "README.md": {
        "make run": "serves until stopped; this test starts the same `ensign serve --demo`",
        "make test": "the whole test suite, this test included",
    },
    "docs/integrations.md": {
        'curl -X POST "$ENSIGN/api/v1/environments/$ENV_KEY/integrations/mixpanel/$MIXPANEL/test/"'
        ' -H "Authorization: Api-Key $ENSIGN_ADMIN_KEY"': "sends a real request to Mixpanel",
        "ENSIGN_DATABASE_URL=postgresql://… scripts/ensign worker": _POSTGRES,
    },
    "docs/scaling.md": {
        "scripts/ensign migrate": _POSTGRES,
        "scripts/ensign serve --host 0.0.0.0 --port 8000 --workers 4": _POSTGRES,
        "scripts/ensign worker": _POSTGRES,
    },
    "docs/performance.md": {
        "scripts/uv run python bench/integrations.py": _BENCH,
        "scripts/uv run python bench/integrations.py --only throughput --dispatcher worker": _BENCH,
        "scripts/uv run python bench/integrations.py --only drain --evaluations 50000": _BENCH,
        "scripts/uv run python bench/integrations.py --only changes": _BENCH,
        "ENSIGN_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/ensign_bench"
        " scripts/uv run python bench/scale.py --duration 5": _BENCH,
        "ENSIGN_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/ensign_bench"
        " scripts/uv run python bench/scale.py --only sizes --duration 10": _BENCH,
        "scripts/uv run python bench/events.py --clients 4 --batch 1000 --duration 10": _BENCH,
        "scripts/uv run python bench/cohorts.py --batch 1000 --batches 10": _BENCH,
        "scripts/uv run python bench/cohorts.py --database-url"
        " postgresql://postgres@127.0.0.1:5432/<scratch db>": _BENCH,
    },
    "docs/development.md": {
        "make check": "ruff and mypy --strict over the whole tree: CI runs it",
        "make fmt": "rewrites the checkout's files; `make check` covers it",
        "make docs": "rewrites the generated pages; tests/unit/test_docs.py checks them",
        "make screenshots": "long-running browser tests that rewrite docs/screenshots",
        "make bench": _BENCH,
        "git clone --depth 1 --branch v3.9.0 https://github.com/Flagsmith/engine-test-data"
        " ../shared/engine-test-data": "downloads from GitHub",
        "scripts/uv run pytest tests/engine": "part of the test suite, which runs it",
    },
}

# What the quick start's exports are filled with: the values `make run` printed.
PRINTED = {
    "<admin API key printed by make run>": "admin_key",
    "<client key printed by make run>": "client_key",
}
ADDRESSES = ("http://localhost:8000", "http://127.0.0.1:8000")
SH_BLOCK = re.compile(r"^( *)```sh\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
PLACEHOLDER = re.compile(r"<[^<>\n]+>")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)


@dataclass(frozen=True)
class Command:
    page: str
    line: str  # continuation lines joined

    @property
    def key(self) -> str:
        """The command without its comment and with its spacing normalised, as NOT_RUN names it."""
        return " ".join(self.line.split(" #")[0].split())

    @property
    def words(self) -> list[str]:
        """The command's words after any leading `NAME=value` assignments."""
        words = shlex.split(self.line, comments=True)
        while words and ASSIGNMENT.fullmatch(words[0]):
            words.pop(0)
        return words


def page_commands(page: str) -> list[Command]:
    commands = []
    for indent, block in SH_BLOCK.findall((REPO / page).read_text(encoding="utf-8")):
        lines = [line.removeprefix(indent) for line in block.splitlines()]
        for raw in "\n".join(lines).replace("\\\n", " ").splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                commands.append(Command(page, line))
    return commands


COMMANDS = [c for page in PAGES for c in page_commands(page)]


def test_pages__every_documentation_page__is_listed() -> None:
    found = {"README.md"} | {str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")}
    assert found == set(PAGES)


def test_commands__found() -> None:
    # Guards the extraction itself: the quick start, an indented block, a joined continuation.
    keys = {c.key for c in COMMANDS}
    assert {"make run", "make test"} <= keys
    assert any(c.page == "docs/destinations/segment.md" for c in COMMANDS)
    assert any(c.line.startswith("curl -X POST") and "-d " in c.line for c in COMMANDS)


def test_not_run__every_entry__is_still_in_its_page() -> None:
    stale = [
        (page, key)
        for page, entries in NOT_RUN.items()
        for key in entries
        if key not in {c.key for c in page_commands(page)}
    ]
    assert stale == []


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.page}:{c.line[:50]}" for c in COMMANDS])
def test_command__uses_what_the_checkout_provides(command: Command) -> None:
    # `ensign` and `uv` are not on a new user's PATH; the checkout's wrappers are.
    assert command.words[:1] not in (["ensign"], ["uv"]), command.line


@pytest.mark.parametrize("page", PAGES)
def test_inline_commands__use_what_the_checkout_provides(page: str) -> None:
    text = SH_BLOCK.sub("", (REPO / page).read_text(encoding="utf-8"))
    spans = re.findall(r"`([^`\n]+)`", text)
    bare = [s for s in spans if s.startswith("uv ") or (s.startswith("ensign ") and "--" in s)]
    assert bare == []


def test_admin_key__one_name_everywhere() -> None:
    # A reader exports ENSIGN_ADMIN_KEY once; a page naming the key otherwise leaves it unset.
    for page in PAGES:
        text = (REPO / page).read_text(encoding="utf-8")
        others = set(re.findall(r"\$\{?([A-Z_]*ADMIN[A-Z_]*)", text)) - {"ENSIGN_ADMIN_KEY"}
        assert others == set(), page


@dataclass(frozen=True)
class Demo:
    url: str
    database_url: str
    admin_key: str
    client_key: str


def _printed(pattern: str, output: str) -> str:
    found = re.search(pattern, output)
    assert found is not None, output
    return found.group(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`ensign serve --demo` on a fresh SQLite file, as `make run` starts it."""
    here = tmp_path_factory.mktemp("server")
    database_url = f"sqlite:///{here / 'ensign.sqlite3'}"
    log_path = here / "server.log"
    port = free_port()
    env = {
        **os.environ,
        "ENSIGN_DATABASE_URL": database_url,
        # The pages' example destinations (hooks.example.com, a RudderStack data plane) stand
        # for the reader's own, and need not resolve here.
        "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
        # Nothing here is delivered to a vendor; one process fewer on a small machine.
        "ENSIGN_DELIVERY_IN_SERVE": "false",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ensign.cli", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, url, log_path)
        output = log_path.read_text()
        yield Demo(
            url=url,
            database_url=database_url,
            admin_key=_printed(r"Admin API key \(shown once\): (\S+)", output),
            client_key=_printed(r"Environment \(client\) key: (\S+)", output),
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 90  # a loaded 2-core machine starts slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ensign serve exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"ensign serve did not start: {log_path.read_text()}")


def _filled(text: str, demo: Demo) -> str:
    for address in ADDRESSES:
        text = text.replace(address, demo.url)
    for placeholder, attribute in PRINTED.items():
        text = text.replace(placeholder, getattr(demo, attribute))
    return text


def quick_start_exports() -> list[Command]:
    """The variables the quick start tells the reader to export, and nothing else."""
    exports = [c for c in page_commands("README.md") if c.line.startswith("export ")]
    names = {c.line.removeprefix("export ").split("=")[0] for c in exports}
    assert names == {"ENSIGN", "ENSIGN_ADMIN_KEY", "ENV_KEY"}
    return exports


def page_script(page: str, demo: Demo) -> tuple[str, list[Command]]:
    """The bash script a reader's terminal runs for `page`, and the commands it runs in order.

    The quick start's exports come first (a reader exports them once); each command is
    announced on stderr, so a failure names it.
    """
    run = [c for c in page_commands(page) if c.key not in NOT_RUN.get(page, {})]
    lines = [
        "set -eo pipefail",
        # Any answer but a 2xx fails the command, as `curl -f` does, with the body shown.
        'curl() { command curl --fail-with-body --silent --show-error --max-time 30 "$@"; }',
    ]
    lines += [_filled(c.line, demo) for c in quick_start_exports()]
    for index, command in enumerate(run):
        lines.append(f"echo '@@command {index}' >&2")
        lines.append(_filled(command.line, demo))
    return "\n".join(lines) + "\n", run


@pytest.fixture(scope="module")
def reader_env(demo: Demo) -> dict[str, str]:
    """A user who has just cloned the repository: no `ensign` on PATH, the demo's database."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if not (Path(p) / "ensign").exists())
    env["ENSIGN_DATABASE_URL"] = demo.database_url
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the reader types: the checkout's `scripts/`, and the Flagsmith export the import
    example reads (standing for the file the reader downloaded from Flagsmith)."""
    here = tmp_path_factory.mktemp("reader")
    (here / "scripts").symlink_to(REPO / "scripts")
    (here / "environment.json").write_bytes(orjson.dumps(standard_document()))
    return here


# The pages run in order against one demo server (a later page uses what an earlier one made),
# so under xdist they stay on one worker (`--dist loadgroup` in scripts/test).
@pytest.mark.xdist_group("demo_server")
@pytest.mark.parametrize("page", PAGES)
def test_page__every_command__runs_against_the_demo(
    page: str, demo: Demo, reader_env: dict[str, str], workdir: Path
) -> None:
    # Given: the page's commands, the quick start's variables filled from the demo's output
    script, commands = page_script(page, demo)
    unknown = [p for c in commands for p in PLACEHOLDER.findall(_filled(c.line, demo))]
    assert unknown == [], f"{page}: fill these only from what `make run` prints: {unknown}"
    # When
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        env=reader_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # Then
    if result.returncode != 0:
        started = re.findall(r"^@@command (\d+)$", result.stderr, re.MULTILINE)
        failed = commands[int(started[-1])].line if started else "(the quick start's exports)"
        pytest.fail(f"{page}: `{failed}` failed\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def test_cli_hints__commands__use_the_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's output on an empty database and on a seeded one (what `make run` prints).
    monkeypatch.setenv("ENSIGN_DATABASE_URL", f"sqlite:///{tmp_path / 'ensign.sqlite3'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    output = runner.invoke(app, ["demo"]).output + runner.invoke(app, ["demo"]).output
    assert "scripts/ensign user set-password" in output
    assert re.findall(r"(?<!scripts/)\bensign [a-z]", output) == []
    assert os.access(REPO / "scripts" / "ensign", os.X_OK)
    # The README quotes this output: the labels a reader looks for there are the printed ones.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for label in ("Admin API key (shown once):", "Environment (client) key:", "Server key:"):
        assert label in output
        assert label in readme
