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

CONTROL = "control"
# Below this p-value the dashboard warns. The usual SRM threshold: the check runs on every page
# view of a running experiment, so a lax one (0.05) would cry wolf on healthy experiments.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class VariantWeight:
    """One of the feature's variants (a multivariate option's key) and its weight in percent."""

    key: str
    weight: float


@dataclass(frozen=True)
class VariantResult:
    key: str
    weight: float
    exposures: int
    # False for a variant that has exposures but is no longer configured (its option was deleted
    # or renamed while the experiment ran); its weight is then 0.
    configured: bool = True


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
    variants = [VariantResult(w.key, w.weight, exposures.get(w.key, 0)) for w in weights]
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
    The test's approximation is rough while a variant expects fewer than about 5 exposures, so
    a young experiment's p-value moves a lot; it settles as exposures grow.
    """
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
