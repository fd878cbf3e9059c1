"""Features of an environment: the list with toggles, search and tag filter, and a new
feature's form. One feature's page is `feature_editor`; its segment overrides, `overrides`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from ensign.errors import EnsignError
from ensign.services.admin import features, states
from ensign.services.admin import tags as admin_tags
from ensign.services.admin.states import StateChanges
from ensign.services.keys import AdminPrincipal
from ensign.services.values import FlagValue, decode_flag_value
from ensign.storage.models import Environment, FeatureState
from ensign.web.dashboard import forms, nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    is_htmx,
    redirect,
    render,
)
from ensign.web.dashboard.projects import check_name

router = APIRouter(route_class=DashboardRoute)


def state_value(state: FeatureState) -> FlagValue:
    return decode_flag_value(state.value_type, state.value_text)


def _rows(
    session: Session, principal: AdminPrincipal, env: Environment, search: str, tag_id: int | None
) -> list[dict[str, Any]]:
    found = features.list_features(
        session,
        principal,
        env.project_id,
        nav.ALL,
        search=search or None,
        tag_ids=[tag_id] if tag_id else (),
    ).items
    defaults = {
        s.feature_id: s
        for s in states.list_environment_states(session, principal, env.api_key, nav.ALL).items
    }
    rows = []
    for feature in found:
        state = defaults.get(feature.id)
        if state is None:
            continue
        value = state_value(state)
        rows.append(
            {
                "feature": feature,
                "state": state,
                "value": value,
                "pretty": forms.pretty_json(value),
            }
        )
    return rows


def _list_page(dash: DashContext, env_id: int, errors: FormErrors, status: int = 200) -> Response:
    search = dash.request.query_params.get("q", "").strip()
    tag_text = dash.request.query_params.get("tag", "")
    tag_id = int(tag_text) if tag_text.isdigit() else None
    with dash.state.units.read() as unit:
        session = unit.session
        context = nav.environment_context(session, dash.user, env_id, "features")
        env = context["environment"]
        rows = _rows(session, dash.user, env, search, tag_id)
        tags = admin_tags.list_tags(session, dash.user, env.project_id, nav.ALL).items
        context.update(
            rows=rows,
            tags=tags,
            search=search,
            tag_id=tag_id,
            errors=errors,
            form=dash,
            value_types=forms.VALUE_TYPES,
        )
        template = "partials/feature_list.html" if is_htmx(dash.request) else "pages/features.html"
        return render(dash, template, context, status_code=status)


@router.get("/environments/{env_id}/features")
def list_features(env_id: int, dash: DashContext) -> Response:
    return _list_page(dash, env_id, FormErrors())


@router.post("/environments/{env_id}/features")
def create_feature(env_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("name"))
    if name and any(c.isspace() for c in name):
        errors.set("name", "Feature names cannot contain spaces.")
    kind = dash.value("value_type", "string")
    value = forms.parse_flag_value(
        errors, kind, dash.value("value"), max_bytes=dash.state.settings.max_flag_value_bytes
    )
    tag_ids = [int(t) for t in dash.values("tags") if t.isdigit()]
    if not errors:
        try:
            with dash.state.units.write() as unit:
                features.create_feature_with_value(
                    unit,
                    dash.user,
                    env_id,
                    name=name,
                    value=value,
                    # The typed value, as text, for environments made later.
                    initial_value=forms.value_text(value) if value is not None else None,
                    description=dash.value("description").strip() or None,
                    default_enabled=dash.value("enabled") == "on",
                    tag_ids=tag_ids,
                )
        except EnsignError as error:
            errors.add(error, "name")
    if errors:
        return _list_page(dash, env_id, errors, 400)
    dash.flash(f"Feature {name!r} created.")
    return redirect(f"/environments/{env_id}/features")


@router.post("/environments/{env_id}/features/{feature_id}/toggle")
def toggle_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    enabled = dash.value("enabled") == "true"
    with dash.state.units.write() as unit:
        states.update_default_state(
            unit, dash.user, env_id, feature_id, StateChanges(enabled=enabled)
        )
    if not is_htmx(dash.request):
        return redirect(f"/environments/{env_id}/features")
    with dash.state.units.read() as unit:
        session = unit.session
        env = nav.environment(session, dash.user, env_id)
        feature = features.get_environment_feature(session, dash.user, env_id, feature_id)
        state = states.default_state(session, dash.user, env_id, feature_id)
        value = state_value(state)
        row = {
            "feature": feature,
            "state": state,
            "value": value,
            "pretty": forms.pretty_json(value),
        }
        return render(dash, "partials/feature_row.html", {"row": row, "environment": env})
