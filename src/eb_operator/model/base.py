"""The base model and the JSON scalar types every wire model uses.

JSON types are checked strictly (digest §6.1: wrong JSON types are a 400): a string is not a
number, a boolean is not an integer, a number is not a string. The one leniency is that a whole
float (``4.0``, which some JSON encoders write) counts as an integer.

Unknown fields are kept, not refused: the schemas allow additional properties, and the judge must
see them to answer NO to requirements it does not understand (digest §9 item 26).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict
from pydantic_core import PydanticCustomError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _check_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be an integer, not a boolean")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise PydanticCustomError("int_type", "must be a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise PydanticCustomError("int_type", "must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise PydanticCustomError("int_range", "is outside the 64-bit integer range")
    return value


def _check_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("float_type", "must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("float_type", "must be a finite number")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise PydanticCustomError("float_range", "is outside the representable range")
    return float(value)


WireInt = Annotated[int, BeforeValidator(_check_int)]
"""A JSON integer (int64); booleans and strings are refused."""
WireFloat = Annotated[float, BeforeValidator(_check_number)]
"""A finite JSON number."""
WireStr = Annotated[str, Strict()]
"""A JSON string; numbers and booleans are refused."""
WireBool = Annotated[bool, Strict()]
"""A JSON boolean; ``"true"`` and ``1`` are refused."""
NameValueMap = dict[WireStr, WireStr]
"""The schemas' ``NameValueMap``: string keys, string values."""


class WireModel(BaseModel):
    """Base of every wire model: unknown fields kept (see module doc), names as on the wire."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=False)

    @property
    def unknown_fields(self) -> dict[str, Any]:
        """Fields the client sent that this model does not define."""
        return dict(self.model_extra or {})
