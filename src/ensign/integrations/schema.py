"""What a destination's settings schema says: what it is called, where it sends, what it
asks for beyond the settings every destination shares (`common`).

Each vendor's schema is an instance, in `vendors/<kind>/schema.py`; `catalog` lists them.
Nothing here builds a request, so the request path may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

BOOL = "bool"
TEXT = "text"


@dataclass(frozen=True)
class Option:
    """A setting beyond the common ones, kept in the integration's `options` under `name`."""

    name: str
    label: str
    description: str
    type: str = TEXT
    default: bool | str | None = None
    # Write-only (a credential): never shown again; the API shows `<name>_set` instead, and the
    # audit log records only that it changed.
    secret: bool = False
    required: bool = False
    max_chars: int = 1024


@dataclass(frozen=True)
class Schema:
    kind: str
    label: str
    # The credential sent to the vendor (`api_key` in the API), as the vendor names it.
    key_label: str
    # Region → ingestion base URL; the first is the default. With none, `base_url` is required.
    regions: Mapping[str, str]
    options: tuple[Option, ...] = ()
    # What the vendor calls an exposure, for the dashboard's checkbox.
    exposure_name: str = "Experiment Viewed"
    # Other names the API accepts for a common field (e.g. a webhook's `url` for `base_url`).
    aliases: Mapping[str, str] = field(default_factory=dict)
    # Whether `api_key` is needed at all (a webhook signs with a secret option instead).
    key_required: bool = True
    # Whether its flags records carry the identity's traits, each flag's `enabled` and value,
    # and the segments it matched (`services.outbox`), rather than only the value sent per flag.
    record_context: bool = False

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options if o.secret)

    def default(self, name: str) -> bool | str | None:
        """The default of the option `name` (what a configuration without it sends)."""
        return next(o.default for o in self.options if o.name == name)
