"""Analytics integrations of an environment (contract §6.1): each destination's configuration
(one set of routes per kind in `integrations.catalog`), delivery status, the attempt log and a
"send test event" action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS, MAX_RESEND_AFTER_HOURS
from ensign.integrations.schema import Schema
from ensign.services import integrations, test_events
from ensign.services.integrations import IntegrationInput
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.deps import Admin, State
from ensign.web.responses import OrjsonResponse

router = APIRouter(tags=["Integrations"])
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _flag(value: bool) -> str:
    return "true" if value else "false"


class IntegrationIn(BaseModel):
    """The settings every destination shares; each kind's model adds its own (`_model`)."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = Field(default=None, description="The vendor's key (see the kind).")
    base_url: str | None = Field(default=None, description="A custom https endpoint.")
    region: str | None = Field(default=None, description="A data region of the vendor.")
    enabled: bool | None = None
    feature_names: list[str] | None = Field(
        default=None, description="Send only these features (default: all)."
    )
    tag: str | None = Field(default=None, description="Send only features with this tag label.")
    deliver: str | None = Field(
        default=None,
        description=f'"{DEFAULTS.deliver}" (default): record an identity\'s flags only when they '
        'changed; "every_evaluation": on every identify call.',
    )
    # Any JSON value, checked by the service, so that a wrong one is a 400 naming the field.
    resend_after_hours: Any = Field(
        default=None,
        description="With deliver=changes, send unchanged flags again after this many hours "
        f"(default {DEFAULTS.resend_after_hours}, 0: never, at most {MAX_RESEND_AFTER_HOURS}).",
    )
    exposures: bool | None = Field(
        default=None,
        description=f"Send experiment exposures (default {_flag(DEFAULTS.exposures)}).",
    )
    events: bool | None = Field(
        default=None,
        description="Also send the SDKs' custom events from `POST /v1/events` "
        f"(default {_flag(DEFAULTS.events)}).",
    )


COMMON = frozenset(IntegrationIn.model_fields)


def _model(schema: Schema) -> type[IntegrationIn]:
    """The request body of one destination: the common settings, its own options (any JSON
    value, so that the service's 400 names a wrong one) and the aliases it accepts."""
    fields: dict[str, Any] = {
        option.name: (Any, Field(default=None, description=option.description))
        for option in schema.options
    }
    for alias, target in schema.aliases.items():
        # Typed as the field it names, so a wrong type is refused like the field's own.
        annotation = IntegrationIn.model_fields[target].annotation
        fields[alias] = (annotation, Field(default=None, description=f"The same as `{target}`."))
    model: type[IntegrationIn] = create_model(
        f"{schema.label.replace(' ', '')}IntegrationIn",
        __base__=IntegrationIn,
        **fields,
    )
    model.__doc__ = f"A {schema.label} integration: region {', '.join(schema.regions) or '—'}; "
    model.__doc__ += f"`api_key` is the {schema.key_label}."
    return model


def _input(schema: Schema, body: IntegrationIn) -> IntegrationInput:
    given = set(body.model_fields_set)
    values = {name: getattr(body, name) for name in given}
    for alias, target in schema.aliases.items():
        if alias in given:
            values[target] = values.pop(alias)
            given.discard(alias)
            given.add(target)
    return IntegrationInput(
        api_key=values.get("api_key"),
        base_url=values.get("base_url"),
        region=values.get("region"),
        enabled=values.get("enabled"),
        feature_names=values.get("feature_names"),
        tag=values.get("tag"),
        deliver=values.get("deliver"),
        resend_after_hours=values.get("resend_after_hours"),
        exposures=values.get("exposures"),
        events=values.get("events"),
        options={o.name: values[o.name] for o in schema.options if o.name in given},
        given=frozenset(given),
    )


def _render_test(result: test_events.TestEventResult | None) -> Response:
    if result is None:
        body: dict[str, Any] = {
            "status": "queued",
            "status_code": None,
            "response": None,
            "error": "No dispatcher answered in time; the test event stays queued.",
        }
        return _json(body, status=202)
    body = {
        "status": result.outcome,
        "status_code": result.status_code,
        "response": result.response,
        "error": result.error,
    }
    return _json(body)


def _json(body: dict[str, Any], *, status: int = 200) -> Response:
    return OrjsonResponse(body, status_code=status)


