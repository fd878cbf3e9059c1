"""The experiment statistics, computed from aggregates (n, Σx, Σx², conversions), checked
against values worked out independently from the raw per-user data: statsmodels'
`proportions_ztest` and `ttest_ind(usevar="unequal")`, numpy's mean and standard deviation,
and Monte Carlo draws from the posteriors for the chance to beat control."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import ttest_ind

from ensign.services.experiment_stats import Sample, compare_conversion, compare_means

DRAWS = 400_000


def _sample(values: np.ndarray) -> Sample:
    return Sample(
        users=len(values),
        total=float(values.sum()),
        squares=float((values**2).sum()),
        converted=int((values > 0).sum()),
    )


def _conversions(users: int, converted: int) -> np.ndarray:
    return np.array([1.0] * converted + [0.0] * (users - converted))


# (control users, control conversions, variant users, variant conversions)
CONVERSION_SETS = [
    (1000, 100, 1000, 120),  # equal sizes, a modest lift
    (500, 40, 2000, 200),  # unequal sizes
    (300, 15, 300, 0),  # zero conversions in the variant
    (300, 0, 320, 9),  # zero conversions in control: lift undefined
    (120, 60, 80, 30),  # small, high rates
    (5000, 4990, 4000, 3999),  # rates near 1
]


@pytest.mark.parametrize(("n_c", "x_c", "n_v", "x_v"), CONVERSION_SETS)
def test_conversion__against_statsmodels_and_posterior_draws(
    n_c: int, x_c: int, n_v: int, x_v: int
) -> None:
    control, variant = _sample(_conversions(n_c, x_c)), _sample(_conversions(n_v, x_v))

    got = compare_conversion(control, variant)

    assert (control.rate, variant.rate) == (x_c / n_c, x_v / n_v)
    _, p_value = proportions_ztest([x_v, x_c], [n_v, n_c])
    assert got.p_value == pytest.approx(float(p_value), rel=1e-9, abs=1e-300)
    rng = np.random.default_rng(7)
    wins = rng.beta(1 + x_v, 1 + n_v - x_v, DRAWS) > rng.beta(1 + x_c, 1 + n_c - x_c, DRAWS)
    assert got.chance_to_beat_control == pytest.approx(wins.mean(), abs=0.01)
    if x_c == 0:
        assert (got.lift, got.lift_low, got.lift_high) == (None, None, None)
    else:
        lift = (x_v / n_v) / (x_c / n_c) - 1
        assert got.lift == pytest.approx(lift)
        assert got.lift_low is not None and got.lift_high is not None
        assert got.lift_low < lift < got.lift_high or x_v == 0


def test_conversion__no_conversions_anywhere__no_p_value() -> None:
    got = compare_conversion(_sample(_conversions(200, 0)), _sample(_conversions(150, 0)))

    # statsmodels divides 0 by 0 here (nan): there is nothing to test
    assert got.p_value is None
    assert got.lift is None
    # The smaller variant's posterior sits higher, so slightly more likely to be better
    rng = np.random.default_rng(5)
    wins = rng.beta(1, 151, DRAWS) > rng.beta(1, 201, DRAWS)
    assert got.chance_to_beat_control == pytest.approx(wins.mean(), abs=0.02)


def _values(kind: str, users: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "count":
        return rng.poisson(1.3, users).astype(float)
    if kind == "sparse sum":  # most users spend nothing
        return np.where(rng.random(users) < 0.1, rng.exponential(40.0, users), 0.0)
    return rng.normal(50.0, 12.0, users)


# (kind, control users, variant users, variant shift)
MEAN_SETS = [
    ("count", 400, 900, 0.2),
    ("count", 1000, 1000, 0.0),
    ("sparse sum", 2000, 700, 3.0),
    ("normal", 150, 60, 4.0),
    ("normal", 5000, 5000, -0.5),
    ("sparse sum", 100, 3000, 0.0),
]


@pytest.mark.parametrize(("kind", "n_c", "n_v", "shift"), MEAN_SETS)
def test_means__against_statsmodels_welch_and_posterior_draws(
    kind: str, n_c: int, n_v: int, shift: float
) -> None:
    a = _values(kind, n_c, seed=n_c)
    b = _values(kind, n_v, seed=n_v + 1) + shift
    control, variant = _sample(a), _sample(b)

    got = compare_means(control, variant)

    assert control.mean == pytest.approx(a.mean())
    assert variant.stddev == pytest.approx(b.std(ddof=1))
    _, p_value, _ = ttest_ind(b, a, usevar="unequal")
    assert got.p_value == pytest.approx(float(p_value), rel=1e-6)
    assert got.lift == pytest.approx(b.mean() / a.mean() - 1)
    rng = np.random.default_rng(11)
    se_a, se_b = a.std(ddof=1) / math.sqrt(n_c), b.std(ddof=1) / math.sqrt(n_v)
    wins = rng.normal(b.mean(), se_b, DRAWS) > rng.normal(a.mean(), se_a, DRAWS)
    assert got.chance_to_beat_control == pytest.approx(wins.mean(), abs=0.01)
    assert got.lift_low is not None and got.lift_high is not None
    assert got.lift_low < got.lift < got.lift_high


def test_lift_interval__covers_the_true_lift_about_95_percent_of_the_time() -> None:
    # Repeated experiments with a true 10% lift on a 20% rate: the interval's coverage is an
    # independent check of the delta-method width.
    rng = np.random.default_rng(3)
    covered = 0
    runs = 400
    for _ in range(runs):
        x_c, x_v = rng.binomial(4000, 0.20), rng.binomial(4000, 0.22)
        got = compare_conversion(Sample(4000, x_c, x_c, x_c), Sample(4000, x_v, x_v, x_v))
        assert got.lift_low is not None and got.lift_high is not None
        covered += got.lift_low <= 0.1 <= got.lift_high
    assert 0.91 <= covered / runs <= 0.99


def test_means__fewer_than_two_users__no_comparison() -> None:
    got = compare_means(Sample(1, 3.0, 9.0, 1), Sample(50, 100.0, 400.0, 30))

    assert got.p_value is None and got.lift is None
