"""A project's features and their multivariate options."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field, field_validator

from ensign.errors import InvalidInput
from ensign.services.admin import features, options
from ensign.services.values import FlagValue
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, flag_value, id_list, no_content, paginated
from ensign.web.admin.schemas import Body, Id, LongName, OptionKey, Patch, Percentage, Text
from ensign.web.deps import Admin, AppState, State

router = APIRouter(tags=["Projects"])
route = admin_route


# --- request bodies -------------------------------------------------------------------------


def _initial_value_text(value: Any) -> Any:
    """The reference keeps `initial_value` as text; JSON numbers and booleans become it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return value


class FeatureCreate(Body):
    name: LongName
    description: Text | None = None
    initial_value: Text | None = None
    default_enabled: bool = False
    is_server_key_only: bool = False
    tags: list[Id] = Field(default_factory=list, max_length=1000)

    _initial = field_validator("initial_value", mode="before")(_initial_value_text)


class FeatureUpdate(Patch):
    nullable = frozenset({"description", "initial_value"})
    name: LongName | None = None
    description: Text | None = None
    initial_value: Text | None = None
    default_enabled: bool | None = None
    is_server_key_only: bool | None = None
    tags: list[Id] | None = Field(default=None, max_length=1000)

    _initial = field_validator("initial_value", mode="before")(_initial_value_text)


class OptionCreate(Body):
    type: Literal["unicode", "int", "bool"] | None = None
    value: Any = None
    string_value: Text | None = None
    integer_value: int | None = None
    boolean_value: bool | None = None
    key: OptionKey | None = None
    default_percentage_allocation: Percentage = 0.0


class OptionUpdate(Patch):
    nullable = frozenset({"value", "key", "string_value", "integer_value", "boolean_value"})
    type: Literal["unicode", "int", "bool"] | None = None
    value: Any = None
    string_value: Text | None = None
    integer_value: int | None = None
    boolean_value: bool | None = None
    key: OptionKey | None = None
    default_percentage_allocation: Percentage | None = None


# --- features -------------------------------------------------------------------------------


def _check_initial_value(state: AppState, text: str | None) -> None:
    limit = state.settings.max_flag_value_bytes
    if text is not None and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise InvalidInput(f"initial_value: longer than {limit} bytes.", field="initial_value")


@route(router, "/projects/{project_id}/features/", ["GET"], summary="List features")
def list_features(
    project_id: int,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    search: str | None = None,
    tags: str | None = None,
) -> dict[str, Any]:
    tag_ids = id_list(tags, field="tags")
    with state.units.read() as unit:
        page = features.list_features(
            unit.session, principal, project_id, paging.window, search=search, tag_ids=tag_ids
        )
        return paginated(request, paging, page, render.feature)


@route(
    router,
    "/projects/{project_id}/features/",
    ["POST"],
    status_code=201,
    summary="Create a feature",
)
def create_feature(
    project_id: int, body: FeatureCreate, state: State, principal: Admin
) -> dict[str, Any]:
    _check_initial_value(state, body.initial_value)
    with state.units.write() as unit:
        row = features.create_feature(
            unit,
            principal,
            project_id,
            name=body.name,
            description=body.description,
            initial_value=body.initial_value,
            default_enabled=body.default_enabled,
            is_server_key_only=body.is_server_key_only,
            tag_ids=body.tags,
        )
        return render.feature(row)


@route(router, "/projects/{project_id}/features/{feature_id}/", ["GET"], summary="Read a feature")
def get_feature(project_id: int, feature_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.feature(features.get_feature(unit.session, principal, project_id, feature_id))


@route(
    router,
    "/projects/{project_id}/features/{feature_id}/",
    ["PUT", "PATCH"],
    summary="Update a feature",
)
def update_feature(
    project_id: int, feature_id: int, body: FeatureUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    _check_initial_value(state, body.initial_value)
    with state.units.write() as unit:
        row = features.update_feature(unit, principal, project_id, feature_id, body.changes())
        return render.feature(row)


@route(
    router,
    "/projects/{project_id}/features/{feature_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a feature",
)
def delete_feature(project_id: int, feature_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        features.delete_feature(unit, principal, project_id, feature_id)
    return no_content()


# --- multivariate options -------------------------------------------------------------------

OPTIONS = "/projects/{project_id}/features/{feature_id}/mv-options/"


def _option_value(state: AppState, body: OptionCreate | OptionUpdate) -> FlagValue:
    """The option's value: `value` (typed like a flag value), else the reference's
    `type` + `string_value`/`integer_value`/`boolean_value`."""
    limit = state.settings.max_flag_value_bytes
    fields = body.model_fields_set
    if "value" in fields:
        value = flag_value(body.value, field="value", max_bytes=limit)
    elif body.type == "int" or (body.type is None and "integer_value" in fields):
        value = flag_value(body.integer_value, field="integer_value", max_bytes=limit)
    elif body.type == "bool" or (body.type is None and "boolean_value" in fields):
        value = body.boolean_value
    else:
        value = flag_value(body.string_value, field="string_value", max_bytes=limit)
    if body.type == "unicode" and value is not None and not isinstance(value, str):
        value = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if body.type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        raise InvalidInput("value: an int option needs an integer value.", field="value")
    if body.type == "bool" and not isinstance(value, bool):
        raise InvalidInput("value: a bool option needs a boolean value.", field="value")
    return value


@route(router, OPTIONS, ["GET"], summary="List a feature's multivariate options")
def list_options(
    project_id: int,
    feature_id: int,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = options.list_options(unit.session, principal, project_id, feature_id, paging.window)
        return paginated(request, paging, page, render.option)


@route(router, OPTIONS, ["POST"], status_code=201, summary="Add a multivariate option")
def create_option(
    project_id: int, feature_id: int, body: OptionCreate, state: State, principal: Admin
) -> dict[str, Any]:
    value = _option_value(state, body)
    with state.units.write() as unit:
        row = options.create_option(
            unit,
            principal,
            project_id,
            feature_id,
            value=value,
            key=body.key,
            default_percentage_allocation=body.default_percentage_allocation,
        )
        return render.option(row)


@route(router, OPTIONS + "{option_id}/", ["GET"], summary="Read a multivariate option")
def get_option(
    project_id: int, feature_id: int, option_id: int, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        row = options.get_option(unit.session, principal, project_id, feature_id, option_id)
        return render.option(row)


@route(router, OPTIONS + "{option_id}/", ["PUT", "PATCH"], summary="Update a multivariate option")
def update_option(
    project_id: int,
    feature_id: int,
    option_id: int,
    body: OptionUpdate,
    state: State,
    principal: Admin,
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    value_fields = {"value", "type", "string_value", "integer_value", "boolean_value"}
    if body.model_fields_set & value_fields:
        changes["value"] = _option_value(state, body)
    if "key" in body.model_fields_set:
        changes["key"] = body.key
    if "default_percentage_allocation" in body.model_fields_set:
        changes["default_percentage_allocation"] = body.default_percentage_allocation
    with state.units.write() as unit:
        row = options.update_option(unit, principal, project_id, feature_id, option_id, changes)
        return render.option(row)


@route(
    router,
    OPTIONS + "{option_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a multivariate option",
)
def delete_option(
    project_id: int, feature_id: int, option_id: int, state: State, principal: Admin
) -> Response:
    with state.units.write() as unit:
        options.delete_option(unit, principal, project_id, feature_id, option_id)
    return no_content()
