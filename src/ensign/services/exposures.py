"""Experiment exposures: the first time an identity is served a variant of a running
experiment, recorded once and sent to the integrations that take exposures.

The identify path records them in its own transaction (`record_identify_exposures`); the SDK
events API records the exposures SDKs report through `record_exposure`, with the same unique
key, so that an exposure seen both ways is sent once. An SDK's exposure is a claim: it is
recorded only when Ensign's own evaluation agrees (`verify_exposure`), so that a forged or
mistaken one (a variant the identity was not served, an identity outside the experiment)
cannot skew the results.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from ensign.services.flags import IdentifyResult, evaluate
from ensign.services.identities import PreparedIdentity
from ensign.services.snapshots import ExperimentInfo, Snapshot
from ensign.storage.outbox import OutboxRecord

EXPOSURE = "exposure"

# Why an SDK's exposure was not recorded (also the names of the events API's counters).
NOT_IN_EXPERIMENT = "not_in_experiment"
WRONG_VARIANT = "wrong_variant"
UNKNOWN_VARIANT = "unknown_variant"
NO_RUNNING_EXPERIMENT = "no_running_experiment"
REFUSAL_REASONS = (NOT_IN_EXPERIMENT, WRONG_VARIANT, UNKNOWN_VARIANT, NO_RUNNING_EXPERIMENT)
# A multivariate feature's variant when no option was chosen.
CONTROL = "control"


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


@dataclass(frozen=True)
class Verdict:
    """Whether an SDK's exposure stands: `reason` is None when it does, else why not;
    `served` is the variant Ensign's evaluation gave the identity (None outside the
    experiment)."""

    reason: str | None
    served: str | None = None


def variant_keys(snapshot: Snapshot, feature: str) -> frozenset[str]:
    """The variants a feature's own split can serve: its options' keys, and `control`."""
    keys = {CONTROL}
    for state in snapshot.document.get("feature_states") or ():
        if state["feature"]["name"] != feature:
            continue
        for mv in state.get("multivariate_feature_state_values") or ():
            key = mv["multivariate_feature_option"].get("key")
            if isinstance(key, str):
                keys.add(key)
    return frozenset(keys)


def verify_exposure(
    snapshot: Snapshot,
    experiment: ExperimentInfo,
    identity: PreparedIdentity,
    claimed: object,
    known: frozenset[str],
) -> Verdict:
    """Check an SDK's claim that `identity` was served `claimed` of `experiment` against
    Ensign's own evaluation of the feature (the snapshot the identify path uses, the identity's
    overrides, the traits given). `known` is `variant_keys` of the experiment's feature."""
    if not isinstance(claimed, str) or claimed not in known:
        return Verdict(UNKNOWN_VARIANT)
    result = evaluate(snapshot, identity, is_server=True)
    outcome = result.experiments.get(experiment.feature_name)
    if (
        outcome is None
        or outcome.experiment.id != experiment.id
        or not (outcome.in_experiment and outcome.enabled)
        or outcome.variant is None
    ):
        return Verdict(NOT_IN_EXPERIMENT)
    if outcome.variant != claimed:
        return Verdict(WRONG_VARIANT, outcome.variant)
    return Verdict(None, outcome.variant)
