"""The settings every destination shares, and their defaults: one type for the service that
validates a configuration, the admin API, the dashboard form, the snapshot the request path
reads and the generated reference.

Pure, with no vendor vocabulary, so the request path may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# `deliver`: record an identity's flags only when they changed (the default), or on every
# identify call, as Flagsmith does.
CHANGES = "changes"
EVERY_EVALUATION = "every_evaluation"
DELIVER_MODES = (CHANGES, EVERY_EVALUATION)
MAX_RESEND_AFTER_HOURS = 8760


@dataclass(frozen=True)
class CommonSettings:
    """An integration's shared settings; `CommonSettings()` holds the defaults (`DEFAULTS`)."""

    # Send at all.
    enabled: bool = True
    # Send only these features; None (and no `tag`): every feature.
    feature_names: tuple[str, ...] | None = None
    # Or only the features with this tag label.
    tag: str | None = None
    deliver: str = CHANGES
    # With `deliver="changes"`, send unchanged flags again after this many hours (0: never).
    resend_after_hours: int = 24
    # Experiment exposures go to every integration unless it is told otherwise.
    exposures: bool = True
    # Sending a team's conversion events (`POST /v1/events`) is a choice: off until asked for.
    events: bool = False

    @property
    def sends_exposures(self) -> bool:
        return self.enabled and self.exposures

    @classmethod
    def of(cls, stored: Any) -> CommonSettings:
        """The settings of a stored configuration (storage's `IntegrationConfig`, which this
        package may not import); `exposures` and `events`, kept in its `options`, take their
        defaults when a configuration saved before they existed lacks them."""
        options = stored.options or {}
        names = stored.feature_names
        return cls(
            enabled=stored.enabled,
            feature_names=None if names is None else tuple(str(n) for n in names),
            tag=stored.tag_label,
            deliver=stored.deliver,
            resend_after_hours=stored.resend_after_hours,
            exposures=bool(options.get("exposures", DEFAULTS.exposures)),
            events=bool(options.get("events", DEFAULTS.events)),
        )


DEFAULTS = CommonSettings()
