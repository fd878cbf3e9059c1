"""One feature's page: the value editor, variants and weights, tags and description, and
deleting the feature. Its segment overrides are posted to `overrides`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.errors import EnsignError
from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import CommonSettings
from ensign.services import integrations
from ensign.services.admin import experiments, features, options, overrides, segments, states
from ensign.services.admin import tags as admin_tags
from ensign.services.admin.states import Allocation, StateChanges
from ensign.web.dashboard import forms, nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)
from ensign.web.dashboard.features import state_value

router = APIRouter(route_class=DashboardRoute)


def feature_page(
    dash: DashContext, env_id: int, feature_id: int, errors: FormErrors | None = None
) -> Response:
    with dash.state.units.read() as unit:
        session = unit.session
        context = nav.environment_context(session, dash.user, env_id, "features")
        env = context["environment"]
        feature = features.get_feature(session, dash.user, env.project_id, feature_id)
        state = states.default_state(session, dash.user, env_id, feature_id)
        value = state_value(state)
        weights = {mv.option_id: mv.percentage_allocation for mv in state.mv_values}
        seg_overrides = overrides.list_segment_overrides(
            session, dash.user, nav.ALL, environment=str(env.id), feature_id=feature.id
        ).items
        all_segments = segments.list_segments(session, dash.user, env.project_id, nav.ALL).items
        names = {s.id: s.name for s in all_segments}
        used = {o.segment_id for o in seg_overrides}
        feature_experiments = [
            e
            for e in experiments.list_experiments(session, dash.user, env.api_key, nav.ALL).items
            if e.feature_id == feature.id
        ]
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
            experiments=feature_experiments,
            experiment_running=any(e.running for e in feature_experiments),
            # Named from what is configured: the destinations an experiment's exposures reach.
            exposure_destinations=[
                schema.label
                for kind, schema in SCHEMAS.items()
                if any(
                    CommonSettings.of(config).sends_exposures
                    for config in integrations.list_integrations(unit, dash.user, env.api_key, kind)
                )
            ],
            value_types=forms.VALUE_TYPES,
            errors=errors or FormErrors(),
            form=dash,
        )
        return render(dash, "pages/feature.html", context, status_code=400 if errors else 200)


@router.get("/environments/{env_id}/features/{feature_id}")
def show_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    return feature_page(dash, env_id, feature_id)


@router.post("/environments/{env_id}/features/{feature_id}/state")
def update_state(env_id: int, feature_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    value = forms.parse_flag_value(
        errors,
        dash.value("value_type", "string"),
        dash.value("value"),
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    with dash.state.units.read() as unit:
        feature = features.get_environment_feature(unit.session, dash.user, env_id, feature_id)
        option_ids = [o.id for o in feature.options]
    allocations = [
        Allocation(i, forms.parse_weight(errors, dash.value(f"weight_{i}"), f"weight_{i}"))
        for i in option_ids
    ]
    if sum(a.percentage for a in allocations) > 100:
        errors.set("weights", "The variants' weights add up to more than 100%.")
    if not errors:
        try:
            with dash.state.units.write() as unit:
                states.update_default_state(
                    unit,
                    dash.user,
                    env_id,
                    feature_id,
                    StateChanges(
                        enabled=dash.value("enabled") == "on",
                        value=value,
                        set_value=True,
                        allocations=allocations if option_ids else None,
                    ),
                )
        except EnsignError as error:
            errors.add(error, "value")
            # The API's name for the weights (refused while an experiment runs) is this form's
            # "weights".
            if "multivariate_feature_state_values" in errors.fields:
                errors.set("weights", errors.fields.pop("multivariate_feature_state_values"))
    if errors:
        return feature_page(dash, env_id, feature_id, errors)
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
            with dash.state.units.write() as unit:
                features.update_feature_in_environment(
                    unit,
                    dash.user,
                    env_id,
                    feature_id,
                    {"description": description or None, "tags": tag_ids},
                )
        except EnsignError as error:
            errors.add(error, "description")
    if errors:
        return feature_page(dash, env_id, feature_id, errors)
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
            with dash.state.units.write() as unit:
                options.create_option_in_environment(
                    unit,
                    dash.user,
                    env_id,
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
        return feature_page(dash, env_id, feature_id, errors)
    dash.flash("Variant added.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.post("/environments/{env_id}/features/{feature_id}/options/{option_id}/delete")
def delete_option(env_id: int, feature_id: int, option_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        options.delete_option_in_environment(unit, dash.user, env_id, feature_id, option_id)
    dash.flash("Variant deleted.")
    return redirect(f"/environments/{env_id}/features/{feature_id}")


@router.get("/environments/{env_id}/features/{feature_id}/delete")
def confirm_delete_feature(env_id: int, feature_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        feature = features.get_environment_feature(unit.session, dash.user, env_id, feature_id)
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
    with dash.state.units.write() as unit:
        features.delete_feature_in_environment(unit, dash.user, env_id, feature_id)
    dash.flash("Feature deleted.")
    return redirect(f"/environments/{env_id}/features")
