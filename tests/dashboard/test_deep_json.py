"""JSON nested thousands deep in a dashboard form field or a stored flag value: a form error or
the value as text, never a 500 (issue 22)."""

from __future__ import annotations

from sqlalchemy import select

from ensign.services.importing import import_document
from ensign.storage.models import Segment
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.dashboard.conftest import Browser, Seeded
from tests.documents import feature_state, standard_document
from tests.units import unit_session


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_dashboard__deep_json_traits__form_error_not_500(
    signed_in: Browser, seeded: Seeded, state: AppState
) -> None:
    with state.units.read() as unit, unit_session(unit) as session:
        segment_id = session.scalars(
            select(Segment.id).where(Segment.project_id == seeded.project_id)
        ).first()
    response = signed_in.post(
        f"/environments/{seeded.environment_id}/segments/{segment_id}/test",
        {"identifier": "u1", "traits": deep_object(5000)},
    )
    assert response.status_code == 200
    assert response.context["errors"].get("traits")


def test_dashboard__flag_value_of_deep_json_text__page_shows_it(
    signed_in: Browser, state: AppState, organisation: Organisation
) -> None:
    value = deep(5000)
    document = standard_document()
    document["feature_states"].append(feature_state(6, "deep", value=value, django_id=16))
    with state.units.write() as unit, unit_session(unit) as session:
        result = import_document(session, organisation.id, document)
    page = signed_in.get(f"/environments/{result.environment_id}/features")
    assert page.status_code == 200
    assert value[:50] in page.text
