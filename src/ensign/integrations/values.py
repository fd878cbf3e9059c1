"""The value an integration receives for one flag: the one rule that the outbox applies when it
records an evaluation and the vendor payloads apply when they build a request.

Pure and free of vendor vocabulary, so the request path may import it (the import contracts
keep it from importing anything else of the integrations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def property_value(enabled: bool, value: Any) -> Any:
    """The value sent for one flag: its value when enabled and not null, else `enabled`.

    `0`, `""` and `false` are values like any other, so they are sent as themselves.

    >>> property_value(True, "blue"), property_value(False, "blue"), property_value(True, None)
    ('blue', False, True)
    """
    if enabled and value is not None:
        return value
    return enabled


def properties(flags: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Feature name → value sent, for `flags` mapping names to `(enabled, value)` pairs (lists
    or tuples, as an evaluation stored as JSON gives them)."""
    return {name: property_value(pair[0], pair[1]) for name, pair in flags.items()}
