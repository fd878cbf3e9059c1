"""Request bodies of the admin API. Field names follow the reference (contract §7)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ensign.services.limits import (
    ID_MAX,
    LONG_NAME_LENGTH,
    NAME_LENGTH,
    OPTION_KEY_LENGTH,
    PROPERTY_LENGTH,
    TEXT_LENGTH,
)
from ensign.services.text import is_storable


def _no_nul(value: str) -> str:
    if not is_storable(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
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
