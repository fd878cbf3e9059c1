"""Send on change: what the identify path last recorded for an identity, per integration.

An integration with `deliver="changes"` records an identity's flags only when they differ from
the last ones recorded for that identity and integration, or when more than its
`resend_after_hours` have passed since (0: never). What was recorded is kept on the identity's
row (`identities.delivered_flags`, read by the identify path's load and written in the same
transaction only when something was recorded) as compact JSON:
`{"<integration id>": ["<fingerprint of the flags sent>", <unix seconds recorded>]}`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

Entry = tuple[str, int]


def fingerprint(flags_json: str) -> str:
    """64 bits of the flags as sent (JSON text): plenty to tell one identity's flag sets apart."""
    return hashlib.blake2b(flags_json.encode(), digest_size=8).hexdigest()


def parse(text: str | None) -> dict[str, Entry]:
    """The stored map; anything unreadable counts as nothing recorded (so everything sends)."""
    if not text:
        return {}
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(raw, dict):
        return {}
    entries = {}
    for key, value in raw.items():
        if isinstance(value, list) and len(value) == 2:
            entries[str(key)] = (str(value[0]), int(value[1]))
    return entries


@dataclass
class Ledger:
    """What was recorded for one stored identity, changed as this call records."""

    entries: dict[str, Entry]
    changed: bool = False

    @classmethod
    def of(cls, text: str | None) -> Ledger:
        return cls(parse(text))

    def is_due(
        self, integration_id: int, print_: str, resend_after_hours: int, now: dt.datetime
    ) -> bool:
        """Whether these flags must be recorded for this integration."""
        entry = self.entries.get(str(integration_id))
        if entry is None or entry[0] != print_:
            return True
        age = now.timestamp() - entry[1]
        return resend_after_hours > 0 and age > resend_after_hours * 3600

    def recorded(self, integration_id: int, print_: str, now: dt.datetime) -> None:
        self.entries[str(integration_id)] = (print_, int(now.timestamp()))
        self.changed = True

    def text(self, integration_ids: Iterable[int]) -> str:
        """The map to store, without integrations that are gone or disabled."""
        keep = {str(i) for i in integration_ids}
        return orjson.dumps(
            {k: list(v) for k, v in sorted(self.entries.items()) if k in keep}
        ).decode()
