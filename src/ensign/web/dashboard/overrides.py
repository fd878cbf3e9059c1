"""A feature's segment overrides in one environment: added, edited, removed and reordered
from the feature's page."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.errors import EnsignError
from ensign.services.admin import overrides
from ensign.services.admin.states import StateChanges
from ensign.web.dashboard import forms
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
            with dash.state.units.write() as unit:
                overrides.create_segment_override(
                    unit,
                    dash.user,
                    env_id,
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
            overrides.update_segment_override(
                unit,
                dash.user,
                env_id,
                feature_id,
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


@router.post("/environments/{env_id}/features/{feature_id}/segment-overrides/{state_id}/delete")
def delete_segment_override(
    env_id: int, feature_id: int, state_id: int, dash: DashContext
) -> Response:
    with dash.state.units.write() as unit:
        overrides.delete_segment_override(unit, dash.user, env_id, feature_id, state_id)
    dash.flash("Segment override removed.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/segment-overrides/{state_id}/move")
def move_segment_override(
    env_id: int, feature_id: int, state_id: int, dash: DashContext
) -> Response:
    """Swap an override with its neighbour; priorities are renumbered 0, 1, 2… in order."""
    with dash.state.units.write() as unit:
        overrides.move_segment_override(
            unit, dash.user, env_id, feature_id, state_id, dash.value("direction")
        )
    return redirect(f"/environments/{env_id}/features/{feature_id}")
