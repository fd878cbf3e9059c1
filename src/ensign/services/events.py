"""Receiving the SDKs' events: recorded in one transaction, delivered later.

`receive_events` checks a whole batch, then in one transaction stores each new event's dedupe
key, records custom events in the outbox for every Heap and Mixpanel integration that sends
events, records the exposures that Ensign's own evaluation confirms (`exposures.verify_exposure`)
and logs the others with the reason, and adds to the environment's counters. The SDK is answered only after that commit, so an accepted event survives a crash;
an event whose key is already stored (the SDK re-sending after a 5xx or a timeout) is counted
as a duplicate and recorded nowhere.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput
from ensign.services import experiment_metrics
from ensign.services import exposures as exposure_service
from ensign.services.admin.access import environment_for
from ensign.services.event_requests import (
    EventLimits,
    Refused,
    SdkEvent,
    custom_payload,
    distinct_keys,
    parse_batch,
)
from ensign.services.identities import PreparedIdentity, TraitOutput, stored_traits
from ensign.services.keys import AdminPrincipal
from ensign.services.snapshots import ExperimentInfo, Snapshot
from ensign.storage import events as store
from ensign.storage import experiments as experiment_store
from ensign.storage import identities as identity_store
from ensign.storage.db import Database
from ensign.storage.outbox import OutboxRecord

EVENT_KIND = "event"


@dataclass(frozen=True)
class Received:
    """What became of a batch: `accepted` events were new, `duplicates` had been seen,
    `refused` were not taken (each with its index, field and reason)."""

    accepted: int
    duplicates: int
    refused: list[Refused] = field(default_factory=list)


def receive_events(
    db: Database, snapshot: Snapshot, body: Any, limits: EventLimits, now: dt.datetime
) -> Received:
    """`POST /v1/events`: record the batch's good events and refuse the others one by one
    (counted as `rejected`); InvalidInput, counted, when the body is not a batch at all."""
    try:
        events, refused = parse_batch(body, snapshot.environment_id, limits, now)
    except InvalidInput:
        with db.session() as session:
            store.add_counts(session, snapshot.environment_id, store.Counts(rejected=1))
        raise
    if not events:
        if refused:
            with db.session() as session:
                store.add_counts(
                    session, snapshot.environment_id, store.Counts(rejected=len(refused)), now
                )
        return Received(0, 0, refused)
    with db.session() as session:
        new_keys = store.claim_keys(session, snapshot.environment_id, distinct_keys(events), now)
        fresh: list[SdkEvent] = []
        for event in events:
            if event.key in new_keys:
                new_keys.discard(event.key)  # a key twice in one batch is one event
                fresh.append(event)
        claimants = [
            e.identifier
            for e in fresh
            if e.is_exposure and e.identifier is not None and experiment_of(snapshot, e)
        ]
        stored = identity_store.load_identities(session, snapshot.environment_id, claimants)
        counts, records, unmatched, exposures = _route(snapshot, fresh, stored)
        writer = experiment_store.SessionExposures(session)
        for experiment, event in exposures:
            # The server's own exposure path: the first sighting of (experiment, identity,
            # variant) is recorded and sent, whether it came from an identify call or an SDK.
            assert event.identifier is not None and isinstance(event.value, str)
            exposure_service.record_exposure(
                writer, snapshot, experiment, event.identifier, event.value, event.occurred_at
            )
        counts = replace(counts, duplicates=len(events) - len(fresh), rejected=len(refused))
        store.record_outbox(session, records, now)
        # After the exposures above, so that an event sent with its exposure counts.
        experiment_metrics.record_events(session, snapshot.environment_id, fresh)
        store.log_unmatched(session, snapshot.environment_id, unmatched, now)
        store.add_counts(session, snapshot.environment_id, counts, now)
    return Received(len(fresh), len(events) - len(fresh), refused)


def _route(
    snapshot: Snapshot,
    events: list[SdkEvent],
    stored: Mapping[str, identity_store.StoredIdentity],
) -> tuple[
    store.Counts,
    list[OutboxRecord],
    list[store.Unmatched],
    list[tuple[ExperimentInfo, SdkEvent]],
]:
    """Where each new event goes: custom events to the integrations sending events,
    exposures to their running experiment when Ensign's evaluation of the identity (`stored`,
    by identifier) agrees, else to the log with the reason; events without an identifier
    nowhere (analytics tools need a user)."""
    targets = tuple(t.id for t in snapshot.integrations if t.events)
    records: list[OutboxRecord] = []
    unmatched: list[store.Unmatched] = []
    matched: list[tuple[ExperimentInfo, SdkEvent]] = []
    exposures = custom = skipped = adjusted = 0
    refused: Counter[str] = Counter()
    variants: dict[str, frozenset[str]] = {}
    for event in events:
        if event.adjusted is not None:
            adjusted += 1
        if event.is_exposure:
            exposures += 1
        else:
            custom += 1
        if event.identifier is None:
            skipped += 1
            continue
        if event.is_exposure:
            experiment = experiment_of(snapshot, event)
            if experiment is None:
                verdict = exposure_service.Verdict(exposure_service.NO_RUNNING_EXPERIMENT)
            else:
                feature = experiment.feature_name
                if feature not in variants:
                    variants[feature] = exposure_service.variant_keys(snapshot, feature)
                verdict = exposure_service.verify_exposure(
                    snapshot,
                    experiment,
                    _claimant(event, event.identifier, stored.get(event.identifier)),
                    event.value,
                    variants[feature],
                )
            if verdict.reason is None:
                assert experiment is not None
                matched.append((experiment, event))
            else:
                refused[verdict.reason] += 1
                unmatched.append(_unmatched(event, verdict))
        elif targets:
            records.append(
                OutboxRecord(
                    snapshot.environment_id,
                    targets,
                    event.key,
                    event.identifier,
                    custom_payload(event),
                    event.occurred_at,
                    kind=EVENT_KIND,
                )
            )
    counts = store.Counts(
        received=len(events),
        exposures=exposures,
        custom=custom,
        skipped=skipped,
        unmatched=len(unmatched),
        time_adjusted=adjusted,
        not_in_experiment=refused[exposure_service.NOT_IN_EXPERIMENT],
        wrong_variant=refused[exposure_service.WRONG_VARIANT],
        unknown_variant=refused[exposure_service.UNKNOWN_VARIANT],
        no_running_experiment=refused[exposure_service.NO_RUNNING_EXPERIMENT],
    )
    return counts, records, unmatched, matched


def _claimant(
    event: SdkEvent, identifier: str, stored: identity_store.StoredIdentity | None
) -> PreparedIdentity:
    """Who the exposure claims was served: the identity (its overrides apply) with the traits
    the SDK evaluated with, else its stored ones."""
    if event.traits is not None:
        traits = [TraitOutput(None, k, v, True) for k, v in event.traits.items()]
    else:
        traits = stored_traits(stored)
    return PreparedIdentity(identifier, None if stored is None else stored.id, traits)


def experiment_of(snapshot: Snapshot, event: SdkEvent) -> ExperimentInfo | None:
    """The running experiment an exposure belongs to: the one whose id the SDK gave
    (`metadata.experiment_id`, from the flag's metadata), else the one running on its feature."""
    given = event.metadata.get("experiment_id")
    if type(given) is int:
        for experiment in snapshot.experiments.values():
            # The id must be of the experiment on the feature the exposure names.
            if experiment.id == given and experiment.feature_name == event.feature_name:
                return experiment
    return snapshot.experiments.get(event.feature_name or "")


def _unmatched(event: SdkEvent, verdict: exposure_service.Verdict) -> store.Unmatched:
    experiment_id = event.metadata.get("experiment_id")
    return store.Unmatched(
        event.feature_name or "",
        event.identifier,
        None if event.value is None else str(event.value),
        experiment_id if type(experiment_id) is int and 0 < experiment_id < 2**31 else None,
        event.occurred_at,
        verdict.reason,
        verdict.served,
    )


@dataclass(frozen=True)
class EventStatus:
    """An environment's event counters and the newest exposures not recorded."""

    counts: store.Counts
    last_received_at: dt.datetime | None
    unmatched: list[store.Unmatched]


def event_status(session: Session, principal: AdminPrincipal, api_key: str) -> EventStatus:
    """The admin view of an environment's events endpoint."""
    env = environment_for(session, principal, api_key)
    counts = store.counts_of(session, [env.id]).get(env.id, store.Counts())
    log = [
        store.Unmatched(
            e.feature_name,
            e.identifier,
            e.variant,
            e.experiment_id,
            e.occurred_at,
            e.reason,
            e.served_variant,
        )
        for e in store.unmatched_log(session, env.id, store.UNMATCHED_KEPT)
    ]
    return EventStatus(counts, store.last_received_at(session, env.id), log)


def metric_lines(session: Session) -> list[str]:
    """Prometheus text for every environment's event counters: kept in the database, so any
    process's `/metrics` shows the totals of all of them."""
    lines = [
        "# HELP ensign_sdk_events_total Events the SDKs sent to POST /v1/events, per environment "
        "(by id) and by what became of them.",
        "# TYPE ensign_sdk_events_total counter",
    ]
    for environment_id, counts in store.all_counts(session):
        for name in store.COUNTER_NAMES:
            value = getattr(counts, name)
            lines.append(
                f'ensign_sdk_events_total{{environment_id="{environment_id}",counter="{name}"}} '
                f"{value}"
            )
    return lines
