"""Wire shapes of the Flagsmith evaluation context and result (engine 10.2.x).

These mirror Flagsmith's ``sdk/evaluation-context.json`` and ``sdk/evaluation-result.json`` so
that conformance cases and SDK-built contexts can be passed in unchanged. They describe
plain ``dict``s; nothing here validates at runtime.
"""

from typing import Any, Literal, NotRequired, TypedDict

# A trait or resolved property value as it may appear in a context.
ContextValue = str | int | float | bool | None

RuleType = Literal["ALL", "ANY", "NONE"]


class EnvironmentContext(TypedDict):
    """The environment being evaluated; ``key`` seeds derived identity keys."""

    key: str
    name: str


class IdentityContext(TypedDict):
    """The identity being evaluated; ``key`` defaults to ``"<environment key>_<identifier>"``."""

    identifier: str
    key: NotRequired[str | None]
    traits: NotRequired[dict[str, ContextValue]]


class VariantContext(TypedDict):
    """One multivariate option; ``priority`` orders the buckets."""

    value: Any
    weight: float
    priority: float
    key: NotRequired[str | None]


class FeatureContext(TypedDict):
    """A feature's environment default, or one segment override of it."""

    key: str
    name: str
    enabled: bool
    value: Any
    variants: NotRequired[list[VariantContext]]
    priority: NotRequired[float]
    metadata: NotRequired[dict[str, Any]]


class ConditionContext(TypedDict):
    """One condition; ``value`` is a string except for identity-override ``IN`` lists."""

    property: str | None
    operator: str
    value: NotRequired[str | list[Any] | None]


class RuleContext(TypedDict):
    """A rule: its conditions and nested rules are combined with ``type``."""

    type: RuleType
    conditions: NotRequired[list[ConditionContext]]
    rules: NotRequired[list["RuleContext"]]


class SegmentContext(TypedDict):
    """A segment: its rules, and the overrides applied to identities that match."""

    key: str
    name: str
    rules: list[RuleContext]
    overrides: NotRequired[list[FeatureContext]]
    metadata: NotRequired[dict[str, Any]]


class EvaluationContext(TypedDict):
    """Everything the engine needs for one evaluation."""

    environment: EnvironmentContext
    identity: NotRequired[IdentityContext | None]
    features: NotRequired[dict[str, FeatureContext]]
    segments: NotRequired[dict[str, SegmentContext]]


class FlagResult(TypedDict):
    """One evaluated flag. ``variant`` is the chosen variant's key, ``"control"`` or null."""

    name: str
    enabled: bool
    value: Any
    reason: str
    variant: str | None
    metadata: NotRequired[dict[str, Any]]


class SegmentResult(TypedDict):
    """A segment the identity matched, in context order."""

    name: str
    metadata: NotRequired[dict[str, Any]]


class EvaluationResult(TypedDict):
    """The engine's answer: flags keyed by feature name, and the matched segments."""

    flags: dict[str, FlagResult]
    segments: list[SegmentResult]
