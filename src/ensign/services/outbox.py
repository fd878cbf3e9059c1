"""Recording what analytics integrations must receive, inside the caller's transaction.

The identify use cases call `record_identify` with the flags they return; the rows it writes
are durable when the request's transaction commits, and the delivery dispatcher sends them
later. Nothing here waits on a vendor.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
from prometheus_client import Counter

from ensign.integrations.values import property_value
from ensign.services import delivered
from ensign.services.delivered import Ledger
from ensign.services.flags import IdentifyResult
from ensign.services.snapshots import IntegrationTarget, Snapshot
from ensign.storage.outbox import OutboxRecord

# In the process-wide registry that `/metrics` renders, beside the delivery counters.
SUPPRESSED = Counter(
    "ensign_delivery_suppressed_total",
    "Identify calls whose unchanged flags were not recorded (deliver=changes), by kind.",
    ["kind"],
)


class OutboxWriter(Protocol):
    """Where records go: `storage.identities.IdentityStore` on the identify path."""

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None: ...

    def update_delivered(self, identity_id: int, delivered: str) -> None: ...

    def count_suppressed(self, counts: Mapping[int, int]) -> None: ...


@dataclass(frozen=True)
class Recorded:
    """An identify call's records, and per integration id the deliveries it suppressed."""

    records: list[OutboxRecord]
    suppressed: dict[int, int]


def identify_records(
    snapshot: Snapshot,
    result: IdentifyResult,
    evaluated_at: dt.datetime,
    ledger: Ledger | None = None,
) -> Recorded:
    """The evaluation to record, once for all the enabled integrations sending the same flags
    (once per distinct flag selection), for those that must receive it: every one without a
    `ledger` (an identity not stored has nothing to compare with), else those sending on every
    evaluation and those whose flags changed or are due again (`ledger` is updated for them).

    Each flag is stored as the value the vendors receive, so that delivery does no per-flag
    work; destinations recording context get the traits, flags and segments instead."""
    if not snapshot.integrations:
        return Recorded([], {})
    values = {flag.name: property_value(flag.enabled, flag.value) for flag in result.served}
    # One record per flag selection and shape: the plain one (feature → value sent), or with
    # context for the destinations that ask for it (`IntegrationTarget.record_context`).
    groups: dict[tuple[frozenset[str] | None, bool], list[IntegrationTarget]] = {}
    for target in snapshot.integrations:
        groups.setdefault((target.feature_names, target.record_context), []).append(target)
    records = []
    suppressed: dict[int, int] = {}
    for (names, with_context), targets in groups.items():
        if with_context:
            flags = context_json(result, names)
        else:
            selected = values if names is None else {n: v for n, v in values.items() if n in names}
            flags = orjson.dumps(selected).decode()
        integration_ids = _due(targets, flags, evaluated_at, ledger, suppressed)
        if not integration_ids:
            continue
        # 128 random bits (a uuid4 has 122), at a fifth of `uuid.uuid4()`'s cost.
        records.append(
            OutboxRecord(
                snapshot.environment_id,
                tuple(integration_ids),
                os.urandom(16).hex(),
                result.identifier,
                flags,
                evaluated_at,
            )
        )
    return Recorded(records, suppressed)


def context_json(result: IdentifyResult, names: frozenset[str] | None) -> str:
    """The record of an evaluation with its context: the traits it was evaluated with
    (transient ones too), every selected flag's `enabled` and value, the segments matched."""
    return context_record(
        {t.key: t.value for t in result.traits},
        [(f.name, f.enabled, f.value) for f in result.served if names is None or f.name in names],
        result.segments,
    )


def context_record(
    traits: Mapping[str, object],
    flags: Iterable[tuple[str, bool, object]],
    segments: Iterable[str],
) -> str:
    """A record with context as JSON text. Traits and segments are sorted, so that the same
    context is the same text (send on change compares fingerprints of it)."""
    return orjson.dumps(
        {
            "traits": dict(sorted(traits.items())),
            "flags": [{"feature": n, "enabled": e, "value": v} for n, e, v in flags],
            "segments": sorted(segments),
        }
    ).decode()


def _due(
    targets: Sequence[IntegrationTarget],
    flags: str,
    now: dt.datetime,
    ledger: Ledger | None,
    suppressed: dict[int, int],
) -> list[int]:
    if ledger is None:
        return [t.id for t in targets]
    due = []
    print_ = None
    for target in targets:
        if not target.changes_only:
            due.append(target.id)
            continue
        print_ = print_ or delivered.fingerprint(flags)
        if ledger.is_due(target.id, print_, target.resend_after_hours, now):
            ledger.recorded(target.id, print_, now)
            due.append(target.id)
        else:
            suppressed[target.id] = 1
            SUPPRESSED.labels(target.kind).inc()
    return due


def tracks_changes(snapshot: Snapshot) -> bool:
    """Whether an identify call must lock the identity to compare with what was recorded."""
    return any(t.changes_only for t in snapshot.integrations)


def record_identify(
    writer: OutboxWriter,
    snapshot: Snapshot,
    result: IdentifyResult,
    evaluated_at: dt.datetime,
    *,
    identity_id: int | None = None,
    ledger: Ledger | None = None,
) -> int:
    """Record one identify call's flags for every enabled integration of its environment that
    must receive them; with a `ledger` (what was recorded for the stored identity
    `identity_id`), only those that changed, storing the new ledger when anything was.

    Call it inside the request's write transaction; answers how many queue rows were written
    (one per integration).
    """
    if ledger is None or identity_id is None:
        ledger = None
    recorded = identify_records(snapshot, result, evaluated_at, ledger)
    if recorded.records:
        writer.insert_outbox(recorded.records)
    if ledger is not None and identity_id is not None and ledger.changed:
        writer.update_delivered(identity_id, ledger.text(t.id for t in snapshot.integrations))
    writer.count_suppressed(recorded.suppressed)
    return sum(len(r.integration_ids) for r in recorded.records)
