"""Flagsmith's wire shapes for the SDK API: flag objects, identity bodies, the environment
flags body and the trait answers (contract §2.4 to §2.6, §3.1, §3.2).

The services answer plain values (`services.flags.ServedFlag`); this module serialises them.
What it serialises is kept per snapshot: the `GET /flags/` bodies, and each distinct flag
outcome of identify calls (most identities get one of a few outcomes per feature, so an
identity body is assembled from cached bytes). A changed environment gets a new snapshot, and
its caches go with the old one.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ensign.services.documents import drf_datetime
from ensign.services.flags import (
    ExperimentOutcome,
    IdentifyResult,
    ServedFlag,
    environment_flags,
)
from ensign.services.identities import TraitOutput
from ensign.services.sdk_requests import IncrementRequest, TraitWrite
from ensign.services.snapshots import Snapshot

# Distinct flag outcomes kept serialised per snapshot; past this, outcomes are serialised per call.
FLAG_BYTES_CACHE_SIZE = 100_000


@dataclass
class _SnapshotBytes:
    # `GET /flags/` bodies, by whether the key is a server key.
    flags_bodies: dict[bool, bytes] = field(default_factory=dict)
    # An identity's flag object per outcome: (flag, type of its value) → bytes.
    flags: dict[tuple[ServedFlag, type], bytes] = field(default_factory=dict)
    # The same for flags under a running experiment: (flag, type, in experiment) → bytes.
    experiment_flags: dict[tuple[ServedFlag, type, bool], bytes] = field(default_factory=dict)
    # Feature objects by feature name.
    features: dict[str, dict[str, Any]] = field(default_factory=dict)


# By the snapshot's id: cheaper to look up than a WeakKeyDictionary, on every `GET /flags/`.
_by_snapshot: dict[int, _SnapshotBytes] = {}


def _cached(snapshot: Snapshot) -> _SnapshotBytes:
    cached = _by_snapshot.get(id(snapshot))
    if cached is None:
        cached = _by_snapshot.setdefault(id(snapshot), _SnapshotBytes())
        # Dropped with the snapshot, before its id can be reused.
        weakref.finalize(snapshot, _by_snapshot.pop, id(snapshot), None)
    return cached


def _feature_object(snapshot: Snapshot, name: str) -> dict[str, Any]:
    features = _cached(snapshot).features
    feature_object = features.get(name)
    if feature_object is None:
        feature = snapshot.features[name]
        sensitive = snapshot.hide_sensitive_data
        feature_object = {
            "id": feature.id,
            "name": feature.name,
            "created_date": None if sensitive else drf_datetime(feature.created_at),
            "description": None if sensitive else feature.description,
            "initial_value": None if sensitive else feature.initial_value,
            "default_enabled": None if sensitive else feature.default_enabled,
            "type": feature.type,
        }
        features[name] = feature_object
    return feature_object


def flag_object(snapshot: Snapshot, flag: ServedFlag) -> dict[str, Any]:
    """A flag object as `GET /flags/` serves it (identity flags add the variant)."""
    if snapshot.hide_sensitive_data:
        return {
            "id": None,
            "feature": _feature_object(snapshot, flag.name),
            "feature_state_value": flag.value,
            "environment": None,
            "identity": None,
            "feature_segment": None,
            "enabled": flag.enabled,
            "reason": flag.reason,
        }
    return {
        "id": flag.state_id,
        "feature": _feature_object(snapshot, flag.name),
        "feature_state_value": flag.value,
        "environment": snapshot.environment_id,
        "identity": flag.identity_id,
        "feature_segment": flag.feature_segment,
        "enabled": flag.enabled,
        "reason": flag.reason,
    }


def environment_flags_body(snapshot: Snapshot, *, is_server: bool) -> bytes:
    """`GET /api/v1/flags/`: serialised once per snapshot and kind of key."""
    bodies = _cached(snapshot).flags_bodies
    body = bodies.get(is_server)
    if body is None:
        body = orjson.dumps(
            [flag_object(snapshot, f) for f in environment_flags(snapshot, is_server=is_server)]
        )
        bodies[is_server] = body
    return body


def environment_flag(snapshot: Snapshot, flag: ServedFlag) -> bytes:
    """`GET /api/v1/flags/?feature=`: one default flag object."""
    return orjson.dumps(flag_object(snapshot, flag))


def identity_flag(
    snapshot: Snapshot, flag: ServedFlag, outcome: ExperimentOutcome | None = None
) -> bytes:
    """One identity flag object."""
    if outcome is not None:
        return _experiment_flag(snapshot, flag, outcome)
    return _identity_flag(snapshot, _cached(snapshot).flags, flag)


def identity_flags(
    snapshot: Snapshot,
    served: Sequence[ServedFlag],
    experiments: Mapping[str, ExperimentOutcome] | None = None,
) -> bytes:
    """An identity's flags as a JSON array (also the older `GET /flags/<identifier>` body).
    A flag under a running experiment adds `metadata.experiment`, as Flagsmith sends it."""
    cache = _cached(snapshot).flags
    if not experiments:
        return b"[" + b",".join([_identity_flag(snapshot, cache, flag) for flag in served]) + b"]"
    return (
        b"["
        + b",".join(
            [
                _identity_flag(snapshot, cache, flag)
                if flag.name not in experiments
                else _experiment_flag(snapshot, flag, experiments[flag.name])
                for flag in served
            ]
        )
        + b"]"
    )


def _experiment_flag(snapshot: Snapshot, flag: ServedFlag, outcome: ExperimentOutcome) -> bytes:
    """A flag object with its experiment's metadata; cached per outcome like the others (the
    experiment is fixed for the snapshot's life)."""
    cache = _cached(snapshot).experiment_flags
    key = (flag, type(flag.value), outcome.in_experiment)
    cached = cache.get(key)
    if cached is None:
        cached = _experiment_flag_bytes(snapshot, flag, outcome)
        if len(cache) < FLAG_BYTES_CACHE_SIZE:
            cache[key] = cached
    return cached


