"""An environment compiled once for serving, and the per-process cache that holds it.

The request path never parses rules or serialises the environment's default flags: it reads
a snapshot built when the environment last changed. A snapshot is immutable; a change builds
a new one and swaps it in.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ensign.engine import CompiledEnvironment, IdentityOverride, compile_environment
from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import CHANGES, DEFAULTS, CommonSettings
from ensign.services.documents import build_context, build_document, feature_type
from ensign.services.values import decode_flag_value
from ensign.storage.environments import EnvironmentRows
from ensign.storage.models import Feature, FeatureState, IntegrationConfig, utcnow

# Unknown keys remembered at most (each for one poll interval).
UNKNOWN_KEYS_REMEMBERED = 10_000


@dataclass(frozen=True)
class FeatureInfo:
    id: int
    name: str
    type: str
    is_server_key_only: bool
    created_at: dt.datetime
    description: str | None
    initial_value: str | None
    default_enabled: bool


@dataclass(frozen=True)
class IntegrationTarget:
    """An enabled integration of an environment, as the request path needs it.

    `feature_names` is None when every flag is sent.
    """

    id: int
    kind: str
    feature_names: frozenset[str] | None
    # deliver="changes": record only flags that changed, or after `resend_after_hours` (0:
    # never); otherwise on every evaluation.
    changes_only: bool = DEFAULTS.deliver == CHANGES
    resend_after_hours: int = DEFAULTS.resend_after_hours
    # Whether experiment exposures are sent to it too.
    exposures: bool = DEFAULTS.exposures
    # Whether the SDKs' custom events (`POST /v1/events`) are sent to it too.
    events: bool = DEFAULTS.events
    # Whether its flags records carry traits, full flags and segments (`Schema.record_context`).
    record_context: bool = False


@dataclass(frozen=True)
class ExperimentInfo:
    """A running experiment, as the identify path needs it: no query to tell who is in it."""

    id: int
    name: str
    feature_name: str
    # The segment an identity must match to be in it; None: every identity.
    segment_id: int | None
    # The feature's environment default state: a value served from it came from the
    # feature's own split (a segment override's split is another state).
    default_state_id: int


@dataclass
class Snapshot:
    environment_id: int
    project_id: int
    organisation_id: int
    api_key: str
    revision: int
    updated_at: dt.datetime
    allow_client_traits: bool
    hide_sensitive_data: bool
    hide_disabled_flags: bool
    persist_trait_data: bool
    stop_serving_flags: bool
    server_keys: dict[str, dt.datetime | None]
    features: dict[str, FeatureInfo]
    feature_ids: dict[int, str]
    compiled: CompiledEnvironment
    identity_overrides: dict[int, list[IdentityOverride]]
    document: dict[str, Any]
    document_bytes: bytes
    # The enabled analytics integrations that identify calls record evaluations for.
    integrations: tuple[IntegrationTarget, ...] = ()
    # The running experiments by feature name.
    experiments: dict[str, ExperimentInfo] = field(default_factory=dict)
    # (experiment id, identifier, variant) of exposures known to be committed, so that repeat
    # identify calls skip the insert-if-absent (`services.exposures`); gone with the snapshot.
    known_exposures: set[tuple[int, str, str]] = field(default_factory=set)

    @property
    def updated_at_header(self) -> str:
        """`X-Flagsmith-Document-Updated-At`: epoch seconds as a float."""
        return repr(self.updated_at.timestamp())

    def is_live_server_key(self, key: str) -> bool:
        if key not in self.server_keys:
            return False
        expires_at = self.server_keys[key]
        return expires_at is None or expires_at > utcnow()

    @property
    def targeted_features(self) -> frozenset[str]:
        """The features some rule could change: those a segment of the document overrides, and
        those of the identity overrides it carries (the SDKs evaluate these as segments)."""
        return self.compiled.targeted_features

    def visible(self, name: str, enabled: bool, *, is_server: bool) -> bool:
        """The server-side filters: hide-disabled and server-key-only features (contract §2.1).

        The reference skips the server-only filter when hide-disabled is on, which shows
        server-only features to client keys; Ensign applies both, deliberately.
        """
        if self.hide_disabled_flags and not enabled:
            return False
        return is_server or not self.features[name].is_server_key_only


def build_snapshot(rows: EnvironmentRows) -> Snapshot:
    env, project, organisation = rows.environment, rows.project, rows.organisation
    features: dict[str, FeatureInfo] = {}
    for feature in rows.features:
        features[feature.name] = _feature_info(feature)
    identity_overrides: dict[int, list[IdentityOverride]] = {}
    names = {f.id: f.name for f in rows.features}
    for state in rows.feature_states:
        if state.identity_id is not None and state.feature_id in names:
            identity_overrides.setdefault(state.identity_id, []).append(
                _identity_override(state, names[state.feature_id])
            )
    hide_disabled = (
        env.hide_disabled_flags
        if env.hide_disabled_flags is not None
        else project.hide_disabled_flags
    )
    document = build_document(rows)
    context = build_context(rows, document)
    compiled = compile_environment(
        context,
        # The context leaves identity overrides out (they are applied per identity), but
        # local evaluation sees those the document carries as segments.
        identity_overridden=(
            state["feature"]["name"]
            for identity in document["identity_overrides"]
            for state in identity["identity_features"]
        ),
    )
    default_states = {
        flag.name: flag.state_id
        for flag in compiled.resolve_environment().flags
        if flag.state_id is not None
    }
    return Snapshot(
        environment_id=env.id,
        project_id=project.id,
        organisation_id=organisation.id,
        api_key=env.api_key,
        revision=env.revision,
        updated_at=env.updated_at,
        allow_client_traits=env.allow_client_traits,
        hide_sensitive_data=env.hide_sensitive_data,
        hide_disabled_flags=bool(hide_disabled),
        persist_trait_data=organisation.persist_trait_data,
        stop_serving_flags=organisation.stop_serving_flags,
        server_keys={k.key: k.expires_at for k in rows.server_keys if k.active},
        features=features,
        feature_ids={f.id: f.name for f in rows.features},
        compiled=compiled,
        identity_overrides=identity_overrides,
        document=document,
        document_bytes=orjson.dumps(document),
        integrations=integration_targets(rows.integrations, rows.features),
        experiments=_experiments(rows, names, default_states),
    )


def _experiments(
    rows: EnvironmentRows, names: dict[int, str], default_states: dict[str, int]
) -> dict[str, ExperimentInfo]:
    experiments = {}
    for e in rows.experiments:
        name = names.get(e.feature_id)
        if name is not None and name in default_states:
            experiments[name] = ExperimentInfo(
                e.id, e.name, name, e.segment_id, default_states[name]
            )
    return experiments


def _feature_info(feature: Feature) -> FeatureInfo:
    return FeatureInfo(
        id=feature.id,
        name=feature.name,
        type=feature_type(feature),
        is_server_key_only=feature.is_server_key_only,
        created_at=feature.created_at,
        description=feature.description,
        initial_value=feature.initial_value,
        default_enabled=feature.default_enabled,
    )


def integration_targets(
    configs: Sequence[IntegrationConfig], features: Sequence[Feature]
) -> tuple[IntegrationTarget, ...]:
    """The enabled integrations, with their flag selection resolved to feature names.

    Built with the environment's snapshot, which is rebuilt whenever a configuration or a
    feature's tags change, so the request path never queries for them.
    """
    targets = []
    for config in configs:
        if not config.enabled:
            continue
        names: frozenset[str] | None = None
        if config.feature_names is not None:
            names = frozenset(str(n) for n in config.feature_names)
        elif config.tag_label is not None:
            names = frozenset(
                f.name for f in features if any(t.label == config.tag_label for t in f.tags)
            )
        schema = SCHEMAS.get(config.kind)
        common = CommonSettings.of(config)
        targets.append(
            IntegrationTarget(
                config.id,
                config.kind,
                names,
                changes_only=common.deliver == CHANGES,
                resend_after_hours=common.resend_after_hours,
                exposures=common.exposures,
                events=common.events,
                record_context=schema is not None and schema.record_context,
            )
        )
    return tuple(targets)


def _identity_override(state: FeatureState, name: str) -> IdentityOverride:
    return IdentityOverride(
        feature=name,
        enabled=state.enabled,
        value=decode_flag_value(state.value_type, state.value_text),
        state_id=state.id,
    )


class SnapshotCache:
    """Snapshots by environment id and by key, kept fresh across processes.

    Changes made in this process call `check_now()` after commit. Changes made by other
    processes are found by a thread that compares revisions every `poll_interval` seconds.
    Observers (the realtime streams) hear of each environment whose snapshot was dropped, so
    they learn of changes from the same check, with no query of their own.
    """

    def __init__(
        self,
        load: Callable[[int], Snapshot | None],
        revisions: Callable[[list[int]], dict[int, int]],
        find_environment: Callable[[str], int | None],
        *,
        poll_interval: float,
    ) -> None:
        self._load = load
        self._revisions = revisions
        self._find_environment = find_environment
        self._poll_interval = poll_interval
        self._by_id: dict[int, Snapshot] = {}
        self._by_key: dict[str, int] = {}
        self._unknown: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observers: list[Callable[[set[int]], None]] = []

    def observe(self, observer: Callable[[set[int]], None]) -> None:
        """Call `observer` with the ids of the environments whose snapshots a check dropped.

        It is called on whichever thread ran the check, so it must only hand the ids over."""
        self._observers.append(observer)

    def peek(self, key: str) -> Snapshot | None:
        """The cached snapshot for `key`, without touching the database."""
        env_id = self._by_key.get(key)
        if env_id is None:
            return None
        snapshot = self._by_id.get(env_id)
        if snapshot is not None and (snapshot.api_key == key or snapshot.is_live_server_key(key)):
            return snapshot
        return None

    def cached(self, environment_id: int) -> Snapshot | None:
        """The cached snapshot of an environment, without touching the database."""
        return self._by_id.get(environment_id)

    def for_key(self, key: str) -> Snapshot | None:
        """The snapshot of the environment a client or server key belongs to, if any."""
        snapshot = self.peek(key)
        if snapshot is not None:
            return snapshot
        if key in self._unknown and self._unknown[key] > time.monotonic():
            return None
        env_id = self._find_environment(key)
        if env_id is None:
            # Remembered briefly, so that a client retrying a bad key costs no query each time.
            if len(self._unknown) >= UNKNOWN_KEYS_REMEMBERED:
                self._unknown.clear()
            self._unknown[key] = time.monotonic() + self._poll_interval
            return None
        snapshot = self.for_id(env_id)
        if snapshot is not None:
            self._by_key[key] = env_id
        return snapshot

    def for_id(self, environment_id: int) -> Snapshot | None:
        snapshot = self._by_id.get(environment_id)
        if snapshot is not None:
            return snapshot
        with self._lock:
            snapshot = self._by_id.get(environment_id)
            if snapshot is None:
                snapshot = self._load(environment_id)
                if snapshot is not None:
                    self._by_id[environment_id] = snapshot
        return snapshot

    def check_now(self) -> None:
        """Drop every snapshot whose environment changed or disappeared."""
        self._unknown.clear()
        ids = list(self._by_id)
        if not ids:
            return
        current = self._revisions(ids)
        dropped: set[int] = set()
        with self._lock:
            for env_id in ids:
                snapshot = self._by_id.get(env_id)
                if snapshot is not None and current.get(env_id) != snapshot.revision:
                    del self._by_id[env_id]
                    dropped.add(env_id)
            stale_keys = [k for k, e in self._by_key.items() if e not in self._by_id]
            for key in stale_keys:
                self._by_key.pop(key, None)
        if dropped:
            for observer in self._observers:
                observer(dropped)

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._by_key.clear()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="ensign-cache", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.check_now()
            except Exception:
                continue
