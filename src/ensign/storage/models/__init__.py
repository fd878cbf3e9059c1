"""The tables, one module per aggregate. Importing this package registers every table on
`Base.metadata`, which Alembic compares with the database. Every schema change goes through an
Alembic migration in `migrations/versions`."""

from ensign.storage.base import Base, OutboxId, UTCDateTime, utcnow
from ensign.storage.models.audit import AuditLog
from ensign.storage.models.changes import ChangeRecord
from ensign.storage.models.cohorts import (
    Cohort,
    CohortMember,
    CohortSyncKey,
    CohortSyncLogEntry,
    CohortSyncSession,
    CohortSyncSettings,
)
from ensign.storage.models.environments import (
    Environment,
    FlagEvaluationCount,
    Organisation,
    Project,
    ServerKey,
)
from ensign.storage.models.events import EventCounters, ReceivedEvent, UnmatchedExposure
from ensign.storage.models.experiment_metrics import (
    ExperimentMetricTotal,
    ExperimentMetricUser,
    ExperimentMetricValue,
)
from ensign.storage.models.experiments import Experiment, Exposure
from ensign.storage.models.features import (
    Feature,
    FeatureState,
    FeatureTag,
    HashingSeed,
    MultivariateOption,
    MultivariateStateValue,
    Segment,
    Tag,
)
from ensign.storage.models.identities import Identity, Trait
from ensign.storage.models.outbox import (
    DeliveryAttempt,
    IntegrationConfig,
    OutboxDelivery,
    RecordedEvaluation,
)
from ensign.storage.models.users import AdminApiKey, DashboardSession, ServerSecret, User

__all__ = [
    "AdminApiKey",
    "AuditLog",
    "Base",
    "ChangeRecord",
    "Cohort",
    "CohortMember",
    "CohortSyncKey",
    "CohortSyncLogEntry",
    "CohortSyncSession",
    "CohortSyncSettings",
    "DashboardSession",
    "DeliveryAttempt",
    "Environment",
    "EventCounters",
    "Experiment",
    "ExperimentMetricTotal",
    "ExperimentMetricUser",
    "ExperimentMetricValue",
    "Exposure",
    "Feature",
    "FeatureState",
    "FeatureTag",
    "FlagEvaluationCount",
    "HashingSeed",
    "Identity",
    "IntegrationConfig",
    "MultivariateOption",
    "MultivariateStateValue",
    "Organisation",
    "OutboxDelivery",
    "OutboxId",
    "Project",
    "ReceivedEvent",
    "RecordedEvaluation",
    "Segment",
    "ServerKey",
    "ServerSecret",
    "Tag",
    "Trait",
    "UTCDateTime",
    "UnmatchedExposure",
    "User",
    "utcnow",
]
