"""The per-key rate limit of the events API: each environment key may send `per_second`
events a second on average, in bursts up to `burst`.

A moving window of `burst / per_second` seconds admits at most `burst` events; it is kept in
this process's memory (each server process limits on its own). A refused batch is told to
retry after one window: by then the whole burst is free again, whatever was sent before.
A batch is admitted or refused whole, before anything of it is stored, so that the SDK's retry
of a refused batch (it re-sends on a 429) stores each event once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Refusal:
    """A batch over the limit: retry after `retry_after` seconds (the `Retry-After` header)."""

    retry_after: int


class EventRates:
    def __init__(self, per_second: int, burst: int) -> None:
        # 0: no limit (a benchmark measuring the server from one key).
        self._off = per_second <= 0
        self._burst = max(1, burst)
        self._window = max(1, math.ceil(self._burst / max(1, per_second)))
        self._item = RateLimitItemPerSecond(self._burst, self._window)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def admit(self, key: str, events: int) -> Refusal | None:
        """Take `events` from `key`'s allowance; a Refusal (taking nothing) when over it. A batch
        larger than the burst counts as the burst, so that it can pass once the key is idle."""
        if self._off:
            return None
        cost = min(max(1, events), self._burst)
        if self._limiter.hit(self._item, "events", key, cost=cost):
            return None
        return Refusal(self._window)
