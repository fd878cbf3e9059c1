"""Analytics integrations of an environment (contract §6.1): each destination's configuration
(one set of routes per kind in `integrations.catalog`), delivery status, the attempt log and a
"send test event" action."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.concurrency import run_in_threadpool

from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS, MAX_RESEND_AFTER_HOURS, CommonSettings
from ensign.integrations.schema import Schema
from ensign.services import integrations, test_events
from ensign.services.integrations import IntegrationInput
from ensign.storage.models import DeliveryAttempt, IntegrationConfig
from ensign.web.deps import Admin, AppState, State

router = APIRouter(prefix="/api/v1", tags=["Integrations"])


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


def _render(config: IntegrationConfig) -> dict[str, Any]:
    schema = integrations.schema_of(config.kind)
    body: dict[str, Any] = {
        "id": config.id,
        "api_key": config.api_key,
        "base_url": config.base_url,
        "region": config.region,
        "enabled": config.enabled,
        "feature_names": config.feature_names,
        "tag": config.tag_label,
        "deliver": config.deliver,
        "resend_after_hours": config.resend_after_hours,
    }
    for alias, target in schema.aliases.items():
        body[alias] = body[target]
    common = CommonSettings.of(config)
    body["exposures"] = common.exposures
    body["events"] = common.events
    options = config.options or {}
    for option in schema.options:
        value = options.get(option.name, option.default)
        if option.secret:
            body[f"{option.name}_set"] = bool(value)
        else:
            body[option.name] = value
    return body


def _render_attempt(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "created_at": attempt.created_at.isoformat(),
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "evaluations": attempt.evaluations,
        "duration_ms": attempt.duration_ms,
        "response": attempt.response,
        "error": attempt.error,
    }


def _allow_private(state: AppState) -> bool:
    return state.settings.allow_private_destinations


def _register(schema: Schema) -> None:
    kind = schema.kind
    base = f"/environments/{{api_key}}/integrations/{kind}"
    label = schema.label
    body_model = _model(schema)

    def list_(api_key: str, state: State, principal: Admin) -> list[dict[str, Any]]:
        with state.read() as session:
            configs = integrations.list_integrations(session, principal, api_key, kind)
            return [_render(c) for c in configs]

    def create(api_key: str, body: IntegrationIn, state: State, principal: Admin) -> dict[str, Any]:
        with state.write() as session:
            config = integrations.create_integration(
                session,
                principal,
                api_key,
                kind,
                _input(schema, body),
                allow_private=_allow_private(state),
            )
            return _render(config)

    def read(api_key: str, integration_id: int, state: State, principal: Admin) -> dict[str, Any]:
        with state.read() as session:
            config = integrations.get_integration(session, principal, api_key, kind, integration_id)
            return _render(config)

    def update(
        api_key: str, integration_id: int, body: IntegrationIn, state: State, principal: Admin
    ) -> dict[str, Any]:
        with state.write() as session:
            config = integrations.update_integration(
                session,
                principal,
                api_key,
                kind,
                integration_id,
                _input(schema, body),
                allow_private=_allow_private(state),
            )
            return _render(config)

    def delete(api_key: str, integration_id: int, state: State, principal: Admin) -> Response:
        with state.write() as session:
            integrations.delete_integration(session, principal, api_key, kind, integration_id)
        return Response(status_code=204)

    def deliveries(
        api_key: str, integration_id: int, state: State, principal: Admin
    ) -> dict[str, Any]:
        with state.read() as session:
            status = integrations.delivery_status(
                session,
                principal,
                api_key,
                kind,
                integration_id,
                unwritten_suppressed=state.identities.suppressed.pending,
            )
        return {
            "delivered": status.delivered,
            "suppressed": status.suppressed,
            "pending": status.pending,
            "retrying": status.retrying,
            "failed": status.failed,
            "given_up": status.given_up,
            "last_success_at": status.last_success_at and status.last_success_at.isoformat(),
            "last_error_at": status.last_error_at and status.last_error_at.isoformat(),
            "last_error": status.last_error,
        }

    def attempts(
        request: Request,
        api_key: str,
        integration_id: int,
        state: State,
        principal: Admin,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    ) -> dict[str, Any]:
        size = min(page_size or state.settings.admin_page_size, state.settings.admin_max_page_size)
        with state.read() as session:
            items, count = integrations.delivery_attempts(
                session,
                principal,
                api_key,
                kind,
                integration_id,
                offset=(page - 1) * size,
                limit=size,
            )
            results = [_render_attempt(a) for a in items]
        url = request.url
        has_next = page * size < count
        return {
            "count": count,
            "next": str(url.include_query_params(page=page + 1)) if has_next else None,
            "previous": str(url.include_query_params(page=page - 1)) if page > 1 else None,
            "results": results,
        }

    async def send_test(
        api_key: str, integration_id: int, state: State, principal: Admin
    ) -> Response:
        def queue() -> int:
            with state.write() as session:
                return test_events.request_test_event(
                    session, principal, api_key, kind, integration_id
                )

        row_id = await run_in_threadpool(queue)
        deadline = time.monotonic() + state.settings.delivery_timeout_seconds + 5
        while time.monotonic() < deadline:
            result = await run_in_threadpool(_test_result, state, row_id)
            if result is not None:
                await run_in_threadpool(_discard_test, state, row_id)
                return _json(
                    {
                        "status": result.outcome,
                        "status_code": result.status_code,
                        "response": result.response,
                        "error": result.error,
                    }
                )
            await asyncio.sleep(0.1)
        return _json(
            {
                "status": "queued",
                "status_code": None,
                "response": None,
                "error": "No dispatcher answered in time; the test event stays queued.",
            },
            status=202,
        )

    # The body is this kind's model, which a string annotation could not name.
    create.__annotations__["body"] = body_model
    update.__annotations__["body"] = body_model

    routes: list[tuple[str, Any, list[str], int, str]] = [
        ("/", list_, ["GET"], 200, f"List {label} integrations"),
        ("/", create, ["POST"], 201, f"Create the {label} integration"),
        ("/{integration_id}/", read, ["GET"], 200, f"Read the {label} integration"),
        ("/{integration_id}/", update, ["PUT", "PATCH"], 200, f"Update the {label} integration"),
        ("/{integration_id}/", delete, ["DELETE"], 204, f"Delete the {label} integration"),
        ("/{integration_id}/deliveries/", deliveries, ["GET"], 200, f"{label} delivery counts"),
        ("/{integration_id}/attempts/", attempts, ["GET"], 200, f"{label} delivery attempts"),
        ("/{integration_id}/test/", send_test, ["POST"], 200, f"Send a test event to {label}"),
    ]
    for path, endpoint, methods, status_code, summary in routes:
        name = f"{kind}_{endpoint.__name__.strip('_')}"
        for method in methods:
            # One route per method: FastAPI gives a multi-method route one operation id.
            router.add_api_route(
                base + path,
                endpoint,
                methods=[method],
                status_code=status_code,
                summary=summary,
                name=name,
                operation_id=f"{name}_{method.lower()}",
            )
        router.add_api_route(
            base + path.rstrip("/"),
            endpoint,
            methods=methods,
            status_code=status_code,
            include_in_schema=False,
        )


def _test_result(state: AppState, row_id: int) -> test_events.TestEventResult | None:
    with state.read() as session:
        return test_events.test_event_result(session, row_id)


def _discard_test(state: AppState, row_id: int) -> None:
    with state.db.session() as session:
        test_events.discard_test_event(session, row_id)


def _json(body: dict[str, Any], *, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


for _schema in SCHEMAS.values():
    _register(_schema)
