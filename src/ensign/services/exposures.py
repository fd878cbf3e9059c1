"""Experiment exposures: the first time an identity is served a variant of a running
experiment, recorded once and sent to the integrations that take exposures.

The identify path records them in its own transaction (`record_identify_exposures`); the SDK
events API records the exposures SDKs report through `record_exposure`, with the same unique
key, so that an exposure seen both ways is sent once.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Protocol

import orjson

from ensign.services.flags import IdentifyResult
from ensign.services.snapshots import ExperimentInfo, Snapshot
from ensign.storage.outbox import OutboxRecord

EXPOSURE = "exposure"


class ExposureWriter(Protocol):
    """Where exposures go: `storage.identities.IdentityStore` on the identify path,
    `storage.experiments.SessionExposures` in an ORM session."""

    def insert_exposure(
        self, experiment_id: int, identifier: str, variant: str, at: dt.datetime
    ) -> bool: ...

    def insert_outbox(self, records: Sequence[OutboxRecord]) -> None: ...


def exposure_record(
    snapshot: Snapshot, experiment: ExperimentInfo, identifier: str, variant: str, at: dt.datetime
) -> OutboxRecord | None:
    """The outbox record sending one exposure to each integration that takes exposures, or
    None when none does."""
    integration_ids = tuple(t.id for t in snapshot.integrations if t.exposures)
    if not integration_ids:
        return None
    payload = {
        "experiment": experiment.name,
        "variant": variant,
        "experiment_id": experiment.id,
        # The feature the experiment splits: Amplitude's `$exposure` names it (`flag_key`).
        "feature": experiment.feature_name,
    }
    return OutboxRecord(
        snapshot.environment_id,
        integration_ids,
        # The vendors' dedupe key (Heap `idempotency_key`, Mixpanel `$insert_id`: 32 hex
        # characters fit its 36), fixed with the record, so every retry carries the same one.
        os.urandom(16).hex(),
        identifier,
        orjson.dumps(payload).decode(),
        at,
        kind=EXPOSURE,
    )


def record_exposure(
    writer: ExposureWriter,
    snapshot: Snapshot,
    experiment: ExperimentInfo,
    identifier: str,
    variant: str,
    at: dt.datetime,
) -> bool:
    """Record that `identifier` was served `variant` of `experiment` at `at`, inside the
    caller's transaction. Only the first time (per identity, experiment and variant) records
    anything for the integrations; answers whether this was that time."""
    if not writer.insert_exposure(experiment.id, identifier, variant, at):
        return False
    record = exposure_record(snapshot, experiment, identifier, variant, at)
    if record is not None:
        writer.insert_outbox([record])
    return True


# Exposures remembered per snapshot at most; past this the memory starts again.
KNOWN_EXPOSURES = 200_000


def record_identify_exposures(
    writer: ExposureWriter, snapshot: Snapshot, result: IdentifyResult, at: dt.datetime
) -> int:
    """Record the exposures of one remote evaluation; answers how many were new.

    An exposure found already stored (the insert met the unique key, so the row is committed)
    is remembered with the snapshot, and the identity's next calls skip the statement."""
    new = 0
    known = snapshot.known_exposures
    for outcome in result.exposures():
        assert outcome.variant is not None
        key = (outcome.experiment.id, result.identifier, outcome.variant)
        if key in known:
            continue
        if record_exposure(
            writer, snapshot, outcome.experiment, result.identifier, outcome.variant, at
        ):
            new += 1
        else:
            if len(known) >= KNOWN_EXPOSURES:
                known.clear()
            known.add(key)
    return new
