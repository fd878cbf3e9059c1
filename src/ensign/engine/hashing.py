"""Percentage bucketing shared by ``PERCENTAGE_SPLIT`` conditions and multivariate flags.

The result must match Flagsmith bit for bit, or users move between buckets depending on
whether the server or a local-evaluation SDK answered.
"""

import hashlib
from collections.abc import Iterable

# 9999 buckets spread over [0, 100]; the odd constants are part of the wire contract.
_MODULUS = 9999
_SCALE = 9998


def hash_pct(ids: Iterable[object], iterations: int = 1) -> float:
    """Return the bucket of ``ids`` as a percentage in [0, 100).

    The ``str()`` of each id is joined with commas (the whole list repeated ``iterations``
    times) and md5-hashed. A result of exactly 100 is re-hashed with one more repetition,
    so the value can always be compared with ``<`` against a cumulative weight of 100.

    >>> round(hash_pct(["12345", "test_env_foobar"]), 4)
    51.9904
    """
    parts = [str(part) for part in ids]
    while True:
        joined = ",".join(parts * iterations)
        pct = _pct_of(joined)
        if pct != 100.0:
            return pct
        iterations += 1


def _pct_of(joined: str) -> float:
    """Bucket one already-joined string; split out so hot paths can skip list building."""
    # Same integer as int(hexdigest, 16), without the hex round trip.
    digest = int.from_bytes(hashlib.md5(joined.encode("utf-8")).digest(), "big")
    return (digest % _MODULUS) / _SCALE * 100


def hash_pct_pair(first: str, second: object) -> float:
    """``hash_pct([first, second])`` for the common two-id case, without a list."""
    pct = _pct_of(first + "," + str(second))
    if pct != 100.0:
        return pct
    return hash_pct([first, second], iterations=2)
