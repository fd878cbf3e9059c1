"""The integrations page's overview: every destination of the catalog, with its state."""

from __future__ import annotations

import re

from ensign.integrations.catalog import SCHEMAS
from tests.dashboard.conftest import Browser, Seeded


def _overview(html: str) -> str:
    found = re.search(r'<nav class="card" aria-label="Destinations".*?</nav>', html, re.S)
    assert found is not None, "no destinations overview"
    return found.group(0)


def test_integrations__overview__every_destination_and_its_state(
    signed_in: Browser, seeded: Seeded
) -> None:
    env = seeded.environment_id
    # Given Heap configured (a form without `enabled` saves it paused)
    saved = signed_in.post(
        f"/environments/{env}/integrations/heap", {"api_key": "123", "region": "eu"}
    )
    assert saved.status_code in (200, 303), saved.text

    overview = _overview(signed_in.get(f"/environments/{env}/integrations").text)

    # Then every destination is listed, linking to its card; only Heap is set up
    for schema in SCHEMAS.values():
        assert f'<a href="#integration-{schema.kind}">{schema.label}</a>' in overview
    rows = re.findall(r"<tr[^>]*><td><a[^>]*>([^<]+)</a></td>\s*<td>(.*?)</td>", overview, re.S)
    states = {label: ("Not set up" not in state) for label, state in rows}
    assert states == {s.label: s.kind == "heap" for s in SCHEMAS.values()}
    assert "Paused" in dict(rows)["Heap"]
