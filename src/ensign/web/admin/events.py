"""`GET /api/v1/environments/{key}/events/`: what the SDKs' events endpoint received."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from ensign.services import events
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Events"])


def read_events(api_key: str, state: State, principal: Admin) -> dict[str, Any]:
    """Counters of `POST /v1/events` for the environment, and the newest exposures that no
    running experiment took (kept, never sent)."""
    with state.units.read() as unit:
        status = events.event_status(unit.session, principal, api_key)
    return {
        **asdict(status.counts),
        "last_received_at": status.last_received_at and status.last_received_at.isoformat(),
        "unmatched_exposures": [
            {**asdict(e), "occurred_at": e.occurred_at.isoformat()} for e in status.unmatched
        ],
    }


for _path in ("/environments/{api_key}/events/", "/environments/{api_key}/events"):
    router.add_api_route(
        _path,
        read_events,
        methods=["GET"],
        summary="Event counters of an environment",
        include_in_schema=_path.endswith("/"),
    )
