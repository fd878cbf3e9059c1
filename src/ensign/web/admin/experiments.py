"""An environment's experiments: A/B tests of multivariate features, started and stopped."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.services.admin import experiments
from ensign.services.admin.experiments import ExperimentInput
from ensign.web.admin import render
from ensign.web.admin.routing import Pages, admin_route, no_content, paginated
from ensign.web.admin.schemas import Body, Id, Name, Patch
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Experiments"])
route = admin_route
BASE = "/environments/{env_key}/experiments/"


class ExperimentCreate(Body):
    name: Name
    feature: Id
    segment: Id | None = None
    running: bool = True


class ExperimentUpdate(Patch):
    nullable = frozenset({"segment"})
    name: Name | None = None
    feature: Id | None = None
    segment: Id | None = None
    running: bool | None = None


def _input(body: ExperimentCreate | ExperimentUpdate) -> ExperimentInput:
    return ExperimentInput(
        name=body.name,
        feature=body.feature,
        segment=body.segment,
        running=body.running,
        given=frozenset(body.model_fields_set),
    )


@route(router, BASE, ["GET"], summary="List experiments")
def list_experiments(
    env_key: str, request: Request, paging: Pages, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = experiments.list_experiments(unit.session, principal, env_key, paging.window)
        return paginated(request, paging, page, render.experiment)


@route(router, BASE, ["POST"], status_code=201, summary="Create an experiment")
def create_experiment(
    env_key: str, body: ExperimentCreate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = experiments.create_experiment(unit, principal, env_key, _input(body))
        return render.experiment(row)


@route(router, BASE + "{experiment_id}/", ["GET"], summary="Read an experiment")
def get_experiment(
    env_key: str, experiment_id: int, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.read() as unit:
        row = experiments.get_experiment(unit.session, principal, env_key, experiment_id)
        return render.experiment(row)


@route(
    router,
    BASE + "{experiment_id}/",
    ["PUT", "PATCH"],
    summary="Update, start or stop an experiment",
)
def update_experiment(
    env_key: str, experiment_id: int, body: ExperimentUpdate, state: State, principal: Admin
) -> dict[str, Any]:
    with state.units.write() as unit:
        row = experiments.update_experiment(unit, principal, env_key, experiment_id, _input(body))
        return render.experiment(row)


@route(
    router, BASE + "{experiment_id}/", ["DELETE"], status_code=204, summary="Delete an experiment"
)
def delete_experiment(env_key: str, experiment_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        experiments.delete_experiment(unit, principal, env_key, experiment_id)
    return no_content()
