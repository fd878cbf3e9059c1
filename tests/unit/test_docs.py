from __future__ import annotations

from pathlib import Path

from ensign.cli.docs import destinations_page, settings_page
from ensign.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
DESTINATIONS = DOCS.with_name("destinations.md")


def test_settings_reference__matches_code__regenerate_with_make_docs() -> None:
    assert DOCS.read_text() == settings_page(), "docs/settings.md is stale: run `make docs`"


def test_every_setting__has_a_description() -> None:
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_destinations_reference__matches_the_catalog__regenerate_with_make_docs() -> None:
    assert DESTINATIONS.read_text() == destinations_page(), (
        "docs/destinations.md is stale: run `make docs`"
    )
