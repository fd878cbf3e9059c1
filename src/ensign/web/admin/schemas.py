"""Request bodies of the admin API. Field names follow the reference (contract §7)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ensign.engine.operators import OPERATOR_NAMES
from ensign.services.limits import (
    CONDITIONS_PER_RULE,
    ID_MAX,
    LONG_NAME_LENGTH,
    NAME_LENGTH,
    OPTION_KEY_LENGTH,
    PROPERTY_LENGTH,
    RULES_PER_LIST,
    TEXT_LENGTH,
)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


NoNul = AfterValidator(_no_nul)

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH), NoNul
]
LongName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LONG_NAME_LENGTH), NoNul
]
Text = Annotated[str, StringConstraints(max_length=TEXT_LENGTH), NoNul]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
Color = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), NoNul]
OptionKey = Annotated[str, StringConstraints(max_length=OPTION_KEY_LENGTH), NoNul]
Property = Annotated[str, StringConstraints(max_length=PROPERTY_LENGTH), NoNul]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]
TraitKey = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
Priority = Annotated[int, Field(ge=0, le=ID_MAX)]
Percentage = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Moment = Annotated[dt.datetime, AfterValidator(_utc)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Patch(Body):
    """A partial update: omitted fields stay as they are; only `nullable` ones may be null."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


# --- organisations --------------------------------------------------------------------------


class OrganisationUpdate(Patch):
    name: Name | None = None
    persist_trait_data: bool | None = None
    stop_serving_flags: bool | None = None
    feature_analytics: bool | None = None


class MasterKeyCreate(Body):
    name: Name = "API key"
    expiry_date: Moment | None = None


class MasterKeyUpdate(Patch):
    nullable = frozenset({"expiry_date"})
    name: Name | None = None
    revoked: bool | None = None
    expiry_date: Moment | None = None


# --- projects and environments --------------------------------------------------------------


class ProjectCreate(Body):
    name: Name
    organisation: Id | None = None
    hide_disabled_flags: bool = False
    enable_realtime_updates: bool = False


class ProjectUpdate(Patch):
    name: Name | None = None
    hide_disabled_flags: bool | None = None
    enable_realtime_updates: bool | None = None


class EnvironmentCreate(Body):
    name: Name
    project: Id
    description: Text | None = None
    allow_client_traits: bool = True
    hide_sensitive_data: bool = False
    hide_disabled_flags: bool | None = None
    use_identity_composite_key_for_hashing: bool = True
    use_identity_overrides_in_local_eval: bool = True


class EnvironmentUpdate(Patch):
    nullable = frozenset({"description", "hide_disabled_flags"})
    name: Name | None = None
    description: Text | None = None
    allow_client_traits: bool | None = None
    hide_sensitive_data: bool | None = None
    hide_disabled_flags: bool | None = None
    use_identity_composite_key_for_hashing: bool | None = None
    use_identity_overrides_in_local_eval: bool | None = None


class ServerKeyCreate(Body):
    name: Name = "Server key"
    expires_at: Moment | None = None


class ServerKeyUpdate(Patch):
    nullable = frozenset({"expires_at"})
    name: Name | None = None
    active: bool | None = None
    expires_at: Moment | None = None


# --- segments -------------------------------------------------------------------------------

# The engine's operator table, as a Literal so that the OpenAPI document lists them as an enum.
# Type checkers cannot read a Literal built from a variable; to them it is text.
if TYPE_CHECKING:
    Operator = str
else:
    Operator = Literal[OPERATOR_NAMES]


def _condition_value_text(value: Any) -> Any:
    """Condition values are text in the reference; numbers and booleans are accepted as it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value


class ConditionIn(Body):
    operator: Operator
    property: Property | None = None
    value: Text | None = None

    _value = field_validator("value", mode="before")(_condition_value_text)


class RuleIn(Body):
    type: Literal["ALL", "ANY", "NONE"]
    rules: list[RuleIn] = Field(default_factory=list, max_length=RULES_PER_LIST)
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=CONDITIONS_PER_RULE)


class SegmentCreate(Body):
    name: LongName
    description: Text | None = None
    feature: Id | None = None
    rules: list[RuleIn] = Field(default_factory=list, max_length=RULES_PER_LIST)


class SegmentUpdate(Patch):
    nullable = frozenset({"description", "feature"})
    name: LongName | None = None
    description: Text | None = None
    feature: Id | None = None
    rules: list[RuleIn] | None = Field(default=None, max_length=RULES_PER_LIST)


# --- experiments ----------------------------------------------------------------------------


class ExperimentCreate(Body):
    name: Name
    feature: Id
    segment: Id | None = None
    running: bool = True
    metrics: list[Any] | None = None


class ExperimentUpdate(Patch):
    nullable = frozenset({"segment"})
    name: Name | None = None
    feature: Id | None = None
    segment: Id | None = None
    running: bool | None = None
    metrics: list[Any] | None = None


# --- identities -----------------------------------------------------------------------------


class IdentityCreate(Body):
    identifier: Identifier


class TraitSet(Body):
    trait_key: TraitKey
    trait_value: Any
