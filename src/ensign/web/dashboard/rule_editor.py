"""The segment rule editor's form: a tree of ALL/ANY/NONE groups, each with conditions and
nested groups, read from stored rules or from the submitted form and saved back unchanged.

Form fields are named by position: group `g0_g2` is the third group inside the first top-level
group, `g0_g2_c1_value` the value of its second condition. Editing buttons post the whole form
with `action` naming what to add or remove, so the editor works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ensign.engine.operators import VALUELESS_OPERATORS
from ensign.services.admin.segments import MAX_RULE_DEPTH, ConditionInput, RuleInput

# Bounds on what a submitted form can make the parser build, whatever its counts claim.
MAX_CHILDREN = 100
MAX_CONDITIONS = 1000
MAX_NODES = 3000

Field = Callable[[str, str], str]


@dataclass
class Condition:
    property: str = ""
    operator: str = "EQUAL"
    value: str = ""
    # The fields stored as "" rather than null: both show as an empty box, and a save must
    # give back what the admin API stored.
    empty: frozenset[str] = frozenset()

    def is_blank(self) -> bool:
        return not self.property.strip() and not self.value.strip()


@dataclass
class Group:
    type: str = "ALL"
    conditions: list[Condition] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


@dataclass
class Editor:
    """The groups shown at the top of the editor. `wrapped`: they are stored inside one ALL
    rule, the shape the reference's dashboard saves; otherwise they are the stored top-level
    rules themselves."""

    groups: list[Group] = field(default_factory=list)
    wrapped: bool = True

    def has_conditions(self) -> bool:
        return any(_has_conditions(g) for g in self.groups)


def _has_conditions(group: Group) -> bool:
    return any(not _dropped(c) for c in group.conditions) or any(
        _has_conditions(g) for g in group.groups
    )


def new_editor() -> Editor:
    return Editor([Group(conditions=[Condition()])])


# --- stored rules → editor ------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _condition(stored: dict[str, Any]) -> Condition:
    empty = frozenset(n for n in ("property", "value") if stored.get(n) == "")
    return Condition(
        _text(stored.get("property")),
        str(stored.get("operator", "EQUAL")),
        _text(stored.get("value")),
        empty,
    )


def _group(stored: dict[str, Any]) -> Group:
    return Group(
        str(stored.get("type", "ALL")),
        [_condition(c) for c in stored.get("conditions") or []],
        [_group(r) for r in stored.get("rules") or []],
    )


def from_rules(rules: Sequence[Any]) -> Editor:
    if len(rules) == 1 and rules[0].get("type") == "ALL" and not rules[0].get("conditions"):
        return Editor([_group(r) for r in rules[0].get("rules") or []], wrapped=True)
    return Editor([_group(r) for r in rules], wrapped=False)


# --- submitted form → editor ----------------------------------------------------------------


def _count(text: str, most: int) -> int:
    return min(int(text), most) if text.isdigit() else 0


class _Reader:
    def __init__(self, value: Field) -> None:
        self.value = value
        self.nodes = 0

    def groups(self, prefix: str, count_field: str, depth: int) -> list[Group]:
        if depth > MAX_RULE_DEPTH:
            return []
        found = []
        for i in range(_count(self.value(count_field, ""), MAX_CHILDREN)):
            gid = f"{prefix}g{i}"
            self.nodes += 1
            if self.nodes > MAX_NODES:
                break
            found.append(self.group(gid, depth))
        return found

    def group(self, gid: str, depth: int) -> Group:
        group = Group(self.value(f"{gid}_type", "ALL"))
        for j in range(_count(self.value(f"{gid}_count", ""), MAX_CONDITIONS)):
            self.nodes += 1
            if self.nodes > MAX_NODES:
                return group
            cid = f"{gid}_c{j}"
            group.conditions.append(
                Condition(
                    self.value(f"{cid}_property", ""),
                    self.value(f"{cid}_operator", "EQUAL"),
                    self.value(f"{cid}_value", ""),
                    frozenset(self.value(f"{cid}_empty", "").split()),
                )
            )
        group.groups = self.groups(f"{gid}_", f"{gid}_groups", depth + 1)
        return group


def from_form(value: Field) -> Editor:
    """The editor as submitted; `value(name, default)` reads one form field."""
    return Editor(_Reader(value).groups("", "groups", 1), wrapped=value("wrap", "1") != "0")


# --- editing actions ------------------------------------------------------------------------


def _find(editor: Editor, gid: str) -> Group | None:
    siblings, found = editor.groups, None
    for part in gid.split("_"):
        if not (part.startswith("g") and part[1:].isdigit() and int(part[1:]) < len(siblings)):
            return None
        found = siblings[int(part[1:])]
        siblings = found.groups
    return found


def _parent(editor: Editor, gid: str) -> list[Group] | None:
    """The list that holds group `gid`."""
    head, _, _ = gid.rpartition("_")
    if not head:
        return editor.groups
    parent = _find(editor, head)
    return None if parent is None else parent.groups


def apply(editor: Editor, action: str) -> None:
    """Add or remove a group or a condition, as the button named by `action` asks."""
    verb, _, target = action.partition(":")
    if verb == "add_group" and not target:
        editor.groups.append(Group(conditions=[Condition()]))
    elif verb.startswith("add_condition_") and verb[14:].isdigit():
        apply(editor, f"add_condition:g{verb[14:]}")
    elif verb in ("add_group", "add_condition") and (group := _find(editor, target)):
        if verb == "add_condition":
            group.conditions.append(Condition())
        elif can_nest(editor, target):
            group.groups.append(Group(conditions=[Condition()]))
    elif verb == "remove_group" and (siblings := _parent(editor, target)) is not None:
        index = target.rpartition("_")[2][1:]
        if index.isdigit() and int(index) < len(siblings):
            del siblings[int(index)]
    elif verb == "remove_condition":
        gid, _, cid = target.rpartition("_")
        group = _find(editor, gid)
        if group and cid[:1] == "c" and cid[1:].isdigit() and int(cid[1:]) < len(group.conditions):
            del group.conditions[int(cid[1:])]


def can_nest(editor: Editor, gid: str) -> bool:
    """Whether group `gid` may hold another group within the stored depth limit."""
    stored_depth = gid.count("_") + 1 + (1 if editor.wrapped else 0)
    return stored_depth < MAX_RULE_DEPTH


# --- editor → rules to save -----------------------------------------------------------------


def _dropped(condition: Condition) -> bool:
    # A row left empty is not a condition (no stored condition is blank: each needs a property
    # or, for a split, a percentage).
    return condition.is_blank() and condition.operator != "PERCENTAGE_SPLIT"


def _stored_text(condition: Condition, name: str, text: str) -> str | None:
    if text or name in condition.empty:
        return text
    if name == "value" and condition.operator not in VALUELESS_OPERATORS:
        return text
    return None


def to_rules(editor: Editor) -> tuple[list[RuleInput], dict[str, str]]:
    """The rules to save, and each one's service path (`rules.0.rules.1`) → editor field id."""
    paths: dict[str, str] = {}

    def rule(group: Group, gid: str, path: str) -> RuleInput:
        paths[path] = gid
        conditions: list[ConditionInput] = []
        for j, c in enumerate(group.conditions):
            if _dropped(c):
                continue
            paths[f"{path}.conditions.{len(conditions)}"] = f"{gid}_c{j}"
            conditions.append(
                ConditionInput(
                    c.operator,
                    _stored_text(c, "property", c.property),
                    _stored_text(c, "value", c.value),
                )
            )
        return RuleInput(
            type=group.type,
            conditions=tuple(conditions),
            rules=tuple(
                rule(g, f"{gid}_g{i}", f"{path}.rules.{i}") for i, g in enumerate(group.groups)
            ),
        )

    if editor.wrapped:
        top = "rules.0.rules"
        children = tuple(rule(g, f"g{i}", f"{top}.{i}") for i, g in enumerate(editor.groups))
        return [RuleInput(type="ALL", rules=children)], paths
    return [rule(g, f"g{i}", f"rules.{i}") for i, g in enumerate(editor.groups)], paths


def form_field(error_field: str | None, paths: dict[str, str]) -> str:
    """The editor field a service error names, such as `g0_c2_value` for
    `rules.0.rules.0.conditions.2.value`; "rules" when it names none."""
    path, _, name = (error_field or "").rpartition(".")
    if path in paths:
        return f"{paths[path]}_{name}"
    return "rules"


def group_label(gid: str) -> str:
    """A group's number for people: `g0_g2` is group 1.3."""
    return ".".join(str(int(part[1:]) + 1) for part in gid.split("_"))
