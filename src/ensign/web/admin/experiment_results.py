"""An experiment's results: exposures per variant against the weights, with the sample-ratio
check. A read of its own, since the experiments' CRUD stays in `experiments`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ensign.services import experiment_results
from ensign.services.experiment_metrics import CONVERSION, MetricsReport, VariantMetric
from ensign.services.experiment_results import SRM_THRESHOLD, ExperimentReport
from ensign.web.admin import render
from ensign.web.admin.routing import admin_route
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Experiments"])


def results(report: ExperimentReport) -> dict[str, Any]:
    outcome = report.results
    return {
        "experiment": render.experiment(report.experiment),
        "exposed_identities": report.identities,
        "srm_p_value": outcome.srm_p_value,
        "srm_threshold": SRM_THRESHOLD,
        "sample_ratio_mismatch": outcome.is_sample_ratio_mismatch,
        "variants": [
            {
                "variant": v.key,
                "option": v.option,
                "weight": v.weight,
                "exposures": v.exposures,
                "configured": v.configured,
                "recorded": v.is_recorded,
            }
            for v in outcome.variants
        ],
        **(metrics(report.metrics) if report.metrics is not None else {}),
    }


def _variant_metric(kind: str, row: VariantMetric) -> dict[str, Any]:
    sample = row.sample
    figures: dict[str, Any] = {"variant": row.variant, "users": sample.users}
    if kind == CONVERSION:
        figures |= {"converted": sample.converted, "rate": sample.rate}
    else:
        figures |= {"mean": sample.mean, "stddev": sample.stddev, "rate": sample.mean}
    versus = row.comparison
    figures |= {
        "lift": versus.lift if versus else None,
        "lift_ci": (
            [versus.lift_low, versus.lift_high] if versus and versus.lift_low is not None else None
        ),
        "p_value": versus.p_value if versus else None,
        "chance_to_beat_control": versus.chance_to_beat_control if versus else None,
        "insufficient_data": row.insufficient_data,
    }
    return figures


def metrics(report: MetricsReport) -> dict[str, Any]:
    """Each metric's figures per variant; control's comparisons are null."""
    return {
        "metric_users": report.users,
        "multiple_exposures": report.multiple_exposures,
        "min_users": report.min_users,
        "metrics": [
            {
                **result.metric.as_json(),
                "variants": [_variant_metric(result.metric.kind, v) for v in result.variants],
            }
            for result in report.metrics
        ],
    }


@admin_route(
    router,
    "/environments/{env_key}/experiments/{experiment_id}/results/",
    ["GET"],
    summary="An experiment's exposures per variant and sample-ratio check",
)
def get_results(env_key: str, experiment_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        report = experiment_results.experiment_results(
            unit.session,
            principal,
            env_key,
            experiment_id,
            min_users=state.settings.experiment_min_users,
        )
        return results(report)
