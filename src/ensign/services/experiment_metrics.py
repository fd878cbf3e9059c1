"""An experiment's metrics: their definitions, the per-user values kept as events arrive, and
the per-variant statistics of the results.

Attribution: an identity counts in the variant of its first exposure, and only its events from
that exposure until `window_hours` after it count. An identity exposed to more than one variant
is left out (and counted as `multiple_exposures`); events of identities never exposed, or that
arrive while the experiment is stopped, count nowhere. Values are kept per metric name from
the moment the metric is defined: events are not stored, so a metric added or redefined later
starts from the events received after that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput
from ensign.services.event_requests import SdkEvent
from ensign.services.experiment_stats import Comparison, Sample, compare_conversion, compare_means
from ensign.storage import experiment_metrics as store

CONVERSION, COUNT, SUM = "conversion", "count", "sum"
KINDS = (CONVERSION, COUNT, SUM)
MAX_METRICS = 20
MAX_NAME_CHARS = 200
DEFAULT_WINDOW_HOURS = 168
# A year: longer windows would outlive any experiment.
MAX_WINDOW_HOURS = 24 * 366
# Figures below this many users per variant are shown, marked `insufficient_data`.
DEFAULT_MIN_USERS = 100

Kind = Literal["conversion", "count", "sum"]


@dataclass(frozen=True)
class Metric:
    name: str
    event: str
    kind: Kind
    property: str | None = None
    window_hours: float = DEFAULT_WINDOW_HOURS
    primary: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _text(item: dict[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"{where}.{key}: a non-empty string of at most {MAX_NAME_CHARS} characters.",
            field="metrics",
        )
    return value


def parse_metrics(raw: object) -> list[Metric]:
    """The metrics of a PATCH body, checked: InvalidInput names the first bad one."""
    if not isinstance(raw, list):
        raise InvalidInput("metrics: a list of metrics.", field="metrics")
    if len(raw) > MAX_METRICS:
        raise InvalidInput(f"metrics: at most {MAX_METRICS} metrics.", field="metrics")
    metrics: list[Metric] = []
    for index, item in enumerate(raw):
        where = f"metrics[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: an object.", field="metrics")
        unknown = set(item) - {"name", "event", "kind", "property", "window_hours", "primary"}
        if unknown:
            raise InvalidInput(f"{where}: unknown field {sorted(unknown)[0]!r}.", field="metrics")
        name = _text(item, "name", where)
        if name is not None and name.startswith("$"):
            raise InvalidInput(f"{where}.name: may not begin with $.", field="metrics")
        event = _text(item, "event", where)
        kind = item.get("kind")
        if kind not in KINDS:
            raise InvalidInput(f"{where}.kind: one of {', '.join(KINDS)}.", field="metrics")
        prop = _text(item, "property", where, required=kind == SUM)
        if kind != SUM and prop is not None:
            raise InvalidInput(f"{where}.property: only a sum metric sums one.", field="metrics")
        window = item.get("window_hours", DEFAULT_WINDOW_HOURS)
        if (
            isinstance(window, bool)
            or not isinstance(window, int | float)
            or not math.isfinite(window)
            or not 0 < window <= MAX_WINDOW_HOURS
        ):
            raise InvalidInput(
                f"{where}.window_hours: a number of hours above 0, at most {MAX_WINDOW_HOURS}.",
                field="metrics",
            )
        primary = item.get("primary", False)
        if not isinstance(primary, bool):
            raise InvalidInput(f"{where}.primary: true or false.", field="metrics")
        assert name is not None and event is not None
        metrics.append(Metric(name, event, kind, prop, window, primary))
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise InvalidInput("metrics: each metric needs its own name.", field="metrics")
    if sum(m.primary for m in metrics) > 1:
        raise InvalidInput("metrics: at most one primary metric.", field="metrics")
    return metrics


def stored_metrics(raw: Sequence[Any] | None) -> list[Metric]:
    """The metrics as stored on the experiment (checked when they were saved)."""
    return [Metric(**item) for item in raw or []]


def _measures(metric: Metric) -> tuple[object, ...]:
    """What a metric's values depend on (not `primary`, which only marks it)."""
    return (metric.event, metric.kind, metric.property, metric.window_hours)


