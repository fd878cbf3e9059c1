"""Projects and environments: list, create, rename, delete; keys and tags."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.errors import EnsignError
from ensign.services.admin import environments, projects
from ensign.services.admin import tags as admin_tags
from ensign.web.dashboard import nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)

router = APIRouter(route_class=DashboardRoute)

NAME_LENGTH = 200


def check_name(errors: FormErrors, value: str, field: str = "name") -> str:
    value = value.strip()
    if not value:
        errors.set(field, "A name is required.")
    elif len(value) > NAME_LENGTH:
        errors.set(field, f"At most {NAME_LENGTH} characters.")
    return value


def _projects_page(dash: DashContext, errors: FormErrors, status: int = 200) -> Response:
    with dash.state.units.read() as unit:
        items = projects.list_projects(unit, dash.user, nav.ALL).items
        rows = [
            (p, nav.project_context(unit.session, dash.user, p.id)["environments"]) for p in items
        ]
        return render(
            dash,
            "pages/projects.html",
            {"projects": rows, "errors": errors, "name": dash.value("name")},
            status_code=status,
        )


@router.get("/projects")
def list_projects(dash: DashContext) -> Response:
    return _projects_page(dash, FormErrors())


@router.post("/projects")
def create_project(dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("name"))
    if errors:
        return _projects_page(dash, errors, 400)
    with dash.state.units.write() as unit:
        project = projects.start_project(unit, dash.user, name=name, environment_name="Development")
        project_id = project.id
    dash.flash(f"Project {name!r} created with a Development environment.")
    return redirect(f"/projects/{project_id}")


def _project_page(
    dash: DashContext, project_id: int, errors: FormErrors | None = None, status: int = 200
) -> Response:
    with dash.state.units.read() as unit:
        context = nav.project_context(unit.session, dash.user, project_id)
        context["tags"] = admin_tags.list_tags(unit.session, dash.user, project_id, nav.ALL).items
        return render(
            dash,
            "pages/project.html",
            {**context, "errors": errors or FormErrors(), "form": dash},
            status_code=status,
        )


@router.get("/projects/{project_id}")
def show_project(project_id: int, dash: DashContext) -> Response:
    return _project_page(dash, project_id)


@router.post("/projects/{project_id}/rename")
def rename_project(project_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("name"))
    if errors:
        return _project_page(dash, project_id, errors, 400)
    with dash.state.units.write() as unit:
        projects.update_project(unit, dash.user, project_id, {"name": name})
    dash.flash("Project renamed.")
    return redirect(f"/projects/{project_id}")


@router.get("/projects/{project_id}/delete")
def confirm_delete_project(project_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        project = projects.get_project(unit, dash.user, project_id)
        return render(
            dash,
            "pages/confirm.html",
            {
                "title": f"Delete project {project.name!r}?",
                "message": "Every environment, feature, segment and identity in it is deleted "
                "too. This cannot be undone.",
                "action": f"/projects/{project_id}/delete",
                "cancel": f"/projects/{project_id}",
            },
        )


@router.post("/projects/{project_id}/delete")
def delete_project(project_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        projects.delete_project(unit, dash.user, project_id)
    dash.flash("Project deleted.")
    return redirect("/projects")


@router.post("/projects/{project_id}/environments")
def create_environment(project_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("environment_name"), "environment_name")
    if errors:
        return _project_page(dash, project_id, errors, 400)
    with dash.state.units.write() as unit:
        env = environments.create_environment(unit, dash.user, project_id=project_id, name=name)
        env_id = env.id
    dash.flash(f"Environment {name!r} created.")
    return redirect(f"/environments/{env_id}/features")


@router.post("/projects/{project_id}/tags")
def create_tag(project_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    label = check_name(errors, dash.value("label"), "label")
    color = dash.value("color", "#3d7eff").strip() or "#3d7eff"
    if not errors:
        try:
            with dash.state.units.write() as unit:
                admin_tags.create_tag(unit, dash.user, project_id, label=label, color=color)
        except EnsignError as error:
            errors.add(error, "label")
    if errors:
        return _project_page(dash, project_id, errors, 400)
    dash.flash(f"Tag {label!r} created.")
    return redirect(f"/projects/{project_id}")


@router.post("/projects/{project_id}/tags/{tag_id}/delete")
def delete_tag(project_id: int, tag_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        admin_tags.delete_tag(unit, dash.user, project_id, tag_id)
    dash.flash("Tag deleted.")
    return redirect(f"/projects/{project_id}")


# --- environment settings -------------------------------------------------------------------


def _environment_page(
    dash: DashContext, env_id: int, errors: FormErrors | None = None, status: int = 200
) -> Response:
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "settings")
        keys = environments.list_server_keys(unit, dash.user, env_id, nav.ALL).items
        return render(
            dash,
            "pages/environment.html",
            {**context, "server_keys": keys, "errors": errors or FormErrors()},
            status_code=status,
        )


@router.get("/environments/{env_id}")
def show_environment(env_id: int, dash: DashContext) -> Response:
    return _environment_page(dash, env_id)


@router.post("/environments/{env_id}/rename")
def rename_environment(env_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("name"))
    if errors:
        return _environment_page(dash, env_id, errors, 400)
    with dash.state.units.write() as unit:
        environments.update_environment(unit, dash.user, env_id, {"name": name})
    dash.flash("Environment renamed.")
    return redirect(f"/environments/{env_id}")


@router.get("/environments/{env_id}/delete")
def confirm_delete_environment(env_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        env = environments.get_environment(unit, dash.user, env_id)
        return render(
            dash,
            "pages/confirm.html",
            {
                "title": f"Delete environment {env.name!r}?",
                "message": "Its flags, overrides, identities and keys are deleted, and SDKs "
                "using its keys stop getting flags. This cannot be undone.",
                "action": f"/environments/{env_id}/delete",
                "cancel": f"/environments/{env_id}",
            },
        )


@router.post("/environments/{env_id}/delete")
def delete_environment(env_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        project_id = environments.delete_environment(unit, dash.user, env_id)
    dash.flash("Environment deleted.")
    return redirect(f"/projects/{project_id}")


@router.post("/environments/{env_id}/server-keys")
def create_server_key(env_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("key_name"), "key_name")
    if errors:
        return _environment_page(dash, env_id, errors, 400)
    with dash.state.units.write() as unit:
        environments.create_server_key(unit, dash.user, env_id, name=name)
    dash.flash(f"Server key {name!r} created.")
    return redirect(f"/environments/{env_id}")


@router.post("/environments/{env_id}/server-keys/{key_id}/revoke")
def revoke_server_key(env_id: int, key_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        environments.delete_server_key(unit, dash.user, env_id, key_id)
    dash.flash("Server key revoked.")
    return redirect(f"/environments/{env_id}")
