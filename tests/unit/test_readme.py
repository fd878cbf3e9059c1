"""The README's shell commands, typed as a user types them after `make run`.

Each command of each ```sh block runs with bash from a fresh directory beside the checkout's
`scripts/`, against its own SQLite file holding the demo that `make run` seeds, with no `ensign`
on PATH (and `uv` only where the machine has it), so only commands that work as written pass.
Commands that need a running server or run for long are skipped, each with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ensign.cli import app
from tests.conftest import REPO
from tests.documents import standard_document

README = REPO / "README.md"
WRAPPER = REPO / "scripts" / "ensign"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
PLACEHOLDER = re.compile(r"<[^<>\n]+>")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)

MAKE_TARGETS_SKIPPED = {
    "run": "serves until stopped",
    "test": "the whole test suite, this test included",
    "check": "long-running: ruff and mypy --strict over the whole tree",
    "fmt": "rewrites the checkout's files; `make check` covers it",
    "docs": "rewrites docs/settings.md and docs/destinations.md; tests/unit/test_docs.py checks them",
    "screenshots": "long-running browser tests that rewrite docs/screenshots",
    "bench": "long-running benchmarks",
}


@dataclass(frozen=True)
class Command:
    line: str  # continuation lines joined
    prelude: tuple[str, ...]  # the variables its block set before it

    @property
    def words(self) -> list[str]:
        """The command's words after any leading `NAME=value` assignments."""
        words = shlex.split(self.line, comments=True)
        while words and ASSIGNMENT.fullmatch(words[0]):
            words.pop(0)
        return words

    @property
    def script(self) -> str:
        return "\n".join(("set -e", *self.prelude, self.line))


def _is_assignment(line: str) -> bool:
    words = shlex.split(line, comments=True)
    if words[:1] == ["export"]:
        words = words[1:]
    return bool(words) and all(ASSIGNMENT.fullmatch(w) for w in words)


def readme_commands() -> list[Command]:
    commands = []
    for block in SH_BLOCK.findall(README.read_text(encoding="utf-8")):
        prelude: list[str] = []
        joined = block.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if _is_assignment(line):
                prelude.append(line)
            else:
                commands.append(Command(line, tuple(prelude)))
    return commands


def skip_reason(command: Command) -> str | None:
    words = command.words
    if words[0] == "make":
        target = words[1] if len(words) > 1 else ""
        reason = MAKE_TARGETS_SKIPPED.get(target.split("-")[0])
        assert reason is not None, f"say how to test `make {target}` in this module"
        return reason
    if words[0] == "curl":
        return "needs a running server"
    if "postgresql://" in command.script:
        return "needs the PostgreSQL server it names"
    if words[:1] == ["scripts/ensign"] and words[1] in ("serve", "worker"):
        return "runs until stopped"
    if words[:3] == ["scripts/uv", "run", "python"] and words[3].startswith("bench/"):
        return "long-running benchmark"
    return None


COMMANDS = readme_commands()


def test_readme__commands__found() -> None:
    # Guards the extraction itself: the quick start and the import example are among them.
    lines = [c.line for c in COMMANDS]
    assert any(line.startswith("make run") for line in lines)
    assert any(line.startswith("scripts/ensign import environment.json") for line in lines)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.line[:60] for c in COMMANDS])
def test_readme__command__uses_what_the_checkout_provides(command: Command) -> None:
    # `ensign` and `uv` are not on a new user's PATH; the checkout's wrappers are.
    assert command.words[0] not in ("ensign", "uv"), command.line


def test_readme__inline_commands__use_what_the_checkout_provides() -> None:
    spans = re.findall(r"`([^`\n]+)`", SH_BLOCK.sub("", README.read_text(encoding="utf-8")))
    bare = [s for s in spans if s.startswith("uv ") or (s.startswith("ensign ") and "--" in s)]
    assert bare == []


@pytest.fixture(scope="module")
def user_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a user who has just cloned the repository: no `ensign` on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if not (Path(p) / "ensign").exists())
    env.pop("ENSIGN_DATABASE_URL", None)
    return env


def workspace(root: Path) -> Path:
    """A directory to type commands in, with the checkout's `scripts/` as the README assumes."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scripts").symlink_to(REPO / "scripts")
    return root


@dataclass(frozen=True)
class Demo:
    database: Path
    client_key: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, user_env: dict[str, str]) -> Demo:
    """A database as `make run` leaves it: migrated, the demo seeded."""
    here = workspace(tmp_path_factory.mktemp("demo") / "work")
    database = here / "ensign.sqlite3"
    result = subprocess.run(
        ["scripts/ensign", "demo"],
        cwd=here,
        env={**user_env, "ENSIGN_DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    key = re.search(r"Environment \(client\) key: (\S+)", result.stdout)
    assert key is not None, result.stdout
    return Demo(database, key.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[c.line[:60] for c in COMMANDS])
def test_readme__command__exits_0(
    command: Command, demo: Demo, user_env: dict[str, str], tmp_path: Path
) -> None:
    reason = skip_reason(command)
    if reason is not None:
        pytest.skip(reason)
    # Given: a fresh copy of the demo database, and the Flagsmith export the import example reads.
    here = workspace(tmp_path / "work")
    database = here / "ensign.sqlite3"
    shutil.copy(demo.database, database)
    (here / "environment.json").write_text(json.dumps(standard_document()))
    values = {"<environment key>": demo.client_key}
    script = PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), command.script)
    unknown = PLACEHOLDER.findall(script)
    assert unknown == [], f"give this test a value for {unknown}"
    # When
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=here,
        env={**user_env, "ENSIGN_DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then
    assert result.returncode == 0, f"{command.line}\n{result.stdout}\n{result.stderr}"


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
    assert os.access(WRAPPER, os.X_OK)
