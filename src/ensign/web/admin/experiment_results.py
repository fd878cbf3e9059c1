"""An experiment's results: exposures per variant against the weights, with the sample-ratio
check. A read of its own, since the experiments' CRUD stays in `experiments`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ensign.services import experiment_results
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
            unit.session, principal, env_key, experiment_id
        )
        return results(report)
