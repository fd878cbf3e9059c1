"""Analytics integrations as the admin API sees them: their configurations, queue depth and
attempts, and the test events it sends."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from ensign.storage import outbox
from ensign.storage.models import DeliveryAttempt, IntegrationConfig, OutboxDelivery
from ensign.storage.outbox import PENDING
from ensign.storage.pagination import Page, Window, page


def configs_of_environment(session: Session, environment_id: int) -> list[IntegrationConfig]:
    return list(
        session.scalars(
            select(IntegrationConfig)
            .where(IntegrationConfig.environment_id == environment_id)
            .order_by(IntegrationConfig.id)
        ).all()
    )


def config_by_id(session: Session, integration_id: int) -> IntegrationConfig | None:
    if not 1 <= integration_id <= 2**31 - 1:
        return None
    return session.get(IntegrationConfig, integration_id)


def add_config(session: Session, config: IntegrationConfig) -> None:
    session.add(config)
    session.flush()


def save(session: Session) -> None:
    """Write the changes made to loaded configurations (ids and checks see them at once)."""
    session.flush()


def delete_config(session: Session, config: IntegrationConfig) -> None:
    # Deleted explicitly, not left to ON DELETE CASCADE: SQLite only cascades with foreign
    # keys switched on, which a connection made elsewhere may not do.
    evaluation_ids = list(
        session.scalars(
            select(OutboxDelivery.evaluation_id).where(OutboxDelivery.integration_id == config.id)
        )
    )
    session.execute(delete(OutboxDelivery).where(OutboxDelivery.integration_id == config.id))
    outbox.delete_unreferenced(session, evaluation_ids)
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.integration_id == config.id))
    session.delete(config)
    session.flush()


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    retrying: int


def queue_counts(session: Session, integration_id: int) -> QueueCounts:
    """Pending evaluations never tried, and those waiting to be retried."""
    row = session.execute(
        select(
            func.count().filter(OutboxDelivery.attempts == 0),
            func.count().filter(OutboxDelivery.attempts > 0),
        ).where(
            OutboxDelivery.integration_id == integration_id,
            OutboxDelivery.status == PENDING,
            OutboxDelivery.is_test.is_(False),
        )
    ).one()
    return QueueCounts(int(row[0] or 0), int(row[1] or 0))


def queue_depth_by_kind(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(IntegrationConfig.kind, func.count(OutboxDelivery.id))
        .join(
            OutboxDelivery,
            and_(
                OutboxDelivery.integration_id == IntegrationConfig.id,
                OutboxDelivery.status == PENDING,
            ),
        )
        .group_by(IntegrationConfig.kind)
    )
    return {r[0]: int(r[1]) for r in rows}


def attempts(session: Session, integration_id: int, window: Window) -> Page[DeliveryAttempt]:
    """The integration's attempts, newest first."""
    statement = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.integration_id == integration_id)
        .order_by(DeliveryAttempt.id.desc())
    )
    return page(session, statement, window)


def test_event_state(
    session: Session, row_id: int
) -> tuple[OutboxDelivery | None, DeliveryAttempt | None]:
    """A test event's row and its last attempt, if it was tried."""
    row = session.get(OutboxDelivery, row_id)
    if row is None or row.last_attempt_id is None:
        return row, None
    return row, session.get(DeliveryAttempt, row.last_attempt_id)


def delete_test_event(session: Session, row_id: int) -> None:
    evaluation_ids = list(
        session.scalars(
            delete(OutboxDelivery)
            .where(OutboxDelivery.id == row_id, OutboxDelivery.is_test.is_(True))
            .returning(OutboxDelivery.evaluation_id)
        )
    )
    outbox.delete_unreferenced(session, evaluation_ids)
