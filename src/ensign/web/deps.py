"""Request-scoped dependencies shared by the web surfaces."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from ensign.errors import AuthenticationFailed
from ensign.services.event_rates import EventRates
from ensign.services.keys import AdminPrincipal, authenticate_admin
from ensign.services.realtime import RealtimeHub
from ensign.services.sdk_requests import Limits
from ensign.services.sign_in import SignInGate
from ensign.services.snapshots import SnapshotCache
from ensign.settings import Settings
from ensign.storage.base import utcnow
from ensign.storage.db import Database
from ensign.storage.group_commit import GroupCommitter
from ensign.storage.identity_pool import IdentityStorePool
from ensign.storage.unit_of_work import Units

T = TypeVar("T")

# The header that may carry a cohort-sync key: read by the cohort-sync receivers, and named by
# the dashboard page that says what to configure in Amplitude.
COHORT_KEY_HEADER = "X-Ensign-Cohort-Key"


@dataclass
class AppState:
    settings: Settings
    db: Database
    cache: SnapshotCache
    identities: IdentityStorePool
    sign_ins: SignInGate
    realtime: RealtimeHub
    # The time identify calls are evaluated at and compared with what was last recorded
    # (`resend_after_hours`); tests of time pass a clock they can set.
    clock: Callable[[], dt.datetime] = utcnow
    _committer: GroupCommitter | None = field(default=None, init=False, repr=False)
    # Every admin and dashboard use case runs in one of these (see `storage.unit_of_work`).
    units: Units = field(init=False, repr=False)
    # The events API's per-key rate limit (`services.event_rates`).
    event_rates: EventRates = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.units = Units(self.db, after_commit=self.cache.check_now)
        self.event_rates = EventRates(self.settings.events_per_second, self.settings.events_burst)

    @property
    def sdk_limits(self) -> Limits:
        """The documented limits on identifiers and traits that SDK-facing surfaces enforce."""
        s = self.settings
        return Limits(
            identifier_length=s.max_identifier_length,
            trait_key_length=s.max_trait_key_length,
            trait_value_length=s.max_trait_value_length,
            traits_per_request=s.max_traits_per_request,
        )

    async def run_identity_work(self, work: Callable[[], T]) -> T:
        """Run identify-path database work: on SQLite on the event loop, in a transaction shared
        with the requests that arrived with it (`storage.group_commit`), otherwise on the
        dedicated database threads."""
        loop = asyncio.get_running_loop()
        if self.identities.runs_inline:
            committer = self._committer
            if committer is None or committer.loop is not loop:
                committer = self._committer = GroupCommitter(self.identities, loop)
            return await committer.run(work)
        return await loop.run_in_executor(self.identities.executor, work)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ensign
    return state


State = Annotated[AppState, Depends(get_state)]


def admin_principal(request: Request, state: State) -> AdminPrincipal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "api-key" or not key.strip():
        raise AuthenticationFailed(
            "Authentication credentials were not provided: send 'Authorization: Api-Key <key>'."
        )
    with state.db.read_session() as session:
        return authenticate_admin(session, key.strip())


Admin = Annotated[AdminPrincipal, Depends(admin_principal)]
