"""The base of every model of the ExecutionPlatform's policy: camelCase on the wire, closed
(an unknown field is an error, not silently ignored), immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class PolicyModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
