"""Prometheus metrics of delivery, which `/metrics` renders (see `web.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVALUATIONS = Counter(
    "ensign_delivery_evaluations_total",
    "Evaluations that reached an end state, or were scheduled for a retry, by integration kind.",
    ["kind", "outcome"],
)
REQUESTS = Counter(
    "ensign_delivery_requests_total",
    "Requests sent to analytics vendors, by integration kind and outcome.",
    ["kind", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "ensign_delivery_request_seconds",
    "Duration of each request to an analytics vendor.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LATENCY_SECONDS = Histogram(
    "ensign_delivery_latency_seconds",
    "Time from an identity's evaluation to its delivery to the vendor.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)
QUEUE_DEPTH = Gauge(
    "ensign_delivery_queue_depth",
    "Evaluations waiting for delivery (first try or retry), by integration kind.",
    ["kind"],
    # With the processes of one `serve` sharing their metrics, the latest reading of any.
    multiprocess_mode="livemostrecent",
)
