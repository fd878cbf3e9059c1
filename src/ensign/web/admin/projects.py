"""Projects, and what lives in them: features, options, tags and their audit log (segments
are in `segments`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.errors import InvalidInput
from ensign.services.admin import audit, features, projects
from ensign.services.admin import tags as admin_tags
from ensign.services.values import FlagValue
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, flag_value, id_list, no_content, paginated
from ensign.web.admin.schemas import (
    Body,
    FeatureCreate,
    FeatureUpdate,
    Id,
    Name,
    OptionCreate,
    OptionUpdate,
    Patch,
    TagCreate,
    TagUpdate,
)
from ensign.web.deps import Admin, AppState, State

router = APIRouter(tags=["Projects"])
route = admin_route


# --- projects -------------------------------------------------------------------------------


class ProjectCreate(Body):
    name: Name
    organisation: Id | None = None
    hide_disabled_flags: bool = False
    enable_realtime_updates: bool = False


class ProjectUpdate(Patch):
    name: Name | None = None
    hide_disabled_flags: bool | None = None
    enable_realtime_updates: bool | None = None


@route(router, "/projects/", ["GET"], summary="List projects")
def list_projects(
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    organisation: int | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = projects.list_projects(unit, principal, paging.window, organisation_id=organisation)
        return paginated(request, paging, page, render.project)


@route(router, "/projects/", ["POST"], status_code=201, summary="Create a project")
def create_project(body: ProjectCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.write() as unit:
        row = projects.create_project(
            unit,
            principal,
            name=body.name,
            organisation_id=body.organisation,
            hide_disabled_flags=body.hide_disabled_flags,
            enable_realtime_updates=body.enable_realtime_updates,
        )
        return render.project(row)


@route(router, "/projects/{project_id}/", ["GET"], summary="Read a project")
def get_project(project_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.project(projects.get_project(unit, principal, project_id))


@route(router, "/projects/{project_id}/", ["PUT", "PATCH"], summary="Update a project")
def update_project(
    project_id: int, body: ProjectUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = projects.update_project(unit, principal, project_id, body.changes())
        return render.project(row)


@route(router, "/projects/{project_id}/", ["DELETE"], status_code=204, summary="Delete a project")
def delete_project(project_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        projects.delete_project(unit, principal, project_id)
    return no_content()


@route(router, "/projects/{project_id}/audit/", ["GET"], summary="A project's audit log")
def project_audit(
    project_id: int,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    search: str | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = audit.list_entries(
            unit, principal, paging.window, project_id=project_id, search=search
        )
        return paginated(request, paging, page, render.audit_entry)


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
    with state.read() as session:
        page = features.list_features(
            session, principal, project_id, paging.window, search=search, tag_ids=tag_ids
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
    with state.write() as session:
        row = features.create_feature(
            session,
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
    with state.read() as session:
        return render.feature(features.get_feature(session, principal, project_id, feature_id))


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
    with state.write() as session:
        row = features.update_feature(session, principal, project_id, feature_id, body.changes())
        return render.feature(row)


@route(
    router,
    "/projects/{project_id}/features/{feature_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a feature",
)
def delete_feature(project_id: int, feature_id: int, state: State, principal: Admin) -> Response:
    with state.write() as session:
        features.delete_feature(session, principal, project_id, feature_id)
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
    with state.read() as session:
        page = features.list_options(session, principal, project_id, feature_id, paging.window)
        return paginated(request, paging, page, render.option)


@route(router, OPTIONS, ["POST"], status_code=201, summary="Add a multivariate option")
def create_option(
    project_id: int, feature_id: int, body: OptionCreate, state: State, principal: Admin
) -> dict[str, Any]:
    value = _option_value(state, body)
    with state.write() as session:
        row = features.create_option(
            session,
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
    with state.read() as session:
        row = features.get_option(session, principal, project_id, feature_id, option_id)
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
    with state.write() as session:
        row = features.update_option(session, principal, project_id, feature_id, option_id, changes)
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
    with state.write() as session:
        features.delete_option(session, principal, project_id, feature_id, option_id)
    return no_content()


# --- tags -----------------------------------------------------------------------------------


@route(router, "/projects/{project_id}/tags/", ["GET"], summary="List tags")
def list_tags(
    project_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.read() as session:
        page = admin_tags.list_tags(session, principal, project_id, paging.window)
        return paginated(request, paging, page, render.tag)


@route(router, "/projects/{project_id}/tags/", ["POST"], status_code=201, summary="Create a tag")
def create_tag(project_id: int, body: TagCreate, state: State, principal: Admin) -> dict[str, Any]:
    with state.write() as session:
        row = admin_tags.create_tag(
            session, principal, project_id, label=body.label, color=body.color
        )
        return render.tag(row)


@route(router, "/projects/{project_id}/tags/{tag_id}/", ["GET"], summary="Read a tag")
def get_tag(project_id: int, tag_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.read() as session:
        return render.tag(admin_tags.get_tag(session, principal, project_id, tag_id))


@route(router, "/projects/{project_id}/tags/{tag_id}/", ["PUT", "PATCH"], summary="Update a tag")
def update_tag(
    project_id: int, tag_id: int, body: TagUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.write() as session:
        row = admin_tags.update_tag(session, principal, project_id, tag_id, body.changes())
        return render.tag(row)


@route(
    router,
    "/projects/{project_id}/tags/{tag_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a tag",
)
def delete_tag(project_id: int, tag_id: int, state: State, principal: Admin) -> Response:
    with state.write() as session:
        admin_tags.delete_tag(session, principal, project_id, tag_id)
    return no_content()
