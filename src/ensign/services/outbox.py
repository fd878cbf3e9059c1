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
from ensign.storage.outbox import OutboxRecord

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
    """Where records go: `storage.identities.IdentityStore` on the identify path."""

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


def sent_values(result: IdentifyResult) -> dict[str, Any]:
    """Feature name → the value the vendors receive (`integrations.property_value`), which is
    what the outbox stores, so that delivery does no per-flag work."""
    return {
        flag.name: flag.value if flag.enabled and flag.value is not None else bool(flag.enabled)
        for flag in result.served
    }


def identify_records(
    snapshot: Snapshot, result: IdentifyResult, evaluated_at: dt.datetime
) -> list[OutboxRecord]:
    """The evaluation to record, once for all the enabled integrations sending the same flags
    (once per distinct flag selection)."""
    if not snapshot.integrations:
        return []
    values = sent_values(result)
    groups: dict[frozenset[str] | None, list[int]] = {}
    for target in snapshot.integrations:
        groups.setdefault(target.feature_names, []).append(target.id)
    records = []
    for names, integration_ids in groups.items():
        selected = values if names is None else {n: v for n, v in values.items() if n in names}
        # 128 random bits (a uuid4 has 122), at a fifth of `uuid.uuid4()`'s cost.
        records.append(
            OutboxRecord(
                snapshot.environment_id,
                tuple(integration_ids),
                os.urandom(16).hex(),
                result.identifier,
                orjson.dumps(selected).decode(),
                evaluated_at,
            )
        )
    return records


def record_identify(
    writer: OutboxWriter,
    snapshot: Snapshot,
    result: IdentifyResult,
    evaluated_at: dt.datetime,
) -> int:
    """Record one identify call's flags for every enabled integration of its environment.

    Call it inside the request's write transaction; answers how many queue rows were written
    (one per integration).
    """
    records = identify_records(snapshot, result, evaluated_at)
    if records:
        writer.insert_outbox(records)
    return sum(len(r.integration_ids) for r in records)


class OutboxUnits(Protocol):
    """`storage.identity_pool.IdentityStorePool`: write transactions on the identify threads."""

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
