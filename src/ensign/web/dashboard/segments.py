"""Segments: the rule editor (groups of ALL/ANY/NONE conditions), and "test this segment"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Response

from ensign.engine.operators import OPERATOR_NAMES, VALUELESS_OPERATORS
from ensign.errors import EnsignError
from ensign.services import explanations
from ensign.services.admin import segments
from ensign.services.admin.segments import ConditionInput, RuleInput
from ensign.web.dashboard import forms, nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    reading,
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
MAX_GROUPS = 50
MAX_CONDITIONS = 100
_PATH = re.compile(r"^rules\.0\.rules\.(\d+)\.(?:conditions\.(\d+)\.)?(\w+)$")


@dataclass
class Condition:
    property: str = ""
    operator: str = "EQUAL"
    value: str = ""

    def is_blank(self) -> bool:
        return not self.property.strip() and not self.value.strip()


@dataclass
class Group:
    type: str = "ALL"
    conditions: list[Condition] = field(default_factory=list)


def groups_from_rules(rules: list[Any]) -> tuple[list[Group], bool]:
    """The editor's groups for stored rules; True when deeper nesting had to be flattened."""
    groups: list[Group] = []
    flattened = False

    def conditions(rule: dict[str, Any]) -> list[Condition]:
        return [
            Condition(c.get("property") or "", c.get("operator", "EQUAL"), c.get("value") or "")
            for c in rule.get("conditions", [])
        ]

    for top in rules:
        if top.get("conditions"):
            groups.append(Group(top.get("type", "ALL"), conditions(top)))
        for child in top.get("rules", []):
            if child.get("rules"):
                flattened = True
            groups.append(Group(child.get("type", "ALL"), conditions(child)))
        if top.get("type") != "ALL" and top.get("rules"):
            flattened = True
    return groups, flattened


def groups_from_form(dash: DashContext) -> list[Group]:
    groups = []
    count = min(_int(dash.value("groups")), MAX_GROUPS)
    for i in range(count):
        if dash.value(f"g{i}_removed") == "1":
            continue
        group = Group(dash.value(f"g{i}_type", "ALL"))
        for j in range(min(_int(dash.value(f"g{i}_count")), MAX_CONDITIONS)):
            group.conditions.append(
                Condition(
                    dash.value(f"g{i}_c{j}_property"),
                    dash.value(f"g{i}_c{j}_operator", "EQUAL"),
                    dash.value(f"g{i}_c{j}_value"),
                )
            )
        groups.append(group)
    return groups


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def rule_inputs(groups: list[Group]) -> list[RuleInput]:
    """One ALL rule holding each group as a sub-rule, as the reference's dashboard saves them."""
    children = [
        RuleInput(
            type=g.type,
            conditions=tuple(
                ConditionInput(
                    c.operator,
                    c.property.strip() or None,
                    None if c.operator in VALUELESS_OPERATORS else c.value,
                )
                for c in g.conditions
                if not c.is_blank() or c.operator == "PERCENTAGE_SPLIT"
            ),
        )
        for g in groups
    ]
    children = [c for c in children if c.conditions]
    return [RuleInput(type="ALL", rules=tuple(children))] if children else []


def _form_field(error: EnsignError, groups: list[Group]) -> str:
    """The editor field a service error names (`rules.0.rules.1.conditions.2.value`)."""
    match = _PATH.match(error.field or "")
    if not match:
        return "rules"
    kept = [i for i, g in enumerate(groups) if any(not c.is_blank() for c in g.conditions)]
    group, condition, name = match.groups()
    index = kept[int(group)] if int(group) < len(kept) else int(group)
    if condition is None:
        return f"g{index}_{name}"
    return f"g{index}_c{condition}_{name}"


