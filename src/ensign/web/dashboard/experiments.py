"""One experiment's page: exposures per variant as a bar chart against the weights, the
sample-ratio warning, where its exposure events stand per integration, the SDKs' exposures
Ensign refused, and start/stop. A
feature's page starts experiments on it and links to them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.errors import EnsignError
from ensign.integrations.catalog import SCHEMAS
from ensign.services import events, experiment_results
from ensign.services.admin import experiments
from ensign.services.admin.experiments import ExperimentInput
from ensign.services.experiment_results import ExperimentReport
from ensign.web.dashboard import nav
from ensign.web.dashboard.charts import BarChart, Datum, bar_chart
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)
from ensign.web.dashboard.feature_editor import feature_page

router = APIRouter(route_class=DashboardRoute)

MAX_NAME_LENGTH = 200


def _page(
    dash: DashContext, env_id: int, experiment_id: int, errors: FormErrors | None = None
) -> Response:
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "features")
        env = context["environment"]
        report = experiment_results.experiment_results(
            unit.session, dash.user, env.api_key, experiment_id
        )
        event_status = events.event_status(unit.session, dash.user, env.api_key)
        context.update(
            experiment=report.experiment,
            feature=report.feature,
            segment=report.segment,
            results=report.results,
            identities=report.identities,
            chart=_chart(report),
            event_counts=event_status.counts,
            unmatched_exposures=[
                e for e in event_status.unmatched if e.feature_name == report.feature.name
            ][:20],
            deliveries=[
                {
                    "kind": d.kind,
                    "label": SCHEMAS[d.kind].label if d.kind in SCHEMAS else d.kind,
                    "sends": d.sends,
                    "pending": d.queue.pending + d.queue.retrying,
                    "failed": d.queue.failed,
                    "given_up": d.queue.given_up,
                }
                for d in report.deliveries
            ],
            errors=errors or FormErrors(),
        )
        status = 400 if errors else 200
        return render(dash, "pages/experiment.html", context, status_code=status)


def _chart(report: ExperimentReport) -> BarChart:
    recorded = [v for v in report.results.variants if v.is_recorded]
    weight_sum = sum(v.weight for v in recorded)
    return bar_chart(
        [
            # The tick is the variant's share of the recorded exposures the weights promise.
            Datum(v.key or "", v.exposures, 100 * v.weight / weight_sum if weight_sum else None)
            for v in recorded
        ],
        title=f"Identities exposed per variant of {report.experiment.name}",
    )


@router.get("/environments/{env_id}/experiments/{experiment_id}")
def show_experiment(env_id: int, experiment_id: int, dash: DashContext) -> Response:
    return _page(dash, env_id, experiment_id)


@router.post("/environments/{env_id}/experiments/{experiment_id}/start")
def start_experiment(env_id: int, experiment_id: int, dash: DashContext) -> Response:
    return _set_running(dash, env_id, experiment_id, running=True)


@router.post("/environments/{env_id}/experiments/{experiment_id}/stop")
def stop_experiment(env_id: int, experiment_id: int, dash: DashContext) -> Response:
    return _set_running(dash, env_id, experiment_id, running=False)


def _set_running(dash: DashContext, env_id: int, experiment_id: int, *, running: bool) -> Response:
    errors = FormErrors()
    try:
        with dash.state.units.write() as unit:
            env = nav.environment(unit.session, dash.user, env_id)
            experiment_results.set_running(unit, dash.user, env.api_key, experiment_id, running)
    except EnsignError as error:
        errors.add(error, "running")
    if errors:
        return _page(dash, env_id, experiment_id, errors)
    dash.flash("Experiment started." if running else "Experiment stopped.")
    return redirect(f"/environments/{env_id}/experiments/{experiment_id}")


@router.post("/environments/{env_id}/features/{feature_id}/experiments")
def create_experiment(env_id: int, feature_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = dash.value("experiment_name").strip()
    if not name:
        errors.set("experiment_name", "A name is required.")
    elif len(name) > MAX_NAME_LENGTH:
        errors.set("experiment_name", f"At most {MAX_NAME_LENGTH} characters.")
    if not errors:
        try:
            with dash.state.units.write() as unit:
                env = nav.environment(unit.session, dash.user, env_id)
                experiment = experiments.create_experiment(
                    unit,
                    dash.user,
                    env.api_key,
                    ExperimentInput(name=name, feature=feature_id, running=True),
                )
                experiment_id = experiment.id
        except EnsignError as error:
            errors.add(error, "experiment_name")
            errors.fields.setdefault("experiment_name", errors.fields.pop("feature", ""))
    if errors:
        return feature_page(dash, env_id, feature_id, errors)
    dash.flash("Experiment started.")
    return redirect(f"/environments/{env_id}/experiments/{experiment_id}")
