"""Features of an environment: the list with toggles, search and tag filter; the value
editor, variants and weights, tags and description; segment overrides in priority order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from ensign.errors import EnsignError
from ensign.services.admin import features, overrides, segments, states
from ensign.services.admin import tags as admin_tags
from ensign.services.admin.states import Allocation, StateChanges
from ensign.services.keys import AdminPrincipal
from ensign.services.values import FlagValue, decode_flag_value
from ensign.storage.models import Environment, FeatureState
from ensign.web.dashboard import forms, nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    is_htmx,
    reading,
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
    with reading(dash.state) as session:
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
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                feature = features.create_feature(
                    session,
                    dash.user,
                    env.project_id,
                    name=name,
                    description=dash.value("description").strip() or None,
                    initial_value=forms.value_text(value) if value is not None else None,
                    default_enabled=dash.value("enabled") == "on",
                    tag_ids=tag_ids,
                )
                # The typed value, exactly as chosen, for this environment's default.
                state = states.list_environment_states(
                    session, dash.user, env.api_key, nav.ALL, feature_id=feature.id
                ).items[0]
                states.apply_changes(session, state, StateChanges(value=value, set_value=True))
        except EnsignError as error:
            errors.add(error, "name")
    if errors:
        return _list_page(dash, env_id, errors, 400)
    dash.flash(f"Feature {name!r} created.")
    return redirect(f"/environments/{env_id}/features")


@router.post("/environments/{env_id}/features/{feature_id}/toggle")
def toggle_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    enabled = dash.value("enabled") == "true"
    with dash.state.write() as session:
        env = nav.environment(session, dash.user, env_id)
        state = _default_state(session, dash.user, env, feature_id)
        states.update_environment_state(
            session, dash.user, env.api_key, state.id, StateChanges(enabled=enabled)
        )
    if not is_htmx(dash.request):
        return redirect(f"/environments/{env_id}/features")
    with reading(dash.state) as session:
        env = nav.environment(session, dash.user, env_id)
        feature = features.get_feature(session, dash.user, env.project_id, feature_id)
        state = _default_state(session, dash.user, env, feature_id)
        value = state_value(state)
        row = {
            "feature": feature,
            "state": state,
            "value": value,
            "pretty": forms.pretty_json(value),
        }
        return render(dash, "partials/feature_row.html", {"row": row, "environment": env})


def _default_state(
    session: Session, principal: AdminPrincipal, env: Environment, feature_id: int
) -> FeatureState:
    found = states.list_environment_states(
        session, principal, env.api_key, nav.ALL, feature_id=feature_id
    ).items
    if not found:
        features.get_feature(session, principal, env.project_id, feature_id)
    return found[0]


# --- one feature ----------------------------------------------------------------------------


def _feature_page(
    dash: DashContext, env_id: int, feature_id: int, errors: FormErrors | None = None
) -> Response:
    with reading(dash.state) as session:
        context = nav.environment_context(session, dash.user, env_id, "features")
        env = context["environment"]
        feature = features.get_feature(session, dash.user, env.project_id, feature_id)
        state = _default_state(session, dash.user, env, feature_id)
        value = state_value(state)
        weights = {mv.option_id: mv.percentage_allocation for mv in state.mv_values}
        seg_overrides = overrides.list_segment_overrides(
            session, dash.user, nav.ALL, environment=str(env.id), feature_id=feature.id
        ).items
        all_segments = segments.list_segments(session, dash.user, env.project_id, nav.ALL).items
        names = {s.id: s.name for s in all_segments}
        used = {o.segment_id for o in seg_overrides}
        context.update(
            feature=feature,
            state=state,
            value=value,
            value_type=forms.value_type_of(value),
            value_text=forms.value_text(value),
            pretty=forms.pretty_json(value),
            weights=weights,
            options=[
                {
                    "option": o,
                    "value": features.option_snapshot(o)["value"],
                    "weight": weights.get(o.id, 0.0),
                }
                for o in feature.options
            ],
            total_weight=sum(weights.values()),
            tags=admin_tags.list_tags(session, dash.user, env.project_id, nav.ALL).items,
            feature_tag_ids={t.id for t in feature.tags},
            overrides=[
                {
                    "state": o,
                    "segment": names.get(o.segment_id or 0, "?"),
                    "value": state_value(o),
                    "value_type": forms.value_type_of(state_value(o)),
                }
                for o in seg_overrides
            ],
            free_segments=[
                s
                for s in all_segments
                if s.id not in used and (s.feature_id is None or s.feature_id == feature.id)
            ],
            value_types=forms.VALUE_TYPES,
            errors=errors or FormErrors(),
            form=dash,
        )
        return render(dash, "pages/feature.html", context, status_code=400 if errors else 200)


@router.get("/environments/{env_id}/features/{feature_id}")
def show_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    return _feature_page(dash, env_id, feature_id)


@router.post("/environments/{env_id}/features/{feature_id}/state")
def update_state(env_id: int, feature_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    value = forms.parse_flag_value(
        errors,
        dash.value("value_type", "string"),
        dash.value("value"),
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    with reading(dash.state) as session:
        env = nav.environment(session, dash.user, env_id)
        feature = features.get_feature(session, dash.user, env.project_id, feature_id)
        option_ids = [o.id for o in feature.options]
    allocations = [
        Allocation(i, forms.parse_weight(errors, dash.value(f"weight_{i}"), f"weight_{i}"))
        for i in option_ids
    ]
    if sum(a.percentage for a in allocations) > 100:
        errors.set("weights", "The variants' weights add up to more than 100%.")
    if not errors:
        try:
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                state = _default_state(session, dash.user, env, feature_id)
                states.update_environment_state(
                    session,
                    dash.user,
                    env.api_key,
                    state.id,
                    StateChanges(
                        enabled=dash.value("enabled") == "on",
                        value=value,
                        set_value=True,
                        allocations=allocations if option_ids else None,
                    ),
                )
        except EnsignError as error:
            errors.add(error, "value")
    if errors:
        return _feature_page(dash, env_id, feature_id, errors)
    dash.flash("Saved; SDKs get the new value now.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/settings")
def update_settings(env_id: int, feature_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    tag_ids = [int(t) for t in dash.values("tags") if t.isdigit()]
    description = dash.value("description").strip()
    if len(description) > 20_000:
        errors.set("description", "At most 20,000 characters.")
    if not errors:
        try:
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                features.update_feature(
                    session,
                    dash.user,
                    env.project_id,
                    feature_id,
                    {"description": description or None, "tags": tag_ids},
                )
        except EnsignError as error:
            errors.add(error, "description")
    if errors:
        return _feature_page(dash, env_id, feature_id, errors)
    dash.flash("Description and tags saved.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/options")
def add_option(env_id: int, feature_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    value = forms.parse_flag_value(
        errors,
        dash.value("option_value_type", "string"),
        dash.value("option_value"),
        field="option_value",
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    weight = forms.parse_weight(errors, dash.value("option_weight"), "option_weight")
    key = dash.value("option_key").strip() or None
    if not errors:
        try:
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                features.create_option(
                    session,
                    dash.user,
                    env.project_id,
                    feature_id,
                    value=value,
                    key=key,
                    default_percentage_allocation=weight,
                )
        except EnsignError as error:
            errors.add(error, "option_weight")
            errors.fields.setdefault(
                "option_weight", errors.fields.pop("default_percentage_allocation", "")
            )
    if errors:
        return _feature_page(dash, env_id, feature_id, errors)
    dash.flash("Variant added.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/options/{option_id}/delete")
def delete_option(env_id: int, feature_id: int, option_id: int, dash: DashContext) -> Response:
    with dash.state.write() as session:
        env = nav.environment(session, dash.user, env_id)
        features.delete_option(session, dash.user, env.project_id, feature_id, option_id)
    dash.flash("Variant deleted.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.get("/environments/{env_id}/features/{feature_id}/delete")
def confirm_delete_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    with reading(dash.state) as session:
        env = nav.environment(session, dash.user, env_id)
        feature = features.get_feature(session, dash.user, env.project_id, feature_id)
        return render(
            dash,
            "pages/confirm.html",
            {
                "title": f"Delete feature {feature.name!r}?",
                "message": "It is removed from every environment of the project, with its "
                "overrides. SDKs stop receiving it at once.",
                "action": f"/environments/{env_id}/features/{feature_id}/delete",
                "cancel": f"/environments/{env_id}/features/{feature_id}",
            },
        )


@router.post("/environments/{env_id}/features/{feature_id}/delete")
def delete_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    with dash.state.write() as session:
        env = nav.environment(session, dash.user, env_id)
        features.delete_feature(session, dash.user, env.project_id, feature_id)
    dash.flash("Feature deleted.")
    return redirect(f"/environments/{env_id}/features")


# --- segment overrides ----------------------------------------------------------------------


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
        return _feature_page(dash, env_id, feature_id, errors)
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
        with dash.state.write() as session:
            _override(session, dash.user, env_id, feature_id, state_id)
            states.update_feature_state(
                session,
                dash.user,
                state_id,
                StateChanges(
                    enabled=dash.value(f"override_{state_id}_enabled") == "on",
                    value=value,
                    set_value=True,
                ),
            )
    if errors:
        return _feature_page(dash, env_id, feature_id, errors)
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
    with dash.state.write() as session:
        _override(session, dash.user, env_id, feature_id, state_id)
        states.delete_feature_state(session, dash.user, state_id)
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
