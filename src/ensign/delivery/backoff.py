"""The retry schedule: capped exponential backoff with jitter, honouring `Retry-After`."""

from __future__ import annotations

import random
from dataclasses import dataclass

# A vendor asking for a longer pause than this is most likely misconfigured; wait this long.
MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 2.0
    cap_seconds: float = 60.0
    # Up to this fraction of the delay is added at random, so workers do not retry in step.
    jitter: float = 0.25

    def delay(
        self,
        failures: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1 for the first).

        The vendor's `Retry-After` is a floor: we never come back sooner than it asks.
        """
        exponent = min(max(failures, 1) - 1, 62)
        delay = min(self.cap_seconds, self.base_seconds * (2.0**exponent))
        delay += delay * self.jitter * (rng or random).random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return delay
