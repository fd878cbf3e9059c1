"""Every destination of an environment (one card per kind in `integrations.catalog`):
configuration, delivery counters, recent attempts, and "send test event" (queued for the
dispatcher, whose answer is shown)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response

from ensign.errors import EnsignError, NotFound
from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS, CommonSettings
from ensign.integrations.schema import BOOL
from ensign.services import events, integrations, test_events
from ensign.services.admin import features, tags
from ensign.services.integrations import IntegrationInput
from ensign.web.dashboard import nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    reading,
    redirect,
    render,
)

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
    with reading(dash.state) as session:
        context = nav.environment_context(session, dash.user, env_id, "integrations")
        env = context["environment"]
        cards: list[dict[str, Any]] = []
        for kind, schema in SCHEMAS.items():
            configs = integrations.list_integrations(session, dash.user, env.api_key, kind)
            config = configs[0] if configs else None
            options = (config.options or {}) if config is not None else {}
            # What the form shows: the configuration's settings, or the defaults for a new one.
            common = CommonSettings.of(config) if config is not None else DEFAULTS
            card: dict[str, Any] = {
                "kind": kind,
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
                card["status"] = integrations.delivery_status(
                    session,
                    dash.user,
                    env.api_key,
                    kind,
                    config.id,
                    unwritten_suppressed=dash.state.identities.suppressed.pending,
                )
                card["attempts"] = integrations.delivery_attempts(
                    session,
                    dash.user,
                    env.api_key,
                    kind,
                    config.id,
                    offset=0,
                    limit=RECENT_ATTEMPTS,
                )[0]
            cards.append(card)
        event_status = events.event_status(session, dash.user, env.api_key)
        context.update(
            cards=cards,
            feature_names=[
                f.name
                for f in features.list_features(session, dash.user, env.project_id, nav.ALL).items
            ],
            tag_labels=[
                t.label for t in tags.list_tags(session, dash.user, env.project_id, nav.ALL).items
            ],
            event_counts=event_status.counts,
            event_last_received_at=event_status.last_received_at,
            unmatched_exposures=event_status.unmatched[:10],
            errors=errors or FormErrors(),
            error_kind=error_kind,
            form=dash,
            custom=CUSTOM,
        )
        return render(dash, "pages/integrations.html", context, status_code=400 if errors else 200)


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
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                integrations.create_integration(
                    session,
                    dash.user,
                    env.api_key,
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
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                integrations.update_integration(
                    session,
                    dash.user,
                    env.api_key,
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
    with dash.state.write() as session:
        env = nav.environment(session, dash.user, env_id)
        integrations.delete_integration(session, dash.user, env.api_key, kind, integration_id)
    dash.flash(f"{SCHEMAS[kind].label} integration removed.")
    return redirect(f"/environments/{env_id}/integrations")


@router.post("/environments/{env_id}/integrations/{kind}/{integration_id}/test")
def send_test_event(env_id: int, kind: str, integration_id: int, dash: DashContext) -> Response:
    kind = _kind(kind)
    with dash.state.write() as session:
        env = nav.environment(session, dash.user, env_id)
        row_id = test_events.request_test_event(
            session, dash.user, env.api_key, kind, integration_id
        )
    result = None
    deadline = time.monotonic() + dash.state.settings.delivery_timeout_seconds + 5
    while time.monotonic() < deadline:
        with reading(dash.state) as session:
            result = test_events.test_event_result(session, row_id)
        if result is not None:
            with dash.state.write() as session:
                test_events.discard_test_event(session, row_id)
            break
        time.sleep(0.1)
    return render(dash, "partials/test_event.html", {"result": result})
