"""Config of `sonotype demo`: the example deployment, which years come first, how long to train."""

from pydantic import Field, model_validator

from sonotype.config.base import StrictModel, TimeZone


class DemoConfig(StrictModel):
    """The whole chain on the example corpus, as a user would run it stage by stage.

    The example deployment is written once; the `first_years` are ingested, trained
    on, encoded and clustered; then the `later_years` arrive as a new year would:
    ingested, encoded and added with `cluster --update`; the report comes last.
    """

    example: str = Field(
        default="",
        description="example config: a preset under configs/example/, a YAML path, or '' for "
        "the full default deployment",
    )
    example_overrides: list[str] = Field(
        default_factory=list, description="KEY=VALUE overrides of the example config"
    )
    first_years: list[int] = Field(default=[2024], min_length=1)
    later_years: list[int] = Field(default=[2025])
    train: str = Field(default="tiny", description="train preset under configs/train/ or a YAML")
    train_steps: int | None = Field(
        default=None,
        ge=1,
        description="optimizer steps (None: the train preset's); a quick look needs ~50",
    )
    train_overrides: list[str] = Field(
        default_factory=list, description="KEY=VALUE overrides of the train config"
    )
    k: int = Field(default=8, ge=2, description="number of sonotypes")
    clustering: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]+$")
    timezone: TimeZone = Field(
        default="America/Cayenne", description="clock of the report and the hour statistics"
    )
    workers: int | None = Field(
        default=None, ge=1, description="Dask workers / rendering processes (None: one per core)"
    )

    @model_validator(mode="after")
    def _years_arrive_once(self) -> "DemoConfig":
        both = sorted(set(self.first_years) & set(self.later_years))
        if both:
            raise ValueError(f"a year cannot arrive both first and later: {both}")
        return self
