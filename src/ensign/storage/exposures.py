"""Reading an experiment's exposures: the identities exposed to each variant, and where the
exposure events stand in the integrations' queues. (Recording them is `storage.experiments`.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, cast, func, select
from sqlalchemy.orm import Session

from ensign.storage import dialect
from ensign.storage.models import Exposure, OutboxDelivery, RecordedEvaluation
from ensign.storage.outbox import FAILED, GIVEN_UP, PENDING

# The outbox record kind of an exposure event (`RecordedEvaluation.kind`).
EXPOSURE_KIND = "exposure"


def exposures_by_variant(session: Session, experiment_id: int) -> dict[str, int]:
    """Variant key → distinct identities exposed to it. The table's unique key (experiment,
    identifier, variant) makes each row one identity's first exposure to one variant, so a
    row count is a count of distinct identities, read from that key's index."""
    rows = session.execute(
        select(Exposure.variant, func.count())
        .where(Exposure.experiment_id == experiment_id)
        .group_by(Exposure.variant)
    )
    return {variant: int(count) for variant, count in rows}


def exposed_identities(session: Session, experiment_id: int) -> int:
    """Distinct identities exposed to any variant (one that moved variant counts once here)."""
    count = session.scalar(
        select(func.count(func.distinct(Exposure.identifier))).where(
            Exposure.experiment_id == experiment_id
        )
    )
    return int(count or 0)


@dataclass(frozen=True)
class ExposureQueue:
    """An integration's exposure events not yet delivered (delivered ones leave the queue)."""

    pending: int = 0
    retrying: int = 0
    failed: int = 0
    given_up: int = 0


def _experiment_of_record(session: Session) -> Any:
    """The experiment id an exposure record carries in its JSON payload (`experiment_id`, see
    `services.exposures.exposure_record`), read by the database's own JSON functions."""
    if dialect.is_postgres(session):
        return func.json_extract_path_text(cast(RecordedEvaluation.flags, JSON), "experiment_id")
    return func.json_extract(RecordedEvaluation.flags, "$.experiment_id")


def exposure_queues(
    session: Session, environment_id: int, experiment_id: int
) -> dict[int, ExposureQueue]:
    """Integration id → its queue of one experiment's exposure events, by state."""
    experiment = _experiment_of_record(session)
    wanted = str(experiment_id) if dialect.is_postgres(session) else experiment_id
    rows = session.execute(
        select(
            OutboxDelivery.integration_id,
            func.count().filter(OutboxDelivery.status == PENDING, OutboxDelivery.attempts == 0),
            func.count().filter(OutboxDelivery.status == PENDING, OutboxDelivery.attempts > 0),
            func.count().filter(OutboxDelivery.status == FAILED),
            func.count().filter(OutboxDelivery.status == GIVEN_UP),
        )
        .join(RecordedEvaluation, RecordedEvaluation.id == OutboxDelivery.evaluation_id)
        .where(
            RecordedEvaluation.environment_id == environment_id,
            RecordedEvaluation.kind == EXPOSURE_KIND,
            experiment == wanted,
            OutboxDelivery.is_test.is_(False),
        )
        .group_by(OutboxDelivery.integration_id)
    )
    return {
        r[0]: ExposureQueue(int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0))
        for r in rows
    }
