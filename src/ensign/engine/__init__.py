"""Ensign's pure evaluation engine: Flagsmith contexts in, flag results out, no I/O.

Only the standard library, ``semver`` and ``jsonpath_rfc9535`` may be imported here.
"""

from ensign.engine.compiled import CompiledEnvironment, compile_environment, evaluate
from ensign.engine.context import EvaluationContext, EvaluationResult, FlagResult
from ensign.engine.errors import EngineError
from ensign.engine.hashing import hash_pct
from ensign.engine.outcomes import (
    FlagOutcome,
    IdentityOverride,
    MatchedSegment,
    Outcome,
    OverrideSource,
    ReasonKind,
)

__all__ = [
    "CompiledEnvironment",
    "EngineError",
    "EvaluationContext",
    "EvaluationResult",
    "FlagOutcome",
    "FlagResult",
    "IdentityOverride",
    "MatchedSegment",
    "Outcome",
    "OverrideSource",
    "ReasonKind",
    "compile_environment",
    "evaluate",
    "hash_pct",
]
