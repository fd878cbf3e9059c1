"""Segments: named rule trees, project-wide or for one feature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ensign.engine.operators import OPERATOR_NAMES, VALUELESS_OPERATORS
from ensign.engine.patterns import pattern_problem
from ensign.errors import InvalidInput
from ensign.services import changes as change_path
from ensign.services.admin import access
from ensign.services.changes import Change
from ensign.services.keys import AdminPrincipal
from ensign.storage import experiments as experiment_store
from ensign.storage import features as feature_store
from ensign.storage import segments as segment_store
from ensign.storage.audit import row_snapshot
from ensign.storage.models import Segment, utcnow
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

RULE_TYPES = frozenset({"ALL", "ANY", "NONE"})
MAX_RULE_DEPTH = 10


@dataclass(frozen=True)
class ConditionInput:
    operator: str
    property: str | None
    value: str | None


@dataclass(frozen=True)
class RuleInput:
    type: str
    rules: Sequence[RuleInput] = field(default_factory=tuple)
    conditions: Sequence[ConditionInput] = field(default_factory=tuple)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def check_condition(condition: ConditionInput, path: str) -> dict[str, Any]:
    if condition.operator not in OPERATOR_NAMES:
        raise InvalidInput(
            f"{path}.operator: unknown operator {condition.operator!r}.", field=f"{path}.operator"
        )
    value = condition.value
    if condition.operator == "PERCENTAGE_SPLIT":
        number = None if value is None else _number(value)
        if number is None or not 0 <= number <= 100:
            raise InvalidInput(
                f"{path}.value: a percentage split needs a number from 0 to 100.",
                field=f"{path}.value",
            )
    elif not condition.property:
        raise InvalidInput(
            f"{path}.property: this operator needs a property.", field=f"{path}.property"
        )
    if condition.operator == "REGEX":
        # What the engine would refuse to compile, and so never match, is refused here.
        problem = pattern_problem(value or "")
        if problem is not None:
            raise InvalidInput(f"{path}.value: {problem}.", field=f"{path}.value")
    if condition.operator == "MODULO":
        parts = (value or "").split("|")
        numbers = [_number(p) for p in parts]
        if len(parts) != 2 or None in numbers or numbers[0] == 0:
            raise InvalidInput(
                f"{path}.value: a modulo condition's value is 'divisor|remainder'.",
                field=f"{path}.value",
            )
    if value is None and condition.operator not in VALUELESS_OPERATORS:
        raise InvalidInput(f"{path}.value: this operator needs a value.", field=f"{path}.value")
    return {"operator": condition.operator, "property": condition.property, "value": value}


def check_rules(rules: Sequence[RuleInput], path: str = "rules", depth: int = 1) -> list[Any]:
    """Validate a rule tree and return it in the stored form, naming the first bad field."""
    if depth > MAX_RULE_DEPTH:
        raise InvalidInput(f"{path}: rules nest too deeply.", field=path)
    checked = []
    for index, rule in enumerate(rules):
        here = f"{path}.{index}"
        if rule.type not in RULE_TYPES:
            raise InvalidInput(f"{here}.type: must be ALL, ANY or NONE.", field=f"{here}.type")
        checked.append(
            {
                "type": rule.type,
                "rules": check_rules(rule.rules, f"{here}.rules", depth + 1),
                "conditions": [
                    check_condition(c, f"{here}.conditions.{i}")
                    for i, c in enumerate(rule.conditions)
                ],
            }
        )
    return checked


def list_segments(
    session: Session, principal: AdminPrincipal, project_id: int, window: Window
) -> Page[Segment]:
    return feature_store.segments(
        session, access.project_for(session, principal, project_id).id, window
    )


def get_segment(
    session: Session, principal: AdminPrincipal, project_id: int, segment_id: int
) -> Segment:
    return access.segment_for(
        session, access.project_for(session, principal, project_id), segment_id
    )


def create_segment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    *,
    name: str,
    rules: Sequence[RuleInput],
    description: str | None = None,
    feature_id: int | None = None,
    managed_by: str | None = None,
) -> Segment:
    """Create a segment; `managed_by` marks one whose rules only its manager may change."""
    session = unit.session
    project = access.project_for(session, principal, project_id)
    if feature_id is not None:
        access.referenced_feature(session, project.id, feature_id)
    segment = segment_store.insert_segment(
        session,
        Segment(
            project_id=project.id,
            name=name,
            description=description,
            feature_id=feature_id,
            rules=check_rules(rules),
            managed_by=managed_by,
        ),
    )
    change_path.apply(
        unit,
        principal,
        [
            _change(
                segment.id,
                change_path.CREATED,
                f"Segment created: {name}",
                project.id,
                after=row_snapshot(segment),
            )
        ],
    )
    return segment


def update_segment(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    project_id: int,
    segment_id: int,
    changes: dict[str, Any],
) -> Segment:
    """Edit a segment. `changes["rules"]`, when given, is a sequence of `RuleInput`."""
    session = unit.session
    segment = get_segment(session, principal, project_id, segment_id)
    before = row_snapshot(segment)
    if "rules" in changes:
        if segment.managed_by is not None:
            raise InvalidInput(
                f"rules: this segment is managed by {segment.managed_by}; its rules cannot be "
                "edited.",
                field="rules",
            )
        segment.rules = check_rules(changes["rules"])
    if "feature" in changes:
        if changes["feature"] is not None:
            access.referenced_feature(session, segment.project_id, changes["feature"])
        segment.feature_id = changes["feature"]
    for name in ("name", "description"):
        if name in changes:
            setattr(segment, name, changes[name])
    feature_store.save(session)
    change_path.apply(
        unit,
        principal,
        [
            _change(
                segment.id,
                change_path.UPDATED,
                f"Segment updated: {segment.name}",
                segment.project_id,
                before=before,
                after=row_snapshot(segment),
            )
        ],
    )
    return segment


def delete_segment(
    unit: UnitOfWork, principal: AdminPrincipal, project_id: int, segment_id: int
) -> None:
    """Delete a segment and, through the database, its overrides."""
    session = unit.session
    segment = get_segment(session, principal, project_id, segment_id)
    before = row_snapshot(segment)
    # An experiment limited to the segment would otherwise widen to everyone: it stops.
    experiment_store.stop_for_segment(session, segment_id, utcnow())
    segment_store.delete_segment(session, segment)
    change_path.apply(
        unit,
        principal,
        [
            _change(
                segment_id,
                change_path.DELETED,
                f"Segment deleted: {before['name']}",
                project_id,
                before=before,
            )
        ],
    )


def _change(
    segment_id: int,
    action: str,
    log: str,
    project_id: int,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Change:
    """A segment's rules decide who gets every override of it: a change reaches every
    environment of its project."""
    return Change(
        resource_type="segment",
        resource_id=segment_id,
        action=action,
        log=log,
        project_id=project_id,
        project_wide=True,
        before=before,
        after=after,
    )
