"""Import a Flagsmith environment document (contract §4) as a new project and environment.

The import keeps everything that decides who gets which value: the client key (identity
hashing keys are `<client key>_<identifier>`), each state's `django_id` (the multivariate
seed), multivariate value ids (variant order), segment ids' order, priorities and the
identity overrides. So after an import, every identity gets what the reference would give it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput
from ensign.services.import_checks import DocumentLimits, check_document
from ensign.services.keys import new_client_key, new_server_key
from ensign.services.text import check_json_text, check_text
from ensign.services.values import encode_flag_value, flag_value_from_json
from ensign.settings import Settings
from ensign.storage import audit as audit_store
from ensign.storage import dialect
from ensign.storage import environments as environment_store
from ensign.storage import features as feature_store
from ensign.storage import identities as identity_store
from ensign.storage.models import (
    Environment,
    Feature,
    FeatureState,
    MultivariateOption,
    MultivariateStateValue,
    Project,
    Segment,
    ServerKey,
)

# Checked by check_document first; this only bounds the conversion itself.
_IMPORT_VALUE_BYTES = 10_000_000
# Each transaction of identity overrides holds SQLite's write lock while it runs (about a
# millisecond per identity on an idle machine); these bound a live write's wait for it.
IDENTITIES_PER_TRANSACTION = 500
TRANSACTION_SECONDS = 0.2
PAUSE_SECONDS = 0.12


@dataclass(frozen=True)
class ImportResult:
    project_id: int
    environment_id: int
    environment_key: str
    server_key: str

    def as_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "environment_key": self.environment_key,
            "server_key": self.server_key,
        }


def import_document(
    session: Session,
    organisation_id: int,
    document: Any,
    *,
    project_name: str | None = None,
    actor: str = "system",
    limits: DocumentLimits | None = None,
) -> ImportResult:
    """Create a project and an environment equivalent to `document` in one transaction (for
    small documents: the demo, tests). The document is checked against the admin API's limits
    before anything is written."""
    _check(document, project_name, limits)
    importer = _start(session, organisation_id, document, project_name)
    for identity_doc in _list(document, "identity_overrides"):
        importer.add_identity_overrides(identity_doc)
    return _finish(session, importer, organisation_id, actor)


def _check(document: Any, project_name: str | None, limits: DocumentLimits | None) -> None:
    """Everything that can be refused is refused before anything is written."""
    if project_name is not None:
        check_text(project_name, "project_name")
    check_json_text(document)
    check_document(document, limits or DocumentLimits.from_settings(Settings()))


def import_document_in_batches(
    begin: Callable[[], AbstractContextManager[Session]],
    organisation_id: int,
    document: Any,
    *,
    project_name: str | None = None,
    actor: str = "system",
    limits: DocumentLimits | None = None,
    batch_size: int = IDENTITIES_PER_TRANSACTION,
) -> ImportResult:
    """`import_document` in many short transactions, each opened by `begin`.

    Identity overrides are written at most `batch_size` identities (and about
    TRANSACTION_SECONDS) at a time, so that live writes never
    wait long for the database; the environment stays unknown to the SDK until the last
    transaction, and everything written is removed if any fails.
    """
    _check(document, project_name, limits)
    with begin() as session:
        importer = _start(session, organisation_id, document, project_name)
    try:
        overrides = _list(document, "identity_overrides")
        position = 0
        while position < len(overrides):
            with begin() as session:
                importer.session = session
                # Bounded by time as well as size: on a busy machine a few hundred identities
                # can take seconds, and live writes wait for the whole transaction.
                deadline = time.monotonic() + TRANSACTION_SECONDS
                end = min(position + batch_size, len(overrides))
                while position < end and time.monotonic() < deadline:
                    importer.add_identity_overrides(overrides[position])
                    position += 1
                waiting_writers_poll = not dialect.is_postgres(session)
            if waiting_writers_poll:
                # SQLite's waiting writers poll for the lock, sleeping up to 100 ms between
                # tries; taking it again at once would starve them for the whole import.
                time.sleep(PAUSE_SECONDS)
        with begin() as session:
            return _finish(session, importer, organisation_id, actor)
    except BaseException:
        with begin() as session:
            project = session.get(Project, importer.project.id)
            if project is not None:
                session.delete(project)
        raise


def _start(
    session: Session, organisation_id: int, document: dict[str, Any], project_name: str | None
) -> _Importer:
    """The project, the hidden environment, its features and segments: one transaction."""
    project_doc = _object(document, "project")
    # Older documents have no environment name; the environment still needs one.
    name = document.get("name") or "Imported environment"
    api_key = _string(document, "api_key")
    if environment_store.environment_by_key(session, api_key) is not None:
        # Keys are global; a second import of one document gets a key of its own (and so
        # hashes identities differently from the reference, which the caller is told).
        api_key = new_client_key()
    project = Project(
        organisation_id=organisation_id,
        name=project_name or _string(project_doc, "name"),
        hide_disabled_flags=bool(project_doc.get("hide_disabled_flags") or False),
        enable_realtime_updates=bool(project_doc.get("enable_realtime_updates") or False),
    )
    session.add(project)
    session.flush()
    environment = Environment(
        project_id=project.id,
        name=name,
        api_key=api_key,
        allow_client_traits=bool(document.get("allow_client_traits", True)),
        hide_sensitive_data=bool(document.get("hide_sensitive_data", False)),
        hide_disabled_flags=document.get("hide_disabled_flags"),
        use_identity_composite_key_for_hashing=True,
        use_identity_overrides_in_local_eval=bool(
            document.get("use_identity_overrides_in_local_eval", True)
        ),
        importing=True,
    )
    session.add(environment)
    session.flush()
    importer = _Importer(session, project, environment, project_doc)
    for state in _list(document, "feature_states"):
        importer.add_state(state, scope="")
    importer.ensure_defaults()
    for segment_doc in _list(project_doc, "segments"):
        importer.add_segment(segment_doc)
    if importer.kept_segment_ids:
        dialect.sync_id_sequence(session, "segments")
    return importer


def _finish(
    session: Session, importer: _Importer, organisation_id: int, actor: str
) -> ImportResult:
    """Make the environment known, with a server key: the import's last transaction."""
    project, api_key = importer.project, importer.environment.api_key
    environment = session.get(Environment, importer.environment.id)
    assert environment is not None
    environment.importing = False
    server_key = new_server_key()
    session.add(ServerKey(environment_id=environment.id, key=server_key, name="imported"))
    audit_store.add_entry(
        session,
        organisation_id=organisation_id,
        actor=actor,
        action="import",
        resource_type="environment",
        resource_id=api_key,
        log=f"Imported environment document '{environment.name}' as project '{project.name}'",
        after={"project_id": project.id, "environment_key": api_key},
        project_id=project.id,
        environment_id=environment.id,
    )
    session.flush()
    return ImportResult(project.id, environment.id, api_key, server_key)


