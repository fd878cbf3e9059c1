"""Features and segment overrides, compiled into ready-made flag results.

Variants are sorted into cumulative buckets once, and every result a feature context can give
(plain, control, or one per variant) is built once with its reason, both as the conformance
API's dict and as a :class:`~ensign.engine.outcomes.FlagOutcome`; evaluating then only hashes
and picks a template (copying it, for the dicts).
"""

from dataclasses import dataclass
from typing import Any

from ensign.engine.context import FlagResult
from ensign.engine.errors import EngineError
from ensign.engine.hashing import hash_pct_pair
from ensign.engine.outcomes import (
    STATE_ID_METADATA_KEY,
    FlagOutcome,
    OverrideSource,
    ReasonKind,
    wire_reason,
)

DEFAULT_REASON = "DEFAULT"
CONTROL_VARIANT = "control"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One variant as the half-open percentage range ``[start, limit)`` it claims."""

    start: float
    limit: float
    result: FlagResult
    outcome: FlagOutcome


@dataclass(frozen=True, slots=True)
class CompiledFeature:
    """A feature context (default or override) with the reason it reports when used.

    The dict templates are never handed out: callers get shallow copies, so only nested
    ``metadata`` and values are shared. The outcomes are immutable and handed out as they are.
    """

    name: str
    key: str
    plain: FlagResult
    control: FlagResult
    buckets: tuple[Bucket, ...]
    plain_outcome: FlagOutcome
    control_outcome: FlagOutcome

    def flag(self, identity_key: str | None) -> FlagResult:
        """The flag result for an identity key (``None`` without an identity)."""
        if identity_key is None or not self.buckets:
            return self.plain.copy()
        pct = hash_pct_pair(self.key, identity_key)
        for bucket in self.buckets:
            if bucket.start <= pct < bucket.limit:
                return bucket.result.copy()
        return self.control.copy()

    def outcome(self, identity_key: str | None) -> FlagOutcome:
        """The same choice as :meth:`flag`, as a structured outcome."""
        if identity_key is None or not self.buckets:
            return self.plain_outcome
        pct = hash_pct_pair(self.key, identity_key)
        for bucket in self.buckets:
            if bucket.start <= pct < bucket.limit:
                return bucket.outcome
        return self.control_outcome


def compile_feature(
    feature: Any,
    where: str,
    *,
    source: OverrideSource,
    kind: ReasonKind,
    segment: str | None = None,
) -> CompiledFeature:
    """Check a feature context's structure and compile it.

    Unsplit outcomes report ``kind`` (STATIC or DEFAULT for a default, TARGETING_MATCH for a
    segment override); the conformance dicts report engine 10.2's reasons, where every
    default is DEFAULT.
    """
    if not isinstance(feature, dict):
        raise EngineError(f"{where}: a feature must be an object")
    for field in ("name", "enabled"):
        if field not in feature:
            raise EngineError(f"{where}.{field}: required")
    name = feature["name"]
    if not isinstance(name, str):
        raise EngineError(f"{where}.name: must be a string")
    key = feature.get("key")
    variants = feature.get("variants") or []
    if not isinstance(variants, list):
        raise EngineError(f"{where}.variants: must be a list")
    if variants and key is None:
        raise EngineError(f"{where}.key: required when the feature has variants")
    metadata = feature.get("metadata")
    state_id = metadata.get(STATE_ID_METADATA_KEY) if isinstance(metadata, dict) else None
    reason = wire_reason(kind, segment)
    legacy_reason = DEFAULT_REASON if source is OverrideSource.DEFAULT else reason

    def outcome(
        value: Any, kind: ReasonKind, reason: str, variant: str | None, weight: float | None
    ) -> FlagOutcome:
        return FlagOutcome(
            name=name,
            enabled=feature["enabled"],
            value=value,
            kind=kind,
            source=source,
            segment=segment,
            weight=weight,
            variant=variant,
            state_id=state_id,
            reason=reason,
        )

    def result(value: Any, reason: str, variant: str | None) -> FlagResult:
        built: FlagResult = {
            "name": name,
            "enabled": feature["enabled"],
            "value": value,
            "reason": reason,
            "variant": variant,
        }
        if metadata:
            built["metadata"] = metadata
        return built

    buckets = []
    start: float = 0
    for variant in _sorted_variants(variants, where):
        weight = variant["weight"]
        limit = start + weight
        split_reason = wire_reason(ReasonKind.SPLIT, weight=weight)
        split = result(variant["value"], split_reason, variant.get("key"))
        chosen = outcome(
            variant["value"], ReasonKind.SPLIT, split_reason, variant.get("key"), weight
        )
        buckets.append(Bucket(start, limit, split, chosen))
        start = limit
    value = feature.get("value")
    return CompiledFeature(
        name=name,
        key="" if key is None else str(key),
        plain=result(value, legacy_reason, None),
        control=result(value, legacy_reason, CONTROL_VARIANT),
        buckets=tuple(buckets),
        plain_outcome=outcome(value, kind, reason, None, None),
        control_outcome=outcome(value, kind, reason, CONTROL_VARIANT, None),
    )


def _sorted_variants(variants: list[Any], where: str) -> list[dict[str, Any]]:
    for index, variant in enumerate(variants):
        if not isinstance(variant, dict):
            raise EngineError(f"{where}.variants[{index}]: a variant must be an object")
        for field in ("value", "weight", "priority"):
            if field not in variant:
                raise EngineError(f"{where}.variants[{index}].{field}: required")
    try:
        # sorted() is stable, so equal priorities keep their context order.
        return sorted(variants, key=lambda item: item["priority"])
    except TypeError as exc:
        raise EngineError(f"{where}.variants: priorities must be numbers") from exc