def _experiment_flag_bytes(
    snapshot: Snapshot, flag: ServedFlag, outcome: ExperimentOutcome
) -> bytes:
    body = flag_object(snapshot, flag)
    body["variant"] = flag.variant
    experiment = outcome.experiment
    body["metadata"] = {
        "experiment": {
            "id": experiment.id,
            "name": experiment.name,
            "in_experiment": outcome.in_experiment,
        }
    }
    return orjson.dumps(body)


def _identity_flag(
    snapshot: Snapshot, cache: dict[tuple[ServedFlag, type], bytes], flag: ServedFlag
) -> bytes:
    """Serialised once per distinct outcome, and kept in `cache`."""
    # The value's type is part of the outcome: `1`, `1.0` and `true` compare equal.
    key = (flag, type(flag.value))
    cached = cache.get(key)
    if cached is None:
        body = flag_object(snapshot, flag)
        body["variant"] = flag.variant
        cached = orjson.dumps(body)
        if len(cache) < FLAG_BYTES_CACHE_SIZE:
            cache[key] = cached
    return cached


def trait_written(trait: TraitWrite) -> dict[str, Any]:
    """`POST /traits/` and each item of `PUT /traits/bulk/`: the trait as stored."""
    return {
        "identity": {"identifier": trait.identifier},
        "trait_key": trait.key,
        "trait_value": trait.value,
    }


def trait_incremented(request: IncrementRequest, value: int) -> dict[str, Any]:
    """`POST /traits/increment-value/`: the trait's new value."""
    return {"trait_key": request.key, "trait_value": value, "identifier": request.identifier}


def trait_object(trait: TraitOutput) -> dict[str, Any]:
    return {
        "id": trait.id,
        "trait_key": trait.key,
        "trait_value": trait.value,
        "transient": trait.transient,
    }


def identity_body(snapshot: Snapshot, result: IdentifyResult) -> bytes:
    """The identity response (contract §3.2)."""
    traits = [] if snapshot.hide_sensitive_data else [trait_object(t) for t in result.traits]
    return b"".join(
        (
            b'{"identifier":',
            orjson.dumps(result.identifier),
            b',"flags":',
            identity_flags(snapshot, result.served, result.experiments),
            b',"traits":',
            orjson.dumps(traits),
            b"}",
        )
    )
