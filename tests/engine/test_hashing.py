"""Percentage bucketing against the contract's vectors (§5.5)."""

import pytest

from ensign.engine.hashing import hash_pct, hash_pct_pair


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["12345", "test_env_foobar"], 51.9904),
        (["7", "env_u"], 53.8008),
        ([1, 2], 26.5953),
        (["1", "2"], 26.5953),
    ],
)
def test_hash_pct__contract_vector__matches(ids: list[object], expected: float) -> None:
    assert hash_pct(ids) == pytest.approx(expected, abs=1e-4)


def test_hash_pct__ints_and_strings__hash_identically() -> None:
    assert hash_pct([1, 2]) == hash_pct(["1", "2"])


def test_hash_pct__more_iterations__repeats_the_whole_list() -> None:
    assert hash_pct(["a", "b"], iterations=2) == hash_pct(["a", "b", "a", "b"])


def test_hash_pct_pair__any_pair__equals_hash_pct() -> None:
    for first, second in [("1", "env_user"), ("seg", 12), ("x", 1.5), ("", True)]:
        assert hash_pct_pair(first, second) == hash_pct([first, second])


def test_hash_pct__many_ids__stays_below_one_hundred() -> None:
    assert all(0 <= hash_pct([index, "key"]) < 100 for index in range(5000))
