"""`/metrics`: Prometheus metrics (delivery counters, histograms, queue depth, streams).

Under `ensign serve` every process of the server (each web worker, the delivery process)
writes its values to files in PROMETHEUS_MULTIPROC_DIR, and this sums them; elsewhere (an app
created in a test, say) it renders the process's own registry.

Open by default, for a scraper on the same host; with `ENSIGN_METRICS_TOKEN` set, only a
scraper sending that token as a bearer token may read them.
"""

from __future__ import annotations

import os
import secrets

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from ensign.errors import AuthenticationFailed
from ensign.services import events
from ensign.web.deps import State

router = APIRouter()


def _has_token(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), token.encode()
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, state: State) -> Response:
    token = state.settings.metrics_token
    if token and not _has_token(request, token):
        raise AuthenticationFailed(
            "/metrics needs `Authorization: Bearer <token>` with the ENSIGN_METRICS_TOKEN token."
        )
    with state.units.read() as unit:
        event_lines = events.metric_lines(unit.session)
    body = generate_latest(_registry()) + "\n".join(event_lines).encode() + b"\n"
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
