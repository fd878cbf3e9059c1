"""The identify use cases: an SDK asks for an identity's flags, with traits to store or not
(contract §2.2, §2.3).

Each is one function that runs on the identify path's database threads (or inline on SQLite):
it opens the unit of work, loads or creates the identity, writes its traits, evaluates its
flags and, when the environment has integrations, records them in the same transaction. The
caller renders what it returns.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import Protocol

from ensign.services import exposures, identities, outbox
from ensign.services.delivered import Ledger
from ensign.services.exposures import ExposureWriter
from ensign.services.flags import IdentifyResult, evaluate
from ensign.services.identities import IdentityRepository, PreparedIdentity
from ensign.services.outbox import OutboxWriter
from ensign.services.sdk_requests import IdentifyRequest, IdentityFlagsRequest
from ensign.services.snapshots import Snapshot
from ensign.storage.models import utcnow


class IdentifyStore(IdentityRepository, OutboxWriter, ExposureWriter, Protocol):
    """The identify path's statements inside one transaction."""


class IdentifyUnits(Protocol):
    """`storage.identity_pool.IdentityStorePool`: transactions on the identify threads."""

    def unit(self, *, write: bool) -> AbstractContextManager[IdentifyStore]: ...


def identify(
    units: IdentifyUnits,
    snapshot: Snapshot,
    request: IdentifyRequest,
    now: dt.datetime | None = None,
) -> IdentifyResult:
    """`POST /api/v1/identities/`: store the identity and the traits that may be stored, and
    answer its flags, evaluated with every trait sent (transient ones included). `now` (the
    app's clock) is the evaluation time the integrations receive and compare with."""
    traits = request.traits
    if not request.is_server and not snapshot.allow_client_traits:
        # The reference drops them silently rather than rejecting the call.
        traits = ()
    identifier = request.identifier or identities.generated_identifier(traits)
    stores = bool(request.identifier) and not request.transient
    records = records_anything(snapshot)
    # Compared with what was last recorded for the identity: locked, so that a concurrent
    # call for it compares with what this one records.
    lock = stores and bool(snapshot.integrations) and outbox.tracks_changes(snapshot)
    with units.unit(write=stores or records) as store:
        stored = None
        ledger = None
        if request.identifier:
            stored = store.load_identity(snapshot.environment_id, identifier, lock=lock)
        if stores:
            identity_id, stored = identities.get_or_create(
                store, snapshot, identifier, stored, lock=lock
            )
            if lock:
                ledger = Ledger.of(None if stored is None else stored.delivered)
            evaluated_traits = identities.write_traits(store, snapshot, identity_id, stored, traits)
            prepared = PreparedIdentity(identifier, identity_id, evaluated_traits)
        else:
            # Anonymous or transient: the traits sent count for this evaluation only.
            prepared = PreparedIdentity(
                identifier,
                None if stored is None else stored.id,
                identities.overlay_traits(identities.stored_traits(stored), traits),
            )
        if records:
            # Evaluated inside the transaction, so that the evaluation the integrations
            # receive is committed with the identity, on one trip to the database thread.
            result = evaluate(snapshot, prepared, is_server=request.is_server)
            record_evaluation(
                store,
                snapshot,
                result,
                now or utcnow(),
                identity_id=prepared.identity_id,
                ledger=ledger,
            )
            return result
    return evaluate(snapshot, prepared, is_server=request.is_server)


def records_anything(snapshot: Snapshot) -> bool:
    """Whether an evaluation records anything: evaluations for the integrations, or
    exposures to a running experiment."""
    return bool(snapshot.integrations) or bool(snapshot.experiments)


def record_evaluation(
    store: IdentifyStore,
    snapshot: Snapshot,
    result: IdentifyResult,
    at: dt.datetime,
    *,
    identity_id: int | None = None,
    ledger: Ledger | None = None,
) -> None:
    """What one remote evaluation sends, inside the caller's transaction: its flags to the
    integrations (unless unchanged, by `ledger`), and its first exposures to running
    experiments. Every remote evaluation surface (identify, OFREP) records through here."""
    if snapshot.integrations:
        outbox.record_identify(store, snapshot, result, at, identity_id=identity_id, ledger=ledger)
    if result.experiments:
        exposures.record_identify_exposures(store, snapshot, result, at)


def identity_flags(
    units: IdentifyUnits,
    snapshot: Snapshot,
    request: IdentityFlagsRequest,
    now: dt.datetime | None = None,
) -> IdentifyResult:
    """`GET /api/v1/identities/?identifier=`: the identity's flags with its stored traits,
    creating the identity when it is new. A transient identity is neither loaded nor created.
    With `feature`, only that flag (NotFound when it is not served), and nothing is recorded
    for the integrations."""
    identifier = request.identifier
    unstored = PreparedIdentity(identifier, None, [])
    if request.recorded and request.feature is None and records_anything(snapshot):
        lock = (
            not request.transient
            and bool(snapshot.integrations)
            and outbox.tracks_changes(snapshot)
        )
        with units.unit(write=True) as store:
            prepared = (
                unstored
                if request.transient
                else identities.load(store, snapshot, identifier, lock=lock)
            )
            if prepared is None:
                prepared = identities.create(store, snapshot, identifier, lock=lock)
            result = evaluate(snapshot, prepared, is_server=request.is_server)
            record_evaluation(
                store,
                snapshot,
                result,
                now or utcnow(),
                identity_id=prepared.identity_id,
                ledger=Ledger.of(prepared.delivered) if lock else None,
            )
        return result
    if request.transient:
        prepared = unstored
    else:
        # Most calls are for known identities: they only read, and only a new one takes the
        # writer.
        with units.unit(write=False) as store:
            loaded = identities.load(store, snapshot, identifier)
        if loaded is None:
            with units.unit(write=True) as store:
                loaded = identities.create(store, snapshot, identifier)
        prepared = loaded
    result = evaluate(snapshot, prepared, is_server=request.is_server)
    return result if request.feature is None else result.only(request.feature)
