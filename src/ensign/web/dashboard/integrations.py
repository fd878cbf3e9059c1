"""Every destination of an environment (one card per kind in `integrations.catalog`):
configuration, delivery counters, recent attempts, and "send test event" (queued for the
dispatcher, whose answer is shown)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ensign.errors import EnsignError, NotFound
from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS, CommonSettings
from ensign.integrations.schema import BOOL
from ensign.services import integration_overview, integrations, test_events
from ensign.services.integration_overview import Destination
from ensign.services.integrations import IntegrationInput
from ensign.web.dashboard import nav
from ensign.web.dashboard.core import DashboardRoute, DashContext, FormErrors, redirect, render

router = APIRouter(route_class=DashboardRoute)

CUSTOM = "custom"
RECENT_ATTEMPTS = 10


def _kind(kind: str) -> str:
    if kind not in SCHEMAS:
        raise NotFound("No such integration.")
    return kind


def _page(
    dash: DashContext,
    env_id: int,
    errors: FormErrors | None = None,
    error_kind: str | None = None,
) -> Response:
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "integrations")
        overview = integration_overview.overview(
            unit,
            dash.user,
            env_id,
            recent_attempts=RECENT_ATTEMPTS,
            unwritten_suppressed=dash.state.identities.suppressed.pending,
        )
    context.update(
        cards=[_card(d) for d in overview.destinations],
        feature_names=overview.feature_names,
        tag_labels=overview.tag_labels,
        event_counts=overview.events.counts,
        event_last_received_at=overview.events.last_received_at,
        unmatched_exposures=overview.events.unmatched[:10],
        errors=errors or FormErrors(),
        error_kind=error_kind,
        form=dash,
        custom=CUSTOM,
    )
    return render(dash, "pages/integrations.html", context, status_code=400 if errors else 200)


def _card(destination: Destination) -> dict[str, Any]:
    schema, config = destination.schema, destination.config
    options = (config.options or {}) if config is not None else {}
    # What the form shows: the configuration's settings, or the defaults for a new one.
    common = CommonSettings.of(config) if config is not None else DEFAULTS
    card: dict[str, Any] = {
        "kind": destination.kind,
        "label": schema.label,
        "schema": schema,
        "key_label": schema.key_label,
        "regions": list(schema.regions),
        "config": config,
        "options": {o.name: options.get(o.name, o.default) for o in schema.options},
        "settings": common,
        "exposures": common.exposures,
        "events": common.events,
    }
    if config is not None:
        card["status"] = destination.status
        card["attempts"] = destination.attempts
    return card


@router.get("/environments/{env_id}/integrations")
def show_integrations(env_id: int, dash: DashContext) -> Response:
    return _page(dash, env_id)


def _input(dash: DashContext, kind: str, errors: FormErrors) -> IntegrationInput:
    schema = SCHEMAS[kind]
    regions = list(schema.regions)
    region = dash.value("region", regions[0] if regions else CUSTOM)
    base_url = dash.value("base_url").strip()
    given = {
        "api_key",
        "enabled",
        "feature_names",
        "tag",
        "region",
        "base_url",
        "deliver",
        "resend_after_hours",
        "exposures",
        "events",
    }
    if region == CUSTOM or not regions:
        if not base_url:
            errors.set("base_url", "Enter the endpoint URL, or pick a region.")
        region_value, url_value = None, base_url
    else:
        region_value, url_value = region, None
    names = [n for n in dash.values("feature_names") if n]
    options: dict[str, object] = {}
    for option in schema.options:
        if option.type == BOOL:
            options[option.name] = dash.value(option.name) == "on"
        elif not option.secret or dash.value(option.name):
            # A secret left blank keeps the one stored (the form never shows it).
            options[option.name] = dash.value(option.name)
    if not schema.key_required and not dash.value("api_key"):
        given.discard("api_key")
    return IntegrationInput(
        api_key=dash.value("api_key"),
        region=region_value,
        base_url=url_value,
        enabled=dash.value("enabled") == "on",
        feature_names=names or None,
        tag=dash.value("tag").strip() or None,
        deliver=dash.value("deliver", DEFAULTS.deliver),
        resend_after_hours=_whole_number(dash.value("resend_after_hours").strip()),
        exposures=dash.value("exposures") == "on",
        events=dash.value("events") == "on",
        options=options,
        given=frozenset(given),
    )


def _whole_number(text: str) -> object:
    """The form's text as an int when it is one; anything else goes to the service as it is,
    which rejects it naming the field. Blank means the default."""
    if not text:
        return DEFAULTS.resend_after_hours
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else text


@router.post("/environments/{env_id}/integrations/{kind}")
def create_integration(env_id: int, kind: str, dash: DashContext) -> Response:
    kind = _kind(kind)
    errors = FormErrors()
    data = _input(dash, kind, errors)
    if not errors:
        try:
            with dash.state.units.write() as unit:
                integrations.create_integration(
                    unit,
                    dash.user,
                    env_id,
                    kind,
                    data,
                    allow_private=dash.state.settings.allow_private_destinations,
                )
        except EnsignError as error:
            errors.add(error, "api_key")
    if errors:
        return _page(dash, env_id, errors, kind)
    dash.flash(f"{SCHEMAS[kind].label} integration added.")
    return redirect(f"/environments/{env_id}/integrations")


@router.post("/environments/{env_id}/integrations/{kind}/{integration_id}")
def update_integration(env_id: int, kind: str, integration_id: int, dash: DashContext) -> Response:
    kind = _kind(kind)
    errors = FormErrors()
    data = _input(dash, kind, errors)
    if not errors:
        try:
            with dash.state.units.write() as unit:
                integrations.update_integration(
                    unit,
                    dash.user,
                    env_id,
                    kind,
                    integration_id,
                    data,
                    allow_private=dash.state.settings.allow_private_destinations,
                )
        except EnsignError as error:
            errors.add(error, "api_key")
    if errors:
        return _page(dash, env_id, errors, kind)
    dash.flash(f"{SCHEMAS[kind].label} integration saved.")
    return redirect(f"/environments/{env_id}/integrations")


@router.post("/environments/{env_id}/integrations/{kind}/{integration_id}/delete")
def delete_integration(env_id: int, kind: str, integration_id: int, dash: DashContext) -> Response:
    kind = _kind(kind)
    with dash.state.units.write() as unit:
        integrations.delete_integration(unit, dash.user, env_id, kind, integration_id)
    dash.flash(f"{SCHEMAS[kind].label} integration removed.")
    return redirect(f"/environments/{env_id}/integrations")


@router.post("/environments/{env_id}/integrations/{kind}/{integration_id}/test")
async def send_test_event(
    env_id: int, kind: str, integration_id: int, dash: DashContext
) -> Response:
    # Async, so that the wait for the vendor's answer holds no worker thread.
    result = await test_events.send_test_event(
        dash.state.units,
        dash.user,
        env_id,
        _kind(kind),
        integration_id,
        wait_seconds=dash.state.settings.test_event_wait,
    )
    return render(dash, "partials/test_event.html", {"result": result})
