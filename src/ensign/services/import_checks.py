"""Check a Flagsmith environment document before anything of it is stored.

The import applies the admin API's limits (services.limits, the segment rule depth, and the
settings' value and identifier sizes): a document is a way in like any other, and a rule tree
nested hundreds of levels deep, once stored, makes every evaluation of its environment fail.
The first problem is reported with its JSON path, e.g. `feature_states[3].enabled`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ensign.errors import InvalidInput
from ensign.services.admin.segments import MAX_RULE_DEPTH, RULE_TYPES, ConditionInput
from ensign.services.admin.segments import check_condition as check_admin_condition
from ensign.services.limits import (
    CONDITIONS_PER_RULE,
    ID_MAX,
    LONG_NAME_LENGTH,
    NAME_LENGTH,
    OPTION_KEY_LENGTH,
    PROPERTY_LENGTH,
    RULES_PER_LIST,
    TEXT_LENGTH,
)
from ensign.services.text import is_storable
from ensign.services.values import flag_value_from_json
from ensign.settings import Settings

# Flagsmith keeps integers wider than 32 bits; the import keeps them as text.
_INT32 = 2**31


@dataclass(frozen=True)
class DocumentLimits:
    max_value_bytes: int
    max_identifier_length: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentLimits:
        return cls(settings.max_flag_value_bytes, settings.max_identifier_length)


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", field=path)


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object.")
    return value


def _items(parent: dict[str, Any], key: str, path: str, most: int | None = None) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, "must be a list.")
    if most is not None and len(value) > most:
        raise _fail(path, f"at most {most} entries.")
    return value


def _text(value: Any, path: str, longest: int, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        raise _fail(path, "must be a non-empty string." if required else "must be a string.")
    if len(value) > longest:
        raise _fail(path, f"longer than {longest} characters.")
    if not is_storable(value):
        raise _fail(path, "must not contain NUL characters or unpaired surrogates.")


def _flag(parent: dict[str, Any], key: str, path: str, *, nullable: bool = True) -> None:
    value = parent.get(key)
    if not isinstance(value, bool) and not (nullable and value is None):
        raise _fail(path, "must be a boolean.")


def _id(value: Any, path: str) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ID_MAX
    ):
        raise _fail(path, f"must be an integer from 0 to {ID_MAX}, or null.")


def _value(value: Any, path: str, limits: DocumentLimits) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT32 <= value < _INT32:
        value = str(value)
    flag_value_from_json(value, field=path, max_bytes=limits.max_value_bytes)
    if isinstance(value, str) and not is_storable(value):
        raise _fail(path, "must not contain NUL characters or unpaired surrogates.")


def check_document(document: Any, limits: DocumentLimits) -> None:
    """Raise InvalidInput naming the JSON path of the first problem in `document`."""
    document = _obj(document, "(document)")
    project = _obj(document.get("project"), "project")
    _text(document.get("api_key"), "api_key", NAME_LENGTH)
    _text(document.get("name"), "name", NAME_LENGTH, required=False)
    for key in (
        "allow_client_traits",
        "hide_sensitive_data",
        "hide_disabled_flags",
        "use_identity_overrides_in_local_eval",
    ):
        _flag(document, key, key)
    _text(project.get("name"), "project.name", NAME_LENGTH)
    for key in ("hide_disabled_flags", "enable_realtime_updates"):
        _flag(project, key, f"project.{key}")
    for i, feature_id in enumerate(
        _items(project, "server_key_only_feature_ids", "project.server_key_only_feature_ids")
    ):
        _id(feature_id, f"project.server_key_only_feature_ids[{i}]")
    for i, state in enumerate(_items(document, "feature_states", "feature_states")):
        _state(state, f"feature_states[{i}]", limits)
    for i, segment in enumerate(_items(project, "segments", "project.segments")):
        path = f"project.segments[{i}]"
        segment = _obj(segment, path)
        _text(segment.get("name"), f"{path}.name", LONG_NAME_LENGTH)
        _id(segment.get("id"), f"{path}.id")
        _rules(segment, f"{path}.rules", 1)
        for j, state in enumerate(_items(segment, "feature_states", f"{path}.feature_states")):
            _state(state, f"{path}.feature_states[{j}]", limits)
    for i, identity in enumerate(_items(document, "identity_overrides", "identity_overrides")):
        path = f"identity_overrides[{i}]"
        identity = _obj(identity, path)
        _text(identity.get("identifier"), f"{path}.identifier", limits.max_identifier_length)
        for j, state in enumerate(
            _items(identity, "identity_features", f"{path}.identity_features")
        ):
            _state(state, f"{path}.identity_features[{j}]", limits)


def _state(state: Any, path: str, limits: DocumentLimits) -> None:
    state = _obj(state, path)
    feature = _obj(state.get("feature"), f"{path}.feature")
    _text(feature.get("name"), f"{path}.feature.name", LONG_NAME_LENGTH)
    _flag(state, "enabled", f"{path}.enabled")
    _value(state.get("feature_state_value"), f"{path}.feature_state_value", limits)
    _id(state.get("django_id"), f"{path}.django_id")
    _text(state.get("featurestate_uuid"), f"{path}.featurestate_uuid", NAME_LENGTH, required=False)
    feature_segment = state.get("feature_segment")
    if feature_segment is not None:
        _id(
            _obj(feature_segment, f"{path}.feature_segment").get("priority"),
            f"{path}.feature_segment.priority",
        )
    variants = _items(
        state, "multivariate_feature_state_values", f"{path}.multivariate_feature_state_values"
    )
    for i, variant in enumerate(variants):
        here = f"{path}.multivariate_feature_state_values[{i}]"
        variant = _obj(variant, here)
        share = variant.get("percentage_allocation")
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 100
        ):
            raise _fail(f"{here}.percentage_allocation", "must be a number from 0 to 100.")
        _id(variant.get("id"), f"{here}.id")
        option = _obj(
            variant.get("multivariate_feature_option"), f"{here}.multivariate_feature_option"
        )
        _value(option.get("value"), f"{here}.multivariate_feature_option.value", limits)
        _text(
            option.get("key"),
            f"{here}.multivariate_feature_option.key",
            OPTION_KEY_LENGTH,
            required=False,
        )


def _rules(parent: dict[str, Any], key: str, depth: int) -> None:
    rules = _items(parent, key.rsplit(".", 1)[-1], key, RULES_PER_LIST)
    if rules and depth > MAX_RULE_DEPTH:
        raise _fail(key, f"rules nest too deeply (at most {MAX_RULE_DEPTH} levels).")
    for i, rule in enumerate(rules):
        path = f"{key}[{i}]"
        rule = _obj(rule, path)
        if rule.get("type", "ALL") not in RULE_TYPES:
            raise _fail(f"{path}.type", "must be ALL, ANY or NONE.")
        _rules(rule, f"{path}.rules", depth + 1)
        conditions = _items(rule, "conditions", f"{path}.conditions", CONDITIONS_PER_RULE)
        for j, condition in enumerate(conditions):
            _condition(condition, f"{path}.conditions[{j}]")


def _condition(condition: Any, path: str) -> None:
    condition = _obj(condition, path)
    operator = condition.get("operator")
    if not isinstance(operator, str):
        raise _fail(f"{path}.operator", "must be a string.")
    prop = condition.get("property_", condition.get("property"))
    _text(prop, f"{path}.property_", PROPERTY_LENGTH, required=False)
    value = condition.get("value")
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    _text(value, f"{path}.value", TEXT_LENGTH, required=False)
    check_admin_condition(ConditionInput(operator, prop, value), path)
