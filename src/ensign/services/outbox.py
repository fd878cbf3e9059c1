"""Recording what analytics integrations must receive, inside the caller's transaction.

The identify path calls `record_identify` with the flags it returns; the rows it writes are
durable when the request's transaction commits, and the delivery dispatcher sends them later.
Nothing here waits on a vendor.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ensign.storage.models import Feature, IntegrationConfig
from ensign.storage.outbox_queries import OutboxRecord

if TYPE_CHECKING:
    from ensign.services.identities import IdentifyResult
    from ensign.services.snapshots import Snapshot


@dataclass(frozen=True)
class IntegrationTarget:
    """An enabled integration of an environment, as the request path needs it.

    `feature_names` is None when every flag is sent.
    """

    id: int
    kind: str
    feature_names: frozenset[str] | None


class OutboxWriter(Protocol):
    """Where records go: `storage.identity_store.IdentityStore` on the identify path."""

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None: ...


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
        targets.append(IntegrationTarget(config.id, config.kind, names))
    return tuple(targets)


def evaluated_flags(result: IdentifyResult) -> dict[str, tuple[bool, Any]]:
    """Feature name → (enabled, value) of the flags returned to the caller."""
    return {flag.name: (bool(flag.enabled), flag.value) for flag in result.served}


def identify_records(
    snapshot: Snapshot, result: IdentifyResult, evaluated_at: dt.datetime
) -> list[OutboxRecord]:
    """One record per enabled integration for one identity evaluation."""
    if not snapshot.integrations:
        return []
    flags = evaluated_flags(result)
    encoded: dict[frozenset[str] | None, str] = {}
    records = []
    for target in snapshot.integrations:
        text = encoded.get(target.feature_names)
        if text is None:
            selected = (
                flags
                if target.feature_names is None
                else {n: v for n, v in flags.items() if n in target.feature_names}
            )
            text = orjson.dumps(selected).decode()
            encoded[target.feature_names] = text
        # 128 random bits (a uuid4 has 122), at a fifth of `uuid.uuid4()`'s cost.
        records.append(
            OutboxRecord(target.id, os.urandom(16).hex(), result.identifier, text, evaluated_at)
        )
    return records


def record_identify(
    writer: OutboxWriter,
    snapshot: Snapshot,
    result: IdentifyResult,
    evaluated_at: dt.datetime,
) -> int:
    """Record one identify call's flags for every enabled integration of its environment.

    Call it inside the request's write transaction; answers how many records were written.
    """
    records = identify_records(snapshot, result, evaluated_at)
    if records:
        writer.insert_outbox(records)
    return len(records)


class OutboxUnits(Protocol):
    """`storage.identity_store.IdentityStorePool`: write transactions on the identify threads."""

    def unit(self, *, write: bool) -> AbstractContextManager[OutboxWriter]: ...


def record_identify_now(
    units: OutboxUnits, snapshot: Snapshot, result: IdentifyResult, evaluated_at: dt.datetime
) -> int:
    """`record_identify` in a transaction of its own, for calls that have none open (GET,
    transient identities). Run it on the identify threads; it commits before returning."""
    if not snapshot.integrations:
        return 0
    with units.unit(write=True) as writer:
        return record_identify(writer, snapshot, result, evaluated_at)
