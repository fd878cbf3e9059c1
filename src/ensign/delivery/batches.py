"""The request of one claimed batch: its rows as evaluations, built by their destination,
with the rows it cannot build set apart so that they never hold up the others."""

from __future__ import annotations

import datetime as dt
import logging

from ensign.delivery.queue import Part
from ensign.integrations.base import (
    DeliveryOutcome,
    Destination,
    Evaluation,
    Outcome,
    PreparedBatch,
    Target,
    truncate,
)
from ensign.storage import dispatch as q

log = logging.getLogger("ensign.delivery")


def unsendable(error: Exception) -> str:
    """What the attempt log says about a request that could not be built or sent."""
    return truncate(f"the request could not be sent: {type(error).__name__}: {error}")


def build_apart(
    destination: Destination, target: q.DispatchTarget, rows: list[q.ClaimedRow], now: dt.datetime
) -> tuple[PreparedBatch, dict[str, str]]:
    """The batch's request, and the rows whose request cannot be built (event key → why).

    When building the batch raises, each row is built alone, and the rows that raise even
    then are set aside, so that one record the destination cannot build never holds up the
    others."""
    try:
        return _build(destination, target, rows, now), {}
    except Exception:
        log.warning("delivery: integration %s: batch not built", target.id, exc_info=True)
    broken: dict[str, str] = {}
    for row in rows:
        try:
            _build(destination, target, [row], now)
        except Exception as error:
            broken[row.event_key] = unsendable(error)
    rest = [row for row in rows if row.event_key not in broken]
    try:
        prepared = _build(destination, target, rest, now) if rest else None
    except Exception as error:
        # Rows that build alone but not together: none of them can be told apart.
        broken.update((row.event_key, unsendable(error)) for row in rest)
        prepared = None
    return prepared or PreparedBatch(None, (), {}), broken


def unbuilt_parts(
    rows: list[q.ClaimedRow], reasons: dict[str, str], token: str | None
) -> list[Part]:
    """The rows whose request could not be built, grouped by reason, each group failed."""
    groups: dict[str, list[q.ClaimedRow]] = {}
    for row in rows:
        groups.setdefault(reasons[row.event_key], []).append(row)
    return [
        Part(
            q.Claim([r.id for r in members], [r.evaluation_id for r in members], token),
            DeliveryOutcome(Outcome.FAILED, None, reason),
        )
        for reason, members in groups.items()
    ]


def _build(
    destination: Destination, target: q.DispatchTarget, rows: list[q.ClaimedRow], now: dt.datetime
) -> PreparedBatch:
    # The stored flags (values sent, or with context) go to the destinations as they are.
    evaluations = [
        Evaluation(
            row.event_key,
            row.identifier,
            {},
            row.evaluated_at,
            values_json=row.flags,
            kind=row.kind,
        )
        for row in rows
    ]
    where = Target(target.api_key, target.base_url, target.options, now=now)
    return destination.build(where, evaluations)
