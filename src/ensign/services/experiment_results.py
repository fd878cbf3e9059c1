"""An experiment's results: per variant, its configured weight and the identities exposed to it,
and a sample-ratio check (SRM) of those exposures against the weights.

A sample ratio mismatch means the split that happened is not the split that was configured:
users were lost or added unevenly between variants (a redirect that drops some, a bot, an
exposure logged only on one branch), so comparing the variants' conversion would be biased.
The check is Pearson's chi-square goodness-of-fit test of the exposure counts against the
weights, computed by scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ensign.integrations.common import CommonSettings
from ensign.services.admin import access, experiments
from ensign.services.keys import AdminPrincipal
from ensign.storage import exposures as exposure_store
from ensign.storage import features as feature_store
from ensign.storage import integrations as integration_store
from ensign.storage.exposures import ExposureQueue
from ensign.storage.models import Environment, Experiment, Feature, Segment
from ensign.storage.unit_of_work import UnitOfWork

CONTROL = "control"
# Below this p-value the dashboard warns. The usual SRM threshold: the check runs on every page
# view of a running experiment, so a lax one (0.05) would cry wolf on healthy experiments.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class VariantWeight:
    """One of the feature's variants and its weight in percent: a multivariate option (`key` is
    its key, None for an option without one) or control (`option` None)."""

    key: str | None
    weight: float
    option: int | None = None


@dataclass(frozen=True)
class VariantResult:
    key: str | None
    weight: float
    exposures: int
    option: int | None = None
    # False for a variant that has exposures but is no longer configured (its option was deleted
    # or its key changed while the experiment ran); its weight is then 0.
    configured: bool = True

    @property
    def is_recorded(self) -> bool:
        """Whether exposures to it are recorded: an option without a key has no variant name to
        send, so identities served it are never exposed (and it stays out of the check)."""
        return self.key is not None


@dataclass(frozen=True)
class ExperimentResults:
    variants: list[VariantResult]
    srm_p_value: float | None

    @property
    def exposures(self) -> int:
        return sum(v.exposures for v in self.variants)

    @property
    def is_sample_ratio_mismatch(self) -> bool:
        return self.srm_p_value is not None and self.srm_p_value < SRM_THRESHOLD


def variant_weights(options: Sequence[VariantWeight]) -> list[VariantWeight]:
    """The variants an identity can be served, `control` first: the options, and control with
    what they leave of 100% (never below 0, as the engine gives control nothing then)."""
    control = max(0.0, 100.0 - sum(o.weight for o in options))
    return [VariantWeight(CONTROL, control), *options]


def compute_results(
    options: Sequence[VariantWeight], exposures: Mapping[str, int]
) -> ExperimentResults:
    """Results of an experiment on a feature with these options (control is added), given the
    number of distinct identities exposed to each variant key."""
    weights = variant_weights(options)
    known = {w.key for w in weights}
    variants = [
        VariantResult(w.key, w.weight, exposures.get(w.key, 0) if w.key else 0, w.option)
        for w in weights
    ]
    variants += [
        VariantResult(key, 0.0, count, configured=False)
        for key, count in sorted(exposures.items())
        if key not in known and count > 0
    ]
    return ExperimentResults(variants, srm_p_value(variants))


def srm_p_value(variants: Sequence[VariantResult]) -> float | None:
    """The chi-square goodness-of-fit p-value of the exposure counts against the weights.

    - No exposures at all: None, there is nothing to test yet.
    - Exposures to a variant of weight 0: 0.0, a certain mismatch (no split can serve it);
      scipy would divide by a zero expectation.
    - Fewer than two variants with a weight: None, a one-way split cannot be unbalanced.
    Options without a key are left out (their identities are never recorded as exposed), and
    the other weights compared as shares of what remains.
    The test's approximation is rough while a variant expects fewer than about 5 exposures, so
    a young experiment's p-value moves a lot; it settles as exposures grow.
    """
    variants = [v for v in variants if v.is_recorded]
    total = sum(v.exposures for v in variants)
    if total == 0:
        return None
    if any(v.weight <= 0 and v.exposures > 0 for v in variants):
        return 0.0
    weighted = [v for v in variants if v.weight > 0]
    if len(weighted) < 2:
        return None
    # Imported here: scipy takes a noticeable time to import, and only this needs it.
    from scipy.stats import chisquare

    weight_sum = sum(v.weight for v in weighted)
    expected = [total * v.weight / weight_sum for v in weighted]
    p_value = float(chisquare([v.exposures for v in weighted], expected).pvalue)
    return None if math.isnan(p_value) else p_value


# --- the use cases: the admin API's results and the dashboard's experiment page --------------


@dataclass(frozen=True)
class ExposureDelivery:
    """Where one integration's exposure events stand."""

    integration_id: int
    kind: str
    # Whether new exposures are sent to it: enabled, with its `exposures` field on.
    sends: bool
    queue: ExposureQueue


@dataclass(frozen=True)
class ExperimentReport:
    environment: Environment
    experiment: Experiment
    feature: Feature
    segment: Segment | None
    results: ExperimentResults
    # Distinct identities exposed to any variant (one that changed variant counts once).
    identities: int
    deliveries: list[ExposureDelivery]


def experiment_results(
    session: Session, principal: AdminPrincipal, env_key: str, experiment_id: int
) -> ExperimentReport:
    """An experiment's results, weighed against its feature's weights in the environment now."""
    experiment = experiments.get_experiment(session, principal, env_key, experiment_id)
    env = access.environment_for(session, principal, env_key)
    project = access.project_for(session, principal, env.project_id)
    feature = access.feature_for(session, project, experiment.feature_id)
    state = feature_store.feature_state_in_scope(session, env.id, feature.id, "")
    weights = {v.option_id: v.percentage_allocation for v in state.mv_values} if state else {}
    options = [VariantWeight(o.key, weights.get(o.id, 0.0), o.id) for o in feature.options]
    results = compute_results(options, exposure_store.exposures_by_variant(session, experiment.id))
    segment = (
        access.segment_for(session, project, experiment.segment_id)
        if experiment.segment_id is not None
        else None
    )
    queues = exposure_store.exposure_queues(session, env.id, experiment.id)
    deliveries = [
        ExposureDelivery(
            config.id,
            config.kind,
            CommonSettings.of(config).sends_exposures,
            queues.get(config.id, ExposureQueue()),
        )
        for config in integration_store.configs_of_environment(session, env.id)
    ]
    return ExperimentReport(
        env,
        experiment,
        feature,
        segment,
        results,
        exposure_store.exposed_identities(session, experiment.id),
        deliveries,
    )


def set_running(
    unit: UnitOfWork, principal: AdminPrincipal, env_key: str, experiment_id: int, running: bool
) -> Experiment:
    """Start or stop an experiment, as the admin API's `{"running": …}` does (audited)."""
    change = experiments.ExperimentInput(running=running, given=frozenset({"running"}))
    return experiments.update_experiment(unit, principal, env_key, experiment_id, change)
