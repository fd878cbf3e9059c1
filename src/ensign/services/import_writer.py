"""Writing one imported environment document's rows: the importer behind `importing`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput
from ensign.services.values import encode_flag_value, flag_value_from_json
from ensign.storage import features as feature_store
from ensign.storage import identities as identity_store
from ensign.storage import imports as import_store
from ensign.storage.models import (
    Environment,
    Feature,
    FeatureState,
    MultivariateOption,
    MultivariateStateValue,
    Project,
    Segment,
)

# Checked by check_document first; this only bounds the conversion itself.


# Imported values may be larger than the admin API allows; the document check bounds them.
_IMPORT_VALUE_BYTES = 10_000_000


class DocumentImporter:
    def __init__(
        self,
        session: Session,
        project: Project,
        environment: Environment,
        project_doc: dict[str, Any],
    ) -> None:
        self.session = session
        self.project = project
        self.environment = environment
        self.server_only = set(project_doc.get("server_key_only_feature_ids") or [])
        self.features: dict[str, Feature] = {}
        self.options: dict[tuple[int, Any], MultivariateOption] = {}
        self.has_default: set[int] = set()
        self.kept_segment_ids = False
        self.segment_count = 0
        self.identity_count = 0

    def feature_for(self, feature_doc: dict[str, Any]) -> Feature:
        name = string_at(feature_doc, "name")
        feature = self.features.get(name)
        if feature is None:
            feature = Feature(
                project_id=self.project.id,
                name=name,
                is_server_key_only=feature_doc.get("id") in self.server_only,
            )
            import_store.insert(self.session, feature)
            self.features[name] = feature
        return feature

    def option_for(
        self, feature: Feature, mv_doc: dict[str, Any], allocation: float
    ) -> MultivariateOption:
        option_doc = object_at(mv_doc, "multivariate_feature_option")
        value = _value(option_doc.get("value"))
        identity = option_doc.get("id") or ("value", repr(value))
        option = self.options.get((feature.id, identity))
        if option is None:
            value_type, value_text = encode_flag_value(value)
            option = MultivariateOption(
                feature_id=feature.id,
                value_type=value_type,
                value_text=value_text,
                key=option_doc.get("key"),
                default_percentage_allocation=allocation,
            )
            import_store.insert(self.session, option)
            self.options[(feature.id, identity)] = option
        return option

    def add_state(
        self,
        state_doc: Any,
        *,
        scope: str,
        segment_id: int | None = None,
        identity_id: int | None = None,
    ) -> None:
        if not isinstance(state_doc, dict):
            raise InvalidInput("feature_states: each entry must be an object.")
        feature = self.feature_for(object_at(state_doc, "feature"))
        if scope == "" and feature.id in self.has_default:
            return
        value_type, value_text = encode_flag_value(_value(state_doc.get("feature_state_value")))
        django_id = state_doc.get("django_id")
        feature_segment = state_doc.get("feature_segment") or {}
        state = FeatureState(
            environment_id=self.environment.id,
            feature_id=feature.id,
            scope=scope,
            segment_id=segment_id,
            identity_id=identity_id,
            priority=feature_segment.get("priority") if segment_id is not None else None,
            enabled=bool(state_doc.get("enabled", False)),
            value_type=value_type,
            value_text=value_text,
            uuid=str(state_doc.get("featurestate_uuid") or uuid.uuid4()),
            hash_seed=django_id if isinstance(django_id, int) and django_id else None,
        )
        import_store.insert(self.session, state)
        if state.hash_seed is None and not state_doc.get("featurestate_uuid"):
            # Nothing to keep: seed from the new state's own id, as for states made here.
            state.hash_seed = state.id
        if state.hash_seed is not None:
            feature_store.remember_hashing_seed(
                self.session, self.environment.id, feature.id, scope, state.hash_seed
            )
        values = []
        for mv_doc in state_doc.get("multivariate_feature_state_values") or []:
            allocation = float(mv_doc.get("percentage_allocation") or 0)
            option = self.option_for(feature, mv_doc, allocation)
            mv_id = mv_doc.get("id")
            values.append(
                MultivariateStateValue(
                    feature_state_id=state.id,
                    option_id=option.id,
                    percentage_allocation=allocation,
                    uuid=str(mv_doc.get("mv_fs_value_uuid") or uuid.uuid4()),
                    hash_id=mv_id if isinstance(mv_id, int) and mv_id else None,
                )
            )
        import_store.add_rows(self.session, values)
        if scope == "":
            self.has_default.add(feature.id)
            feature.default_enabled = state.enabled
            feature.initial_value = value_text

    def ensure_defaults(self) -> None:
        """Every feature needs a default state; one seen only in overrides gets a disabled one."""
        for feature in list(self.features.values()):
            if feature.id not in self.has_default:
                self.add_state(
                    {
                        "feature": {"name": feature.name},
                        "enabled": False,
                        "feature_state_value": None,
                    },
                    scope="",
                )

    def add_segment(self, segment_doc: Any) -> None:
        if not isinstance(segment_doc, dict):
            raise InvalidInput("project.segments: each entry must be an object.")
        segment = Segment(
            project_id=self.project.id,
            name=string_at(segment_doc, "name"),
            rules=[_rule(rule) for rule in list_at(segment_doc, "rules")],
        )
        doc_id = segment_doc.get("id")
        # A segment's id is its hashing key for percentage splits: keeping it keeps every
        # identity in the same split as in the reference. Ids already taken get a new one.
        if (
            isinstance(doc_id, int)
            and not isinstance(doc_id, bool)
            and 0 < doc_id < 2**31
            and not import_store.segment_id_taken(self.session, doc_id)
        ):
            segment.id = doc_id
            self.kept_segment_ids = True
        import_store.insert(self.session, segment)
        self.segment_count += 1
        for state_doc in segment_doc.get("feature_states") or []:
            self.add_state(state_doc, scope=f"s{segment.id}", segment_id=segment.id)
        self.ensure_defaults()

    def add_identity_overrides(self, identity_doc: Any) -> None:
        if not isinstance(identity_doc, dict):
            raise InvalidInput("identity_overrides: each entry must be an object.")
        identifier = string_at(identity_doc, "identifier")
        identity_id, _ = identity_store.get_or_create_identity(
            self.session, self.environment.id, identifier
        )
        self.identity_count += 1
        for state_doc in identity_doc.get("identity_features") or []:
            self.add_state(state_doc, scope=f"i{identity_id}", identity_id=identity_id)
        self.ensure_defaults()


def _rule(rule: Any) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise InvalidInput("segment rules: each rule must be an object.")
    return {
        "type": rule.get("type", "ALL"),
        "rules": [_rule(r) for r in rule.get("rules") or []],
        "conditions": [
            {
                "operator": c.get("operator"),
                "property": c.get("property_", c.get("property")),
                "value": c.get("value"),
            }
            for c in rule.get("conditions") or []
            if isinstance(c, dict)
        ],
    }


def _value(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return str(value)
    return flag_value_from_json(value, field="feature_state_value", max_bytes=_IMPORT_VALUE_BYTES)


def object_at(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"{key}: an object is required.", field=key)
    return value


def string_at(parent: dict[str, Any], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key}: a non-empty string is required.", field=key)
    return value


def list_at(parent: dict[str, Any], key: str) -> list[Any]:
    value = parent.get(key) or []
    if not isinstance(value, list):
        raise InvalidInput(f"{key}: a list is required.", field=key)
    return value
