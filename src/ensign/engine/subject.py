"""The identity being evaluated, prepared once per evaluation.

Traits are coerced once rather than once per condition, percentage buckets are cached per
(segment, value), and the JSON document that JSONPath properties query is built only if a
condition needs it.
"""

from typing import Any

from ensign.engine.coercion import Scalar, coerce_context_value
from ensign.engine.hashing import hash_pct_pair


class Subject:
    """Per-evaluation state shared by every condition of every segment."""

    __slots__ = ("_base", "_buckets", "_document", "identity", "key", "traits")

    def __init__(
        self,
        base: dict[str, Any],
        identity: dict[str, Any] | None,
        key: str | None,
    ) -> None:
        self._base = base
        # The identity as JSONPath sees it: with its derived key filled in.
        self.identity = identity
        self.key = key
        raw_traits = identity.get("traits") if identity is not None else None
        self.traits: dict[str, Scalar | None] = (
            {name: coerce_context_value(value) for name, value in raw_traits.items()}
            if raw_traits
            else {}
        )
        self._document: dict[str, Any] | None = None
        self._buckets: dict[tuple[str, str], float] = {}

    def document(self) -> dict[str, Any]:
        """The whole evaluation context, as JSONPath properties query it."""
        if self._document is None:
            document = dict(self._base)
            if self.identity is not None or "identity" in document:
                document["identity"] = self.identity
            self._document = document
        return self._document

    def bucket(self, segment_key: str, value: Scalar) -> float:
        """``hash_pct([segment_key, value])``, computed at most once per evaluation."""
        cache_key = (segment_key, str(value))
        pct = self._buckets.get(cache_key)
        if pct is None:
            pct = self._buckets[cache_key] = hash_pct_pair(*cache_key)
        return pct
