"""The base of every config model: unknown keys are errors, values are frozen once validated."""

import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: rejects unknown keys, immutable after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _known_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError("an IANA time zone such as 'America/Cayenne' or 'UTC'") from error
    return value


TimeZone = Annotated[str, AfterValidator(_known_timezone)]
"""A field type: the name of an IANA time zone."""
