"""Identities: search, traits, the flags the SDK would give them and why, identity overrides."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.errors import EnsignError
from ensign.services import explanations
from ensign.services.admin import features, identities, overrides
from ensign.services.admin.states import StateChanges
from ensign.services.values import decode_flag_value, decode_trait_value
from ensign.storage.pagination import Window
from ensign.web.dashboard import forms, nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    is_htmx,
    redirect,
    render,
)

router = APIRouter(route_class=DashboardRoute)

PAGE_SIZE = 50


def _list_page(dash: DashContext, env_id: int, errors: FormErrors, status: int = 200) -> Response:
    search = dash.request.query_params.get("q", "").strip()
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "identities")
        page = identities.list_identities(
            unit.session,
            dash.user,
            context["environment"].api_key,
            Window(0, PAGE_SIZE),
            search=search or None,
        )
        context.update(identities=page.items, count=page.count, search=search, errors=errors)
        template = (
            "partials/identity_list.html" if is_htmx(dash.request) else "pages/identities.html"
        )
        return render(dash, template, context, status_code=status)


@router.get("/environments/{env_id}/identities")
def list_identities(env_id: int, dash: DashContext) -> Response:
    return _list_page(dash, env_id, FormErrors())


@router.post("/environments/{env_id}/identities")
def create_identity(env_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    identifier = dash.value("identifier").strip()
    if not identifier:
        errors.set("identifier", "Enter an identifier.")
    elif len(identifier) > dash.state.settings.max_identifier_length:
        errors.set("identifier", "Too long.")
    if not errors:
        try:
            with dash.state.units.write() as unit:
                env = nav.environment(unit.session, dash.user, env_id)
                identity = identities.create_identity(
                    unit, dash.user, env.api_key, identifier=identifier
                )
                identity_id = identity.id
        except EnsignError as error:
            errors.add(error, "identifier")
    if errors:
        return _list_page(dash, env_id, errors, 400)
    return redirect(f"/environments/{env_id}/identities/{identity_id}")


def _identity_page(
    dash: DashContext, env_id: int, identity_id: int, errors: FormErrors | None = None
) -> Response:
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "identities")
        env = context["environment"]
        identity = identities.get_identity(unit.session, dash.user, env.api_key, identity_id)
        traits = list(identities.list_traits(unit.session, dash.user, env.api_key, identity_id))
        trait_values = {t.key: decode_trait_value(t.value_type, t.value_text) for t in traits}
        override_states = overrides.list_identity_overrides(
            unit.session, dash.user, env.api_key, identity_id, nav.ALL
        ).items
        all_features = features.list_features(
            unit.session, dash.user, env.project_id, nav.ALL
        ).items
        names = {f.id: f.name for f in all_features}
        context.update(
            identity=identity,
            traits=[(t, trait_values[t.key]) for t in traits],
            overrides=[
                {
                    "state": s,
                    "feature": names.get(s.feature_id, "?"),
                    "value": decode_flag_value(s.value_type, s.value_text),
                    "value_type": forms.value_type_of(
                        decode_flag_value(s.value_type, s.value_text)
                    ),
                }
                for s in override_states
            ],
            free_features=[
                f for f in all_features if f.id not in {s.feature_id for s in override_states}
            ],
            value_types=forms.VALUE_TYPES,
            errors=errors or FormErrors(),
            form=dash,
        )
        snapshot = dash.state.cache.for_id(env_id)
        context["flags"] = (
            []
            if snapshot is None
            else explanations.explain_identity_flags(
                snapshot,
                identifier=identity.identifier,
                identity_id=identity.id,
                traits=trait_values,
            )
        )
        return render(dash, "pages/identity.html", context, status_code=400 if errors else 200)


@router.get("/environments/{env_id}/identities/{identity_id}")
def show_identity(env_id: int, identity_id: int, dash: DashContext) -> Response:
    return _identity_page(dash, env_id, identity_id)


@router.post("/environments/{env_id}/identities/{identity_id}/traits")
def set_trait(env_id: int, identity_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    key = dash.value("trait_key").strip()
    if not key:
        errors.set("trait_key", "Enter a trait key.")
    elif len(key) > dash.state.settings.max_trait_key_length:
        errors.set("trait_key", "Too long.")
    value = forms.parse_trait_value(
        errors, dash.value("trait_value"), kind=dash.value("trait_type")
    )
    if isinstance(value, str) and len(value) > dash.state.settings.max_trait_value_length:
        errors.set("trait_value", "Too long.")
    if not errors:
        try:
            with dash.state.units.write() as unit:
                env = nav.environment(unit.session, dash.user, env_id)
                identities.set_trait(
                    unit, dash.user, env.api_key, identity_id, key=key, value=value
                )
        except EnsignError as error:
            errors.add(error, "trait_value")
    if errors:
        return _identity_page(dash, env_id, identity_id, errors)
    dash.flash(f"Trait {key!r} saved.")
    return redirect(f"/environments/{env_id}/identities/{identity_id}")


@router.post("/environments/{env_id}/identities/{identity_id}/traits/{trait_id}/delete")
def delete_trait(env_id: int, identity_id: int, trait_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        env = nav.environment(unit.session, dash.user, env_id)
        identities.delete_trait(unit, dash.user, env.api_key, identity_id, trait_id)
    dash.flash("Trait deleted.")
    return redirect(f"/environments/{env_id}/identities/{identity_id}")


@router.post("/environments/{env_id}/identities/{identity_id}/overrides")
def add_override(env_id: int, identity_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    feature_text = dash.value("feature")
    if not feature_text.isdigit():
        errors.set("feature", "Choose a feature.")
    value = forms.parse_flag_value(
        errors,
        dash.value("value_type", "string"),
        dash.value("value"),
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    if not errors:
        try:
            with dash.state.units.write() as unit:
                overrides.create_identity_override(
                    unit,
                    dash.user,
                    env_id,
                    identity_id,
                    feature_id=int(feature_text),
                    enabled=dash.value("enabled") == "on",
                    value=value,
                )
        except EnsignError as error:
            errors.add(error, "feature")
    if errors:
        return _identity_page(dash, env_id, identity_id, errors)
    dash.flash("Identity override added.")
    return redirect(f"/environments/{env_id}/identities/{identity_id}")


def _check_override(dash: DashContext, env_id: int, identity_id: int, state_id: int) -> None:
    with dash.state.units.read() as unit:
        overrides.get_identity_override(unit.session, dash.user, env_id, identity_id, state_id)


@router.post("/environments/{env_id}/identities/{identity_id}/overrides/{state_id}")
def update_override(env_id: int, identity_id: int, state_id: int, dash: DashContext) -> Response:
    _check_override(dash, env_id, identity_id, state_id)
    errors = FormErrors()
    field = f"override_{state_id}_value"
    value = forms.parse_flag_value(
        errors,
        dash.value(f"override_{state_id}_value_type", "string"),
        dash.value(field),
        field=field,
        max_bytes=dash.state.settings.max_flag_value_bytes,
    )
    if errors:
        return _identity_page(dash, env_id, identity_id, errors)
    with dash.state.units.write() as unit:
        overrides.update_identity_override(
            unit,
            dash.user,
            env_id,
            identity_id,
            state_id,
            StateChanges(
                enabled=dash.value(f"override_{state_id}_enabled") == "on",
                value=value,
                set_value=True,
            ),
        )
    dash.flash("Identity override saved.")
    return redirect(f"/environments/{env_id}/identities/{identity_id}")


@router.post("/environments/{env_id}/identities/{identity_id}/overrides/{state_id}/delete")
def delete_override(env_id: int, identity_id: int, state_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        overrides.delete_identity_override(unit, dash.user, env_id, identity_id, state_id)
    dash.flash("Identity override removed.")
    return redirect(f"/environments/{env_id}/identities/{identity_id}")


@router.post("/environments/{env_id}/identities/{identity_id}/delete")
def delete_identity(env_id: int, identity_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        env = nav.environment(unit.session, dash.user, env_id)
        identities.delete_identity(unit, dash.user, env.api_key, identity_id)
    dash.flash("Identity deleted.")
    return redirect(f"/environments/{env_id}/identities")
