"""The statistics of an experiment's metrics, computed from per-variant aggregates alone.

A variant's metric is summed over its users: `users` (n), `total` (Σx), `squares` (Σx²) and
`converted` (users with at least one event). That is enough for every figure here, so results
never read individual events:

- conversion: the rate `converted / users`; against control a two-sided z-test for two
  proportions (pooled variance, as statsmodels' `proportions_ztest`), and the chance to beat
  control from Beta(1 + converted, 1 + users - converted) posteriors (uniform prior).
- count and sum: the mean and sample standard deviation per user; against control Welch's
  t-test (scipy's `ttest_ind_from_stats` with unequal variances), and the chance to beat
  control from normal posteriors of the two means.
- lift: the relative difference `(variant - control) / control`, with a 95% interval by the
  delta method (the normal approximation of a ratio of two means). None while control is 0.

The chance to beat control is P(variant > control) under the posteriors, taken as the normal
approximation of their difference, as GrowthBook's engine does: exact enough once either side
has more than a handful of users, and closed-form so results stay fast.

Every distribution is scipy's; scipy is imported on first use, since it is slow to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Sample:
    """One variant's aggregates of one metric over its users."""

    users: int
    total: float = 0.0
    squares: float = 0.0
    converted: int = 0

    @property
    def rate(self) -> float | None:
        return self.converted / self.users if self.users else None

    @property
    def mean(self) -> float | None:
        return self.total / self.users if self.users else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1), None below two users. Never negative: rounding in
        Σx² - (Σx)²/n can leave a tiny negative for constant values."""
        if self.users < 2:
            return None
        spread = self.squares - self.total * self.total / self.users
        return max(0.0, spread / (self.users - 1))

    @property
    def stddev(self) -> float | None:
        variance = self.variance
        return None if variance is None else math.sqrt(variance)


@dataclass(frozen=True)
class Comparison:
    """A variant against control. Figures that cannot be computed (no users, control at 0, no
    variance at all) are None."""

    lift: float | None = None
    lift_low: float | None = None
    lift_high: float | None = None
    p_value: float | None = None
    chance_to_beat_control: float | None = None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _lift(
    control: float, variant: float, control_var: float, variant_var: float
) -> tuple[float | None, float | None, float | None]:
    """Relative lift of two estimated means with the variances of those estimates, and its
    confidence interval by the delta method."""
    if control == 0:
        return None, None, None
    from scipy.stats import norm

    lift = (variant - control) / control
    se = math.sqrt(variant_var / control**2 + variant**2 * control_var / control**4)
    z = float(norm.ppf(0.5 + CONFIDENCE / 2))
    return lift, lift - z * se, lift + z * se


def _chance(difference: float, variance: float) -> float | None:
    """P(difference > 0) for a normal posterior of the difference."""
    if variance <= 0:
        return None
    from scipy.stats import norm

    return _finite(float(norm.sf(0.0, loc=difference, scale=math.sqrt(variance))))


def compare_conversion(control: Sample, variant: Sample) -> Comparison:
    if control.users == 0 or variant.users == 0:
        return Comparison()
    from scipy.stats import beta, norm

    p_c, p_v = control.converted / control.users, variant.converted / variant.users
    lift, low, high = _lift(
        p_c, p_v, p_c * (1 - p_c) / control.users, p_v * (1 - p_v) / variant.users
    )
    pooled = (control.converted + variant.converted) / (control.users + variant.users)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control.users + 1 / variant.users))
    p_value = None if se == 0 else float(2 * norm.sf(abs(p_v - p_c) / se))
    mean_c, var_c = beta.stats(
        1 + control.converted, 1 + control.users - control.converted, moments="mv"
    )
    mean_v, var_v = beta.stats(
        1 + variant.converted, 1 + variant.users - variant.converted, moments="mv"
    )
    chance = _chance(float(mean_v - mean_c), float(var_v + var_c))
    return Comparison(lift, low, high, p_value, chance)


def compare_means(control: Sample, variant: Sample) -> Comparison:
    var_c, var_v = control.variance, variant.variance
    mean_c, mean_v = control.mean, variant.mean
    if var_c is None or var_v is None or mean_c is None or mean_v is None:
        return Comparison()
    from scipy.stats import ttest_ind_from_stats

    se_c, se_v = var_c / control.users, var_v / variant.users
    lift, low, high = _lift(mean_c, mean_v, se_c, se_v)
    p_value = None
    if se_c + se_v > 0:
        test = ttest_ind_from_stats(
            mean_v,
            math.sqrt(var_v),
            variant.users,
            mean_c,
            math.sqrt(var_c),
            control.users,
            equal_var=False,
        )
        p_value = _finite(float(test.pvalue))
    return Comparison(lift, low, high, p_value, _chance(mean_v - mean_c, se_c + se_v))