def _editor(
    dash: DashContext,
    env_id: int,
    segment_id: int | None,
    *,
    name: str,
    description: str,
    groups: list[Group],
    errors: FormErrors | None = None,
    flattened: bool = False,
    status: int = 200,
) -> Response:
    for group in groups:
        if not group.conditions or not group.conditions[-1].is_blank():
            group.conditions.append(Condition())
    if not groups:
        groups.append(Group(conditions=[Condition()]))
    with reading(dash.state) as session:
        context = nav.environment_context(session, dash.user, env_id, "segments")
        segment = None
        if segment_id is not None:
            segment = segments.get_segment(
                session, dash.user, context["environment"].project_id, segment_id
            )
        context.update(
            segment=segment,
            name=name,
            description=description,
            groups=groups,
            operators=OPERATORS,
            rule_types=RULE_TYPES,
            errors=errors or FormErrors(),
            flattened=flattened,
        )
        return render(dash, "pages/segment.html", context, status_code=status)


@router.get("/environments/{env_id}/segments")
def list_segments(env_id: int, dash: DashContext) -> Response:
    with reading(dash.state) as session:
        context = nav.environment_context(session, dash.user, env_id, "segments")
        items = segments.list_segments(
            session, dash.user, context["environment"].project_id, nav.ALL
        ).items
        context["segments"] = items
        return render(dash, "pages/segments.html", context)


@router.get("/environments/{env_id}/segments/new")
def new_segment(env_id: int, dash: DashContext) -> Response:
    return _editor(dash, env_id, None, name="", description="", groups=[])


@router.get("/environments/{env_id}/segments/{segment_id}")
def show_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    with reading(dash.state) as session:
        env = nav.environment(session, dash.user, env_id)
        segment = segments.get_segment(session, dash.user, env.project_id, segment_id)
        groups, flattened = groups_from_rules(list(segment.rules))
        name, description = segment.name, segment.description or ""
    return _editor(
        dash,
        env_id,
        segment_id,
        name=name,
        description=description,
        groups=groups,
        flattened=flattened,
    )


@router.post("/environments/{env_id}/segments")
def create_segment(env_id: int, dash: DashContext) -> Response:
    return _save(dash, env_id, None)


@router.post("/environments/{env_id}/segments/{segment_id}")
def update_segment(env_id: int, segment_id: int, dash: DashContext) -> Response:
    return _save(dash, env_id, segment_id)


def _save(dash: DashContext, env_id: int, segment_id: int | None) -> Response:
    groups = groups_from_form(dash)
    name, description = dash.value("name"), dash.value("description")
    action = dash.value("action", "save")
    if action == "add_group":
        groups.append(Group(conditions=[Condition()]))
    elif action.startswith("add_condition_") and action[14:].isdigit():
        index = int(action[14:])
        if index < len(groups):
            groups[index].conditions.append(Condition())
    if action != "save":
        return _editor(dash, env_id, segment_id, name=name, description=description, groups=groups)
    errors = FormErrors()
    name = check_name(errors, name)
    rules = rule_inputs(groups)
    if not rules:
        errors.set("rules", "Add at least one condition.")
    if not errors:
        try:
            with dash.state.write() as session:
                env = nav.environment(session, dash.user, env_id)
                if segment_id is None:
                    saved = segments.create_segment(
                        session,
                        dash.user,
                        env.project_id,
                        name=name,
                        rules=rules,
                        description=description.strip() or None,
                    )
                else:
                    saved = segments.update_segment(
                        session,
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
                errors.fields[_form_field(error, groups)] = errors.fields.pop(error.field)
    if errors:
        return _editor(
            dash,
            env_id,
            segment_id,
            name=name,
            description=description,
            groups=groups,
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
    with reading(dash.state) as session:
        env = nav.environment(session, dash.user, env_id)
        segment = segments.get_segment(session, dash.user, env.project_id, segment_id)
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
    with reading(dash.state) as session:
        env = nav.environment(session, dash.user, env_id)
        segment = segments.get_segment(session, dash.user, env.project_id, segment_id)
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
    with dash.state.write() as session:
        env = nav.environment(session, dash.user, env_id)
        segments.delete_segment(session, dash.user, env.project_id, segment_id)
    dash.flash("Segment deleted.")
    return redirect(f"/environments/{env_id}/segments")
