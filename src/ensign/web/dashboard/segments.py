"""Segments: the rule editor (nested groups of ALL/ANY/NONE conditions, see `rule_editor`), and
"test this segment"."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.engine.operators import OPERATOR_NAMES
from ensign.errors import EnsignError
from ensign.services import explanations
from ensign.services.admin import segments
from ensign.web.dashboard import forms, nav, rule_editor
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)
from ensign.web.dashboard.projects import check_name

router = APIRouter(route_class=DashboardRoute)

# How the rule editor names each of the engine's operators.
OPERATOR_LABELS = {
    "EQUAL": "equals",
    "NOT_EQUAL": "does not equal",
    "GREATER_THAN": ">",
    "GREATER_THAN_INCLUSIVE": ">=",
    "LESS_THAN": "<",
    "LESS_THAN_INCLUSIVE": "<=",
    "CONTAINS": "contains",
    "NOT_CONTAINS": "does not contain",
    "REGEX": "matches regex",
    "MODULO": "modulo (divisor|remainder)",
    "IN": "is one of (comma-separated)",
    "IS_SET": "is set",
    "IS_NOT_SET": "is not set",
    "PERCENTAGE_SPLIT": "% split (value = percentage)",
}
# The editor's choices, in the engine's order; an operator without a label shows its name.
OPERATORS = [(name, OPERATOR_LABELS.get(name, name)) for name in OPERATOR_NAMES]
RULE_TYPES = [("ALL", "All of"), ("ANY", "Any of"), ("NONE", "None of")]


def _editor(
    dash: DashContext,
    env_id: int,
    segment_id: int | None,
    *,
    name: str,
    description: str,
    editor: rule_editor.Editor,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "segments")
        segment = None
        if segment_id is not None:
            segment = segments.get_segment(
                unit.session, dash.user, context["environment"].project_id, segment_id
            )
        context.update(
            segment=segment,
            name=name,
            description=description,
            groups=editor.groups,
            wrapped=editor.wrapped,
            form_action=f"/environments/{env_id}/segments"
            + ("" if segment_id is None else f"/{segment_id}"),
            can_nest=lambda gid: rule_editor.can_nest(editor, gid),
            group_label=rule_editor.group_label,
            operators=OPERATORS,
            rule_types=RULE_TYPES,
            errors=errors or FormErrors(),
        )
        return render(dash, "pages/segment.html", context, status_code=status)


@router.get("/environments/{env_id}/segments")
def list_segments(env_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "segments")
        items = segments.list_segments(
            unit.session, dash.user, context["environment"].project_id, nav.ALL
        ).items
        context["segments"] = items
        return render(dash, "pages/segments.html", context)


@router.get("/environments/{env_id}/segments/new")
def new_segment(env_id: int, dash: DashContext) -> Response:
    return _editor(dash, env_id, None, name="", description="", editor=rule_editor.new_editor())


@router.get("/environments/{env_id}/segments/{segment_id}")
def show_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        env = nav.environment(unit.session, dash.user, env_id)
        segment = segments.get_segment(unit.session, dash.user, env.project_id, segment_id)
        editor = rule_editor.from_rules(list(segment.rules))
        name, description = segment.name, segment.description or ""
    return _editor(dash, env_id, segment_id, name=name, description=description, editor=editor)


@router.post("/environments/{env_id}/segments")
def create_segment(env_id: int, dash: DashContext) -> Response:
    return _save(dash, env_id, None)


@router.post("/environments/{env_id}/segments/{segment_id}")
def update_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    return _save(dash, env_id, segment_id)


def _save(dash: DashContext, env_id: int, segment_id: int | None) -> Response:
    editor = rule_editor.from_form(dash.value)
    name, description = dash.value("name"), dash.value("description")
    action = dash.value("action", "save")
    if action != "save":
        rule_editor.apply(editor, action)
        return _editor(dash, env_id, segment_id, name=name, description=description, editor=editor)
    errors = FormErrors()
    name = check_name(errors, name)
    rules, paths = rule_editor.to_rules(editor)
    if not editor.has_conditions():
        errors.set("rules", "Add at least one condition.")
    if not errors:
        try:
            with dash.state.units.write() as unit:
                env = nav.environment(unit.session, dash.user, env_id)
                if segment_id is None:
                    saved = segments.create_segment(
                        unit,
                        dash.user,
                        env.project_id,
                        name=name,
                        rules=rules,
                        description=description.strip() or None,
                    )
                else:
                    saved = segments.update_segment(
                        unit,
                        dash.user,
                        env.project_id,
                        segment_id,
                        {
                            "name": name,
                            "description": description.strip() or None,
                            "rules": rules,
                        },
                    )
                saved_id = saved.id
        except EnsignError as error:
            errors.add(error, "rules")
            if error.field and error.field.startswith("rules."):
                errors.fields[rule_editor.form_field(error.field, paths)] = errors.fields.pop(
                    error.field
                )
    if errors:
        return _editor(
            dash,
            env_id,
            segment_id,
            name=name,
            description=description,
            editor=editor,
            errors=errors,
            status=400,
        )
    dash.flash(f"Segment {name!r} saved.")
    return redirect(f"/environments/{env_id}/segments/{saved_id}")


@router.post("/environments/{env_id}/segments/{segment_id}/test")
def test_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    identifier = dash.value("identifier").strip()
    if not identifier:
        errors.set("identifier", "Enter an identifier.")
    traits = forms.parse_traits(errors, dash.value("traits"))
    matched = None
    with dash.state.units.read() as unit:
        env = nav.environment(unit.session, dash.user, env_id)
        segment = segments.get_segment(unit.session, dash.user, env.project_id, segment_id)
        if not errors:
            matched = explanations.segment_matches(
                list(segment.rules),
                segment_key=str(segment.id),
                environment_key=env.api_key,
                identifier=identifier,
                traits=traits,
            )
        return render(
            dash,
            "partials/segment_test.html",
            {"matched": matched, "errors": errors, "identifier": identifier, "segment": segment},
        )


@router.get("/environments/{env_id}/segments/{segment_id}/delete")
def confirm_delete_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        env = nav.environment(unit.session, dash.user, env_id)
        segment = segments.get_segment(unit.session, dash.user, env.project_id, segment_id)
        return render(
            dash,
            "pages/confirm.html",
            {
                "title": f"Delete segment {segment.name!r}?",
                "message": "Its overrides in every environment are deleted too.",
                "action": f"/environments/{env_id}/segments/{segment_id}/delete",
                "cancel": f"/environments/{env_id}/segments/{segment_id}",
            },
        )


@router.post("/environments/{env_id}/segments/{segment_id}/delete")
def delete_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        env = nav.environment(unit.session, dash.user, env_id)
        segments.delete_segment(unit, dash.user, env.project_id, segment_id)
    dash.flash("Segment deleted.")
    return redirect(f"/environments/{env_id}/segments")
