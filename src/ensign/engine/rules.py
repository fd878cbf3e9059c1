"""Segment, rule and condition matching, compiled once into plain closures.

A compiled predicate takes a :class:`~ensign.engine.subject.Subject` and answers whether it
matches. Conditions are pure and never raise, so within a rule they are reordered cheapest
first; that changes only how soon a rule short-circuits, never its answer.
"""

import re
from collections.abc import Callable, Sequence
from typing import Any

import jsonpath_rfc9535

from ensign.engine.coercion import Scalar, coerce_context_value
from ensign.engine.errors import EngineError
from ensign.engine.operators import compile_operator
from ensign.engine.subject import Subject

Predicate = Callable[[Subject], bool]
Getter = Callable[[Subject], Scalar | None]

_JSONPATH_PREFIX = "$."
# A path of plain member names can be walked with dict lookups instead of the JSONPath library.
_SIMPLE_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+")

# Relative cost of a condition, to try cheap ones first.
_COST_PLAIN = 1
_COST_REGEX = 2
_COST_BUCKET = 3
_COST_JSONPATH = 4


def _always(_subject: Subject) -> bool:
    return True


def _never(_subject: Subject) -> bool:
    return False


def _found(value: Any) -> Scalar | None:
    # An object or array found by a JSONPath query counts as "not set".
    if value is None or isinstance(value, dict | list):
        return None
    return coerce_context_value(value)


def _walk(node: Any, names: Sequence[str]) -> Any:
    for name in names:
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


def _jsonpath_getter(path: str, base: dict[str, Any]) -> tuple[Getter, int]:
    """Resolve ``$.``-properties: a trait of that exact name first, else a JSONPath query."""
    if _SIMPLE_PATH.fullmatch(path):
        names = path[2:].split(".")
        if names[0] == "identity":
            rest = names[1:]

            def identity_member(subject: Subject) -> Scalar | None:
                value = subject.traits.get(path)
                if value is not None:
                    return value
                return _found(_walk(subject.identity, rest))

            return identity_member, _COST_PLAIN
        # Anything outside the identity is fixed for the compiled environment.
        constant = _found(_walk(base, names))

        def environment_member(subject: Subject) -> Scalar | None:
            value = subject.traits.get(path)
            return constant if value is None else value

        return environment_member, _COST_PLAIN
    try:
        query = jsonpath_rfc9535.compile(path)
    except Exception:  # not valid JSONPath: the text is only a trait name
        return _trait_getter(path), _COST_PLAIN

    def queried(subject: Subject) -> Scalar | None:
        value = subject.traits.get(path)
        if value is not None:
            return value
        try:
            node = query.find_one(subject.document())
        except Exception:  # a query failing at runtime means the value is not there
            return None
        return None if node is None else _found(node.value)

    return queried, _COST_JSONPATH


def _trait_getter(name: object) -> Getter:
    if not isinstance(name, str):
        return lambda _subject: None
    return lambda subject: subject.traits.get(name)


def _identity_key(subject: Subject) -> Scalar | None:
    # Unlike traits, the identity key is hashed as given: "007" is not read as 7.
    return subject.key


def compile_condition(
    condition: Any, segment_key: str, base: dict[str, Any], where: str
) -> tuple[Predicate, int]:
    """Compile one condition into a predicate and its relative cost."""
    if not isinstance(condition, dict) or "operator" not in condition:
        raise EngineError(f"{where}.operator: every condition needs an operator")
    name = condition["operator"]
    prop = condition.get("property")
    raw = condition.get("value")

    if name == "PERCENTAGE_SPLIT" and not prop:
        # The legacy form: split on the identity key itself.
        getter: Getter = _identity_key
        cost = _COST_PLAIN
    elif isinstance(prop, str) and prop.startswith(_JSONPATH_PREFIX):
        getter, cost = _jsonpath_getter(prop, base)
    else:
        getter, cost = _trait_getter(prop), _COST_PLAIN

    if name == "IS_SET":
        return (lambda subject: getter(subject) is not None), cost
    if name == "IS_NOT_SET":
        return (lambda subject: getter(subject) is None), cost

    matcher = compile_operator(name, raw)
    if name == "PERCENTAGE_SPLIT":

        def split(subject: Subject) -> bool:
            value = getter(subject)
            return value is not None and matcher(subject.bucket(segment_key, value))

        return split, cost + _COST_BUCKET

    def compare(subject: Subject) -> bool:
        value = getter(subject)
        return value is not None and matcher(value)

    return compare, cost + (_COST_REGEX if name == "REGEX" else 0)


