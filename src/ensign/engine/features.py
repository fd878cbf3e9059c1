"""Features and segment overrides, compiled into ready-made flag results.

Variants are sorted into cumulative buckets once, and every result a feature context can give
(plain, control, or one per variant) is built once with its reason; evaluating then only
hashes, picks a template and copies it.
"""

from dataclasses import dataclass
from typing import Any

from ensign.engine.context import FlagResult
from ensign.engine.errors import EngineError
from ensign.engine.hashing import hash_pct_pair

DEFAULT_REASON = "DEFAULT"
CONTROL_VARIANT = "control"


@dataclass(frozen=True, slots=True)
class Bucket:
    """One variant as the half-open percentage range ``[start, limit)`` it claims."""

    start: float
    limit: float
    result: FlagResult


@dataclass(frozen=True, slots=True)
class CompiledFeature:
    """A feature context (default or override) with the reason it reports when used.

    The result templates are never handed out: callers get shallow copies, so only nested
    ``metadata`` and values are shared.
    """

    name: str
    key: str
    plain: FlagResult
    control: FlagResult
    buckets: tuple[Bucket, ...]

    def flag(self, identity_key: str | None) -> FlagResult:
        """The flag result for an identity key (``None`` without an identity)."""
        if identity_key is None or not self.buckets:
            return self.plain.copy()
        pct = hash_pct_pair(self.key, identity_key)
        for bucket in self.buckets:
            if bucket.start <= pct < bucket.limit:
                return bucket.result.copy()
        return self.control.copy()


def compile_feature(feature: Any, where: str, reason: str) -> CompiledFeature:
    """Check a feature context's structure and compile it to report ``reason``."""
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
        split = result(variant["value"], f"SPLIT; weight={weight}", variant.get("key"))
        buckets.append(Bucket(start, limit, split))
        start = limit
    value = feature.get("value")
    return CompiledFeature(
        name=name,
        key="" if key is None else str(key),
        plain=result(value, reason, None),
        control=result(value, reason, CONTROL_VARIANT),
        buckets=tuple(buckets),
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