def _register(schema: Schema) -> None:
    """The routes of one destination kind: the kind is part of each path, operation id and
    request body, so each kind has handlers of its own."""
    kind, label, body_model = schema.kind, schema.label, _model(schema)
    base = f"/environments/{{api_key}}/integrations/{kind}"

    def route(
        path: str, methods: list[str], status_code: int, summary: str, name: str
    ) -> Callable[[Endpoint], Endpoint]:
        register = admin_route(
            router,
            base + path,
            methods,
            status_code=status_code,
            summary=summary,
            name=f"{kind}_{name}",
        )

        def with_body(endpoint: Endpoint) -> Endpoint:
            # The body is this kind's model, which a string annotation could not name; FastAPI
            # reads the annotations when the route is registered.
            if "body" in endpoint.__annotations__:
                endpoint.__annotations__["body"] = body_model
            return register(endpoint)

        return with_body

    @route("/", ["GET"], 200, f"List {label} integrations", "list")
    def list_(api_key: str, state: State, principal: Admin) -> list[dict[str, Any]]:
        with state.units.read() as unit:
            configs = integrations.list_integrations(unit, principal, api_key, kind)
            return [render.integration(c) for c in configs]

    @route("/", ["POST"], 201, f"Create the {label} integration", "create")
    def create(api_key: str, body: IntegrationIn, state: State, principal: Admin) -> dict[str, Any]:
        data, allow_private = _input(schema, body), state.settings.allow_private_destinations
        with state.units.write() as unit:
            config = integrations.create_integration(
                unit, principal, api_key, kind, data, allow_private=allow_private
            )
            return render.integration(config)

    @route("/{integration_id}/", ["GET"], 200, f"Read the {label} integration", "read")
    def read(api_key: str, integration_id: int, state: State, principal: Admin) -> dict[str, Any]:
        with state.units.read() as unit:
            config = integrations.get_integration(unit, principal, api_key, kind, integration_id)
            return render.integration(config)

    @route("/{integration_id}/", ["PUT", "PATCH"], 200, f"Update the {label} integration", "update")
    def update(
        api_key: str, integration_id: int, body: IntegrationIn, state: State, principal: Admin
    ) -> dict[str, Any]:
        data, allow_private = _input(schema, body), state.settings.allow_private_destinations
        with state.units.write() as unit:
            config = integrations.update_integration(
                unit, principal, api_key, kind, integration_id, data, allow_private=allow_private
            )
            return render.integration(config)

    @route("/{integration_id}/", ["DELETE"], 204, f"Delete the {label} integration", "delete")
    def delete(api_key: str, integration_id: int, state: State, principal: Admin) -> Response:
        with state.units.write() as unit:
            integrations.delete_integration(unit, principal, api_key, kind, integration_id)
        return no_content()

    @route("/{integration_id}/deliveries/", ["GET"], 200, f"{label} delivery counts", "deliveries")
    def deliveries(
        api_key: str, integration_id: int, state: State, principal: Admin
    ) -> dict[str, Any]:
        with state.units.read() as unit:
            status = integrations.delivery_status(
                unit,
                principal,
                api_key,
                kind,
                integration_id,
                unwritten_suppressed=state.identities.suppressed.pending,
            )
        return render.delivery_status(status)

    @route("/{integration_id}/attempts/", ["GET"], 200, f"{label} delivery attempts", "attempts")
    def attempts(
        request: Request,
        api_key: str,
        integration_id: int,
        state: State,
        principal: Admin,
        pages: Pages,
    ) -> dict[str, Any]:
        with state.units.read() as unit:
            found = integrations.delivery_attempts(
                unit, principal, api_key, kind, integration_id, pages.window
            )
            return paginated(request, pages, found, render.delivery_attempt)

    @route("/{integration_id}/test/", ["POST"], 200, f"Send a test event to {label}", "send_test")
    async def send_test(
        api_key: str, integration_id: int, state: State, principal: Admin
    ) -> Response:
        result = await test_events.send_test_event(
            state.units,
            principal,
            api_key,
            kind,
            integration_id,
            wait_seconds=state.settings.test_event_wait,
        )
        return _render_test(result)


for _schema in SCHEMAS.values():
    _register(_schema)
