"""Recording what analytics integrations must receive, inside the caller's transaction.

The identify use cases call `record_identify` with the flags they return; the rows it writes
are durable when the request's transaction commits, and the delivery dispatcher sends them
later. Nothing here waits on a vendor.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Protocol

import orjson

from ensign.integrations.values import property_value
from ensign.services.flags import IdentifyResult
from ensign.services.snapshots import Snapshot
from ensign.storage.outbox import OutboxRecord


class OutboxWriter(Protocol):
    """Where records go: `storage.identities.IdentityStore` on the identify path."""

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None: ...


def identify_records(
    snapshot: Snapshot, result: IdentifyResult, evaluated_at: dt.datetime
) -> list[OutboxRecord]:
    """The evaluation to record, once for all the enabled integrations sending the same flags
    (once per distinct flag selection).

    Each flag is stored as the value the vendors receive, so that delivery does no per-flag
    work."""
    if not snapshot.integrations:
        return []
    values = {flag.name: property_value(flag.enabled, flag.value) for flag in result.served}
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
