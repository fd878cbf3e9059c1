"""The cohort-sync log's failure entries: a call refused or failed, with what its body named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from ensign.services.cohort_requests import Named, amplitude_named, mixpanel_named
from ensign.services.cohorts import AMPLITUDE, MIXPANEL, SyncCaller
from ensign.services.text import storable_copy
from ensign.storage import cohorts as cohort_store
from ensign.storage.models import CohortSyncLogEntry


def _loggable(value: Any, limit: int) -> str | None:
    return None if value is None else storable_copy(str(value)[:limit])


# What a failed call's body names, by source; the generic webhook's body names nothing.
_NAMED: dict[str, Callable[[Any], Named]] = {MIXPANEL: mixpanel_named, AMPLITUDE: amplitude_named}


def log_failure(
    session: Session,
    caller: SyncCaller,
    *,
    source: str,
    status_code: int,
    message: str,
    body: Any = None,
    cohort_external_id: str | None = None,
    duration_ms: float = 0.0,
) -> None:
    """Log a call that failed (a malformed body, or a fault of ours), with what it named."""
    reader = _NAMED.get(source)
    named = Named() if reader is None else reader(body)
    external_id = cohort_external_id or named.cohort_id
    cohort_store.add_log_entry(
        session,
        CohortSyncLogEntry(
            environment_id=caller.environment_id,
            source=source,
            cohort_external_id=None if external_id is None else _loggable(external_id, 200),
            cohort_name=_loggable(named.cohort_name, 2000),
            action=named.action,
            session_id=None if named.session_id is None else _loggable(named.session_id, 200),
            page=named.page,
            total_pages=named.total_pages,
            received=named.received,
            outcome="failure",
            status_code=status_code,
            message=message[:2000],
            duration_ms=round(duration_ms, 3),
        ),
    )
