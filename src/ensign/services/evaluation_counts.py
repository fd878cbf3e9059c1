"""Flag evaluation counts that SDKs report (contract §2.8), added up per feature and day."""

from __future__ import annotations

import datetime as dt

from ensign.services.sdk_requests import EvaluationCountsRequest
from ensign.services.snapshots import Snapshot
from ensign.storage import environments as repo
from ensign.storage.db import Database


def count_evaluations(
    db: Database, snapshot: Snapshot, request: EvaluationCountsRequest, now: dt.datetime
) -> None:
    """`POST /api/v1/analytics/flags/`: add each known feature's count to today's; unknown
    names are dropped silently, as the reference drops them."""
    counts: dict[int, int] = {}
    for name, count in request.counts.items():
        feature = snapshot.features.get(name)
        if feature is not None:
            counts[feature.id] = counts.get(feature.id, 0) + count
    if not counts:
        return
    with db.session() as session:
        repo.add_evaluation_counts(session, snapshot.environment_id, counts, now.date())
