"""Dashboard forms and query strings refuse NUL characters with a 400 page (issue 14, item 3)."""

from __future__ import annotations

from sqlalchemy import func, select

from ensign.storage.models import Project
from ensign.web.deps import AppState
from tests.dashboard.conftest import Browser, Seeded
from tests.units import unit_session


def test_form__nul__400_page_and_nothing_stored(signed_in: Browser, state: AppState) -> None:
    response = signed_in.post("/projects", {"name": "Sh\x00op"})
    assert response.status_code == 400
    assert "name: must not contain NUL characters" in response.text
    with state.units.read() as unit, unit_session(unit) as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0


def test_query__nul__400_page(signed_in: Browser, seeded: Seeded) -> None:
    response = signed_in.get(f"/environments/{seeded.environment_id}/identities?q=a%00b")
    assert response.status_code == 400
    assert "q: must not contain NUL characters" in response.text
