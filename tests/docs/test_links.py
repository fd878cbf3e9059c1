"""Every link between the README and the pages of docs/ leads somewhere: the file exists, and
so does the heading its `#anchor` names (as GitHub derives anchors from headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^ *```.*?^ *```", re.DOTALL | re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def local_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_links__each__leads_to_an_existing_file_and_heading(page: Path) -> None:
    broken = []
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        exists = destination.exists()
        missing_heading = (
            exists and anchor and destination.suffix == ".md" and anchor not in anchors(destination)
        )
        if not exists or missing_heading:
            broken.append(target)
    assert broken == []


def test_links__found() -> None:
    # Guards the pattern: the README links every topic page.
    readme = local_links(REPO / "README.md")
    assert "docs/sdks.md" in readme
    assert "docs/performance.md" in readme
