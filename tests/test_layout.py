"""The source tree's shape: every module short enough to read in one sitting."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ensign"
MAX_LINES = 400
# A migration is never edited once merged, so a long one stays as it was written.
MIGRATIONS = SRC / "storage" / "migrations" / "versions"


def test_modules__in_src__at_most_400_lines_each() -> None:
    lengths = {
        str(path.relative_to(SRC)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(SRC.rglob("*.py"))
        if MIGRATIONS not in path.parents
    }
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_LINES}
    assert not too_long, "split along a seam: " + ", ".join(
        f"{name} ({lines} lines)" for name, lines in too_long.items()
    )