def _all(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]
    frozen = tuple(predicates)

    # Explicit loops: all()/any() over a generator cost about twice as much on this hot path.
    def all_match(subject: Subject) -> bool:
        for predicate in frozen:  # noqa: SIM110
            if not predicate(subject):
                return False
        return True

    return all_match


def _any(predicates: list[Predicate]) -> Predicate:
    # An empty part of an ANY rule is true, unlike Python's any([]).
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]
    frozen = tuple(predicates)

    def any_match(subject: Subject) -> bool:
        for predicate in frozen:  # noqa: SIM110
            if predicate(subject):
                return True
        return False

    return any_match


def _none(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return _always
    frozen = tuple(predicates)

    def none_match(subject: Subject) -> bool:
        for predicate in frozen:  # noqa: SIM110
            if predicate(subject):
                return False
        return True

    return none_match


def _by_cost(compiled: list[tuple[Predicate, int]]) -> list[Predicate]:
    return [predicate for predicate, _ in sorted(compiled, key=lambda item: item[1])]


def compile_rule(
    rule: Any, segment_key: str, base: dict[str, Any], where: str
) -> tuple[Predicate, int]:
    """Compile a rule: its conditions and its nested rules each combined by the rule's type."""
    if not isinstance(rule, dict):
        raise EngineError(f"{where}: a rule must be an object")
    kind = rule.get("type")
    if kind not in ("ALL", "ANY", "NONE"):
        raise EngineError(f"{where}.type: unknown rule type {kind!r}")
    conditions = [
        compile_condition(condition, segment_key, base, f"{where}.conditions[{index}]")
        for index, condition in enumerate(_list(rule, "conditions", where))
    ]
    subrules = [
        compile_rule(subrule, segment_key, base, f"{where}.rules[{index}]")
        for index, subrule in enumerate(_list(rule, "rules", where))
    ]
    cost = sum(item[1] for item in conditions) + sum(item[1] for item in subrules)
    if kind == "ANY":
        # Both parts must hold, so they cannot be merged into one list.
        parts = [
            (_any(_by_cost(conditions)), sum(item[1] for item in conditions)),
            (_any(_by_cost(subrules)), sum(item[1] for item in subrules)),
        ]
        return _all(_by_cost([part for part in parts if part[0] is not _always])), cost
    # ALL of both parts is ALL of their union; NONE of both parts is NONE of their union.
    merged = _by_cost(conditions + subrules)
    return (_all(merged) if kind == "ALL" else _none(merged)), cost


def compile_segment_rules(
    rules: Any, segment_key: str, base: dict[str, Any], where: str
) -> Predicate:
    """A segment matches when it has at least one rule and every top-level rule matches."""
    if not isinstance(rules, list):
        raise EngineError(f"{where}.rules: a segment needs a list of rules")
    if not rules:
        return _never
    compiled = [
        compile_rule(rule, segment_key, base, f"{where}.rules[{index}]")
        for index, rule in enumerate(rules)
    ]
    return _all(_by_cost(compiled))


def _list(container: dict[str, Any], field: str, where: str) -> list[Any]:
    value = container.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise EngineError(f"{where}.{field}: must be a list")
    return value
