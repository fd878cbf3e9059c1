"""A feature's segment overrides in one environment: added, edited, removed and reordered
from the feature's page."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from ensign.errors import EnsignError
from ensign.services.admin import overrides, states
from ensign.services.admin.states import StateChanges
from ensign.services.keys import AdminPrincipal
from ensign.storage.models import FeatureState
from ensign.web.dashboard import forms, nav
from ensign.web.dashboard.core import DashboardRoute, DashContext, FormErrors, redirect
from ensign.web.dashboard.feature_editor import feature_page

router = APIRouter(route_class=DashboardRoute)


@router.post("/environments/{env_id}/features/{feature_id}/segment-overrides")
def add_segment_override(env_id: int, feature_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    segment_text = dash.value("segment")
    if not segment_text.isdigit():
        errors.set("segment", "Choose a segment.")
    value = forms.parse_flag_value(
        errors,
        dash.value("override_value_type", "string"),
        dash.value("override_value"),
        field="override_value",
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    if not errors:
        try:
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                overrides.create_segment_override(
                    session,
                    dash.user,
                    env.api_key,
                    feature_id,
                    segment_id=int(segment_text),
                    enabled=dash.value("override_enabled") == "on",
                    value=value,
                )
        except EnsignError as error:
            errors.add(error, "segment")
    if errors:
        return feature_page(dash, env_id, feature_id, errors)
    dash.flash("Segment override added.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/segment-overrides/{state_id}")
def update_segment_override(
    env_id: int, feature_id: int, state_id: int, dash: DashContext
) -> Response:
    errors = FormErrors()
    field = f"override_{state_id}_value"
    value = forms.parse_flag_value(
        errors,
        dash.value(f"override_{state_id}_value_type", "string"),
        dash.value(field),
        field=field,
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    if not errors:
        with dash.state.units.write() as unit:
            _override(unit.session, dash.user, env_id, feature_id, state_id)
            states.update_feature_state(
                unit,
                dash.user,
                state_id,
                StateChanges(
                    enabled=dash.value(f"override_{state_id}_enabled") == "on",
                    value=value,
                    set_value=True,
                ),
            )
    if errors:
        return feature_page(dash, env_id, feature_id, errors)
    dash.flash("Segment override saved.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


def _override(
    session: Session, principal: AdminPrincipal, env_id: int, feature_id: int, state_id: int
) -> FeatureState:
    env = nav.environment(session, principal, env_id)
    state = states.get_feature_state(session, principal, state_id)
    if state.environment_id != env.id or state.feature_id != feature_id or not state.segment_id:
        raise EnsignError("Not a segment override of this feature here.")
    return state


@router.post("/environments/{env_id}/features/{feature_id}/segment-overrides/{state_id}/delete")
def delete_segment_override(
    env_id: int, feature_id: int, state_id: int, dash: DashContext
) -> Response:
    with dash.state.units.write() as unit:
        _override(unit.session, dash.user, env_id, feature_id, state_id)
        states.delete_feature_state(unit, dash.user, state_id)
    dash.flash("Segment override removed.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/segment-overrides/{state_id}/move")
def move_segment_override(
    env_id: int, feature_id: int, state_id: int, dash: DashContext
) -> Response:
    """Swap an override with its neighbour; priorities are renumbered 0, 1, 2… in order."""
    with dash.state.write() as session:
        _override(session, dash.user, env_id, feature_id, state_id)
        ordered = list(
            overrides.list_segment_overrides(
                session, dash.user, nav.ALL, environment=str(env_id), feature_id=feature_id
            ).items
        )
        ids = [o.id for o in ordered]
        index = ids.index(state_id)
        other = index - 1 if dash.value("direction") == "up" else index + 1
        if 0 <= other < len(ids):
            ids[index], ids[other] = ids[other], ids[index]
            overrides.update_priorities(
                session,
                dash.user,
                [overrides.PriorityChange(i, p) for p, i in enumerate(ids)],
            )
    return redirect(f"/environments/{env_id}/features/{feature_id}")
