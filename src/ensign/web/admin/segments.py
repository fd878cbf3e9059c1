"""A project's segments: their rules and conditions, as the reference's admin API takes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field, field_validator

from ensign.engine.operators import OPERATOR_NAMES
from ensign.services.admin import segments
from ensign.services.admin.segments import ConditionInput, RuleInput
from ensign.services.limits import CONDITIONS_PER_RULE, RULES_PER_LIST
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import Body, Id, LongName, Patch, Property, Text
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Projects"])
route = admin_route

# The engine's operator table, as a Literal so that the OpenAPI document lists them as an enum.
# Type checkers cannot read a Literal built from a variable; to them it is text.
if TYPE_CHECKING:
    Operator = str
else:
    Operator = Literal[OPERATOR_NAMES]


def _condition_value_text(value: Any) -> Any:
    """Condition values are text in the reference; numbers and booleans are accepted as it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value


class ConditionIn(Body):
    operator: Operator
    property: Property | None = None
    value: Text | None = None

    _value = field_validator("value", mode="before")(_condition_value_text)


class RuleIn(Body):
    type: Literal["ALL", "ANY", "NONE"]
    rules: list[RuleIn] = Field(default_factory=list, max_length=RULES_PER_LIST)
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=CONDITIONS_PER_RULE)


class SegmentCreate(Body):
    name: LongName
    description: Text | None = None
    feature: Id | None = None
    rules: list[RuleIn] = Field(default_factory=list, max_length=RULES_PER_LIST)


class SegmentUpdate(Patch):
    nullable = frozenset({"description", "feature"})
    name: LongName | None = None
    description: Text | None = None
    feature: Id | None = None
    rules: list[RuleIn] | None = Field(default=None, max_length=RULES_PER_LIST)


def _rules(rules: list[RuleIn]) -> list[RuleInput]:
    return [
        RuleInput(
            type=rule.type,
            rules=_rules(rule.rules),
            conditions=[
                ConditionInput(operator=c.operator, property=c.property, value=c.value)
                for c in rule.conditions
            ],
        )
        for rule in rules
    ]


@route(router, "/projects/{project_id}/segments/", ["GET"], summary="List segments")
def list_segments(
    project_id: int, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = segments.list_segments(unit.session, principal, project_id, paging.window)
        return paginated(request, paging, page, render.segment)


@route(
    router,
    "/projects/{project_id}/segments/",
    ["POST"],
    status_code=201,
    summary="Create a segment",
)
def create_segment(
    project_id: int, body: SegmentCreate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = segments.create_segment(
            unit,
            principal,
            project_id,
            name=body.name,
            description=body.description,
            feature_id=body.feature,
            rules=_rules(body.rules),
        )
        return render.segment(row)


@route(router, "/projects/{project_id}/segments/{segment_id}/", ["GET"], summary="Read a segment")
def get_segment(project_id: int, segment_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.segment(segments.get_segment(unit.session, principal, project_id, segment_id))


@route(
    router,
    "/projects/{project_id}/segments/{segment_id}/",
    ["PUT", "PATCH"],
    summary="Update a segment",
)
def update_segment(
    project_id: int, segment_id: int, body: SegmentUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    changes = body.changes()
    if body.rules is not None:
        changes["rules"] = _rules(body.rules)
    with state.units.write() as unit:
        row = segments.update_segment(unit, principal, project_id, segment_id, changes)
        return render.segment(row)


@route(
    router,
    "/projects/{project_id}/segments/{segment_id}/",
    ["DELETE"],
    status_code=204,
    summary="Delete a segment",
)
def delete_segment(project_id: int, segment_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        segments.delete_segment(unit, principal, project_id, segment_id)
    return no_content()
