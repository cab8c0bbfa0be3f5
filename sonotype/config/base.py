"""The base of every config model: unknown keys are errors, values are frozen once validated."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: rejects unknown keys, immutable after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
