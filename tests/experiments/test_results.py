"""The sample-ratio check against p-values worked out by hand, and the shape of the results.

The reference p-values come from the chi-square statistic X = sum((observed - expected)^2 /
expected) and the closed forms of the chi-square survival function for small degrees of freedom
(df = variants - 1), evaluated with Python's `math` module, never with scipy:
    df = 1:  P(X > x) = erfc(sqrt(x / 2))
    df = 2:  P(X > x) = exp(-x / 2)
    df = 3:  P(X > x) = erfc(sqrt(x / 2)) + sqrt(2x / pi) * exp(-x / 2)
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ensign.services.experiment_results import (
    CONTROL,
    VariantResult,
    VariantWeight,
    compute_results,
)

HALF = [VariantWeight("treatment", 50.0)]  # control gets the other 50
QUARTERS = [VariantWeight("a", 25.0), VariantWeight("b", 25.0)]  # control gets 50


@pytest.mark.parametrize(
    ("options", "exposures", "reference"),
    [
        # 50/50, 60 vs 40: X = 10^2/50 + 10^2/50 = 4, df 1 → erfc(sqrt(2))
        (HALF, {CONTROL: 60, "treatment": 40}, 0.045500263896358396),
        # 50/50, 5200 vs 4800: X = 2 * 200^2/5000 = 16, df 1 → erfc(sqrt(8))
        (HALF, {CONTROL: 5200, "treatment": 4800}, 6.334248366623977e-05),
        # 50/25/25, control 50, a 20, b 30: X = 0 + 5^2/25 + 5^2/25 = 2, df 2 → exp(-1)
        (QUARTERS, {CONTROL: 50, "a": 20, "b": 30}, 0.36787944117144233),
        # 50/25/25, control 160, a 100, b 140 (expected 200/100/100): X = 40^2/200 + 0 +
        # 40^2/100 = 24, df 2 → exp(-12)
        (QUARTERS, {CONTROL: 160, "a": 100, "b": 140}, 6.14421235332821e-06),
        # 25 each, 30/20/25/25: X = 1 + 1 + 0 + 0 = 2, df 3 → erfc(1) + sqrt(4/pi) * exp(-1)
        (
            [VariantWeight(k, 25.0) for k in "abc"],
            {CONTROL: 30, "a": 20, "b": 25, "c": 25},
            0.5724067044708798,
        ),
        # exactly the configured split: X = 0 → 1
        (HALF, {CONTROL: 500, "treatment": 500}, 1.0),
    ],
)
def test_srm_p_value__hand_checked_counts__matches_the_reference(
    options: list[VariantWeight], exposures: dict[str, int], reference: float
) -> None:
    results = compute_results(options, exposures)

    assert results.srm_p_value == pytest.approx(reference, rel=1e-9)


def test_results__a_skewed_split__is_a_sample_ratio_mismatch() -> None:
    skewed = compute_results(HALF, {CONTROL: 5200, "treatment": 4800})
    balanced = compute_results(HALF, {CONTROL: 5010, "treatment": 4990})

    assert skewed.is_sample_ratio_mismatch
    assert not balanced.is_sample_ratio_mismatch


def test_results__options__control_first_with_the_rest_of_100_percent() -> None:
    results = compute_results(
        [VariantWeight("one_page", 33.3), VariantWeight("express", 33.3)],
        {"express": 7, CONTROL: 5},
    )

    assert [(v.key, round(v.weight, 6), v.exposures) for v in results.variants] == [
        (CONTROL, 33.4, 5),
        ("one_page", 33.3, 0),
        ("express", 33.3, 7),
    ]
    assert results.exposures == 12


def test_results__no_exposures__no_p_value_and_no_warning() -> None:
    results = compute_results(HALF, {})

    assert results.srm_p_value is None
    assert not results.is_sample_ratio_mismatch
    assert [v.exposures for v in results.variants] == [0, 0]


def test_results__exposures_to_a_zero_weight_variant__a_certain_mismatch() -> None:
    # Given a variant turned down to 0% that still has exposures
    results = compute_results(
        [VariantWeight("a", 0.0), VariantWeight("b", 50.0)], {CONTROL: 50, "a": 1, "b": 50}
    )

    assert results.srm_p_value == 0.0
    assert results.is_sample_ratio_mismatch


def test_results__a_zero_weight_variant_without_exposures__left_out_of_the_test() -> None:
    results = compute_results(
        [VariantWeight("a", 0.0), VariantWeight("b", 50.0)], {CONTROL: 60, "b": 40}
    )

    # the same test as 60 vs 40 on a 50/50 split
    assert results.srm_p_value == pytest.approx(0.045500263896358396, rel=1e-9)


def test_results__exposures_to_a_deleted_variant__listed_unconfigured_and_a_mismatch() -> None:
    results = compute_results(HALF, {CONTROL: 10, "treatment": 10, "gone": 3})

    assert results.variants[-1] == VariantResult("gone", 0.0, 3, configured=False)
    assert results.srm_p_value == 0.0


def test_results__options_take_all_100_percent__control_has_weight_0() -> None:
    results = compute_results(
        [VariantWeight("a", 60.0), VariantWeight("b", 40.0)], {"a": 60, "b": 40}
    )

    assert results.variants[0] == VariantResult(CONTROL, 0.0, 0)
    assert results.srm_p_value == pytest.approx(1.0)


def test_results__one_variant_takes_everything__no_test_possible() -> None:
    results = compute_results([VariantWeight("a", 0.0)], {CONTROL: 40})

    assert results.srm_p_value is None


def test_results__an_option_without_a_key__shown_but_left_out_of_the_test() -> None:
    # Given an option with no key (its identities are never recorded as exposed)
    results = compute_results(
        [VariantWeight(None, 50.0, option=7), VariantWeight("b", 25.0, option=8)],
        {CONTROL: 60, "b": 40},
    )

    assert results.variants[1] == VariantResult(None, 50.0, 0, option=7)
    assert not results.variants[1].is_recorded
    # control 25% and b 25%: a 50/50 split of the recorded exposures, 60 vs 40
    assert results.srm_p_value == pytest.approx(0.045500263896358396, rel=1e-9)


# No deadline: the first example pays SciPy's import, which made the run flaky under load.
@settings(deadline=None)
@given(
    weights=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=3),
    scale=st.integers(min_value=1, max_value=1000),
)
def test_srm_p_value__counts_exactly_as_weighted__p_is_1(weights: list[int], scale: int) -> None:
    # Given integer weights (control gets the rest of 100) and counts in exactly those shares
    options = [VariantWeight(f"v{i}", float(w)) for i, w in enumerate(weights)]
    control = 100 - sum(weights)
    exposures = {f"v{i}": w * scale for i, w in enumerate(weights)} | {CONTROL: control * scale}

    results = compute_results(options, exposures)

    assert results.srm_p_value == pytest.approx(1.0)


@given(counts=st.lists(st.integers(min_value=0, max_value=10**6), min_size=3, max_size=3))
def test_srm_p_value__any_counts__a_probability_or_none(counts: list[int]) -> None:
    results = compute_results(QUARTERS, dict(zip((CONTROL, "a", "b"), counts, strict=True)))

    assert (results.srm_p_value is None) == (sum(counts) == 0)
    assert results.srm_p_value is None or 0.0 <= results.srm_p_value <= 1.0