class _Importer:
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

    def feature_for(self, feature_doc: dict[str, Any]) -> Feature:
        name = _string(feature_doc, "name")
        feature = self.features.get(name)
        if feature is None:
            feature = Feature(
                project_id=self.project.id,
                name=name,
                is_server_key_only=feature_doc.get("id") in self.server_only,
            )
            self.session.add(feature)
            self.session.flush()
            self.features[name] = feature
        return feature

    def option_for(
        self, feature: Feature, mv_doc: dict[str, Any], allocation: float
    ) -> MultivariateOption:
        option_doc = _object(mv_doc, "multivariate_feature_option")
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
            self.session.add(option)
            self.session.flush()
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
        feature = self.feature_for(_object(state_doc, "feature"))
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
        self.session.add(state)
        self.session.flush()
        if state.hash_seed is None and not state_doc.get("featurestate_uuid"):
            # Nothing to keep: seed from the new state's own id, as for states made here.
            state.hash_seed = state.id
        if state.hash_seed is not None:
            feature_store.remember_hashing_seed(
                self.session, self.environment.id, feature.id, scope, state.hash_seed
            )
        for mv_doc in state_doc.get("multivariate_feature_state_values") or []:
            allocation = float(mv_doc.get("percentage_allocation") or 0)
            option = self.option_for(feature, mv_doc, allocation)
            mv_id = mv_doc.get("id")
            self.session.add(
                MultivariateStateValue(
                    feature_state_id=state.id,
                    option_id=option.id,
                    percentage_allocation=allocation,
                    uuid=str(mv_doc.get("mv_fs_value_uuid") or uuid.uuid4()),
                    hash_id=mv_id if isinstance(mv_id, int) and mv_id else None,
                )
            )
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
            name=_string(segment_doc, "name"),
            rules=[_rule(rule) for rule in _list(segment_doc, "rules")],
        )
        doc_id = segment_doc.get("id")
        # A segment's id is its hashing key for percentage splits: keeping it keeps every
        # identity in the same split as in the reference. Ids already taken get a new one.
        if (
            isinstance(doc_id, int)
            and not isinstance(doc_id, bool)
            and 0 < doc_id < 2**31
            and self.session.get(Segment, doc_id) is None
        ):
            segment.id = doc_id
            self.kept_segment_ids = True
        self.session.add(segment)
        self.session.flush()
        for state_doc in segment_doc.get("feature_states") or []:
            self.add_state(state_doc, scope=f"s{segment.id}", segment_id=segment.id)
        self.ensure_defaults()

    def add_identity_overrides(self, identity_doc: Any) -> None:
        if not isinstance(identity_doc, dict):
            raise InvalidInput("identity_overrides: each entry must be an object.")
        identifier = _string(identity_doc, "identifier")
        identity_id, _ = identity_store.get_or_create_identity(
            self.session, self.environment.id, identifier
        )
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


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"{key}: an object is required.", field=key)
    return value


def _string(parent: dict[str, Any], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key}: a non-empty string is required.", field=key)
    return value


def _list(parent: dict[str, Any], key: str) -> list[Any]:
    value = parent.get(key) or []
    if not isinstance(value, list):
        raise InvalidInput(f"{key}: a list is required.", field=key)
    return value