def changed_names(before: Sequence[Metric], after: Sequence[Metric]) -> set[str]:
    """Metrics removed or redefined: their values no longer mean what the definition says."""
    now = {m.name: _measures(m) for m in after}
    return {m.name for m in before if now.get(m.name) != _measures(m)}


# --- recording events -------------------------------------------------------------------------


def _amount(metric: Metric, event: SdkEvent) -> float | None:
    if metric.kind != SUM:
        return 1.0
    assert metric.property is not None
    value = event.properties().get(metric.property)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None  # an event without the number counts as no event for a sum
    return float(value)


def record_events(session: Session, environment_id: int, events: Sequence[SdkEvent]) -> int:
    """Add new custom events to the metrics of the environment's running experiments, in the
    caller's transaction; answers how many (event, metric) pairs counted."""
    wanted = [e for e in events if not e.is_exposure and e.identifier is not None]
    if not wanted:
        return 0
    by_event: dict[str, list[tuple[int, Metric]]] = {}
    for experiment_id, raw in store.running_metrics(session, environment_id):
        for metric in stored_metrics(raw):
            by_event.setdefault(metric.event, []).append((experiment_id, metric))
    wanted = [e for e in wanted if e.name in by_event]
    if not wanted:
        return 0
    experiment_ids = sorted({i for pairs in by_event.values() for i, _ in pairs})
    identifiers = sorted({e.identifier for e in wanted if e.identifier is not None})
    users = store.exposed_users(session, experiment_ids, identifiers)
    increments: dict[store.ValueKey, tuple[int, float]] = {}
    for event in wanted:
        assert event.identifier is not None
        for experiment_id, metric in by_event[event.name]:
            user = users.get((experiment_id, event.identifier))
            if user is None:
                continue
            since = (event.occurred_at - user.exposed_at).total_seconds()
            if not 0 <= since <= metric.window_hours * 3600:
                continue
            amount = _amount(metric, event)
            if amount is None:
                continue
            key = store.ValueKey(experiment_id, metric.name, event.identifier, user.variant)
            count, total = increments.get(key, (0, 0.0))
            increments[key] = (count + 1, total + amount)
    store.add_values(session, increments)
    return sum(count for count, _ in increments.values())


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantMetric:
    variant: str
    sample: Sample
    comparison: Comparison | None  # None for control
    insufficient_data: bool


@dataclass(frozen=True)
class MetricResult:
    metric: Metric
    variants: list[VariantMetric]


@dataclass(frozen=True)
class MetricsReport:
    # Variant → users counted in metrics (exposed to it first and to no other variant).
    users: dict[str, int]
    multiple_exposures: int
    # Variant → distinct identities ever exposed to it (one that moved counts in both).
    exposures: dict[str, int]
    min_users: int
    metrics: list[MetricResult]

    @property
    def exposed_identities(self) -> int:
        return sum(self.users.values()) + self.multiple_exposures


def metric_results(
    session: Session,
    experiment_id: int,
    raw_metrics: Sequence[Any] | None,
    variants: Sequence[str],
    control: str,
    min_users: int = DEFAULT_MIN_USERS,
) -> MetricsReport:
    """Each metric's figures per variant (`variants`, in order, control among them), from the
    running totals: one read of a few rows, whatever the number of users and events."""
    totals = store.totals(session, experiment_id)
    counted = totals.get(store.USERS, {})
    multiple = counted.get(store.LEFT_OUT, store.Totals()).users
    users = {v: t.users for v, t in counted.items() if v != store.LEFT_OUT and t.users}
    exposures = {v: t.users for v, t in totals.get(store.EXPOSURES, {}).items() if t.users}
    order = list(variants) + sorted(set(users) - set(variants))
    results: list[MetricResult] = []
    for metric in stored_metrics(raw_metrics):
        sums = totals.get(metric.name, {})
        samples = {}
        for variant in order:
            got = sums.get(variant, store.Totals())
            samples[variant] = Sample(users.get(variant, 0), got.total, got.squares, got.converted)
        base = samples.get(control, Sample(0))
        compare = compare_conversion if metric.kind == CONVERSION else compare_means
        rows = [
            VariantMetric(
                variant,
                sample,
                None if variant == control else compare(base, sample),
                sample.users < min_users or base.users < min_users,
            )
            for variant, sample in samples.items()
        ]
        results.append(MetricResult(metric, rows))
    return MetricsReport(users, multiple, exposures, min_users, results)
