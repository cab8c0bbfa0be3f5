"""Config of the example deployment that `sonotype example` writes."""

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sonotype.config.base import StrictModel, TimeZone


class ExampleSite(StrictModel):
    """One recorder at one site.

    AudioMoth files are named `YYYYMMDD_HHMMSS.WAV` in UTC (the AudioMoth default) and
    the site is the folder; Song Meter files are named `SITE_YYYYMMDD_HHMMSS.wav` in
    local time.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    recorder: Literal["audiomoth", "songmeter"]
    sample_rate: Literal[44100, 48000]
    channels: int = Field(ge=1, le=2)
    format: Literal["WAV", "FLAC"]
    subtype: Literal["PCM_16", "PCM_24"] = "PCM_16"


def _default_sites() -> list[ExampleSite]:
    return [
        ExampleSite(
            name="PARACOU", recorder="audiomoth", sample_rate=48000, channels=1, format="WAV"
        ),
        ExampleSite(
            name="NOURAGUES", recorder="songmeter", sample_rate=44100, channels=2, format="WAV"
        ),
        ExampleSite(
            name="SAUT-LAVILETTE",
            recorder="songmeter",
            sample_rate=44100,
            channels=1,
            format="FLAC",
        ),
    ]


class ExampleConfig(StrictModel):
    """A seeded synthetic deployment: sites × years × days × recording sessions.

    Each session is one file of `file_s` seconds that starts at a local time of day;
    what it contains follows a diurnal schedule (dawn chorus, daytime birds, dusk
    insects, night frogs and insects, rain bursts, background noise throughout).
    """

    seed: int = 0
    timezone: TimeZone = "America/Cayenne"
    years: list[int] = Field(default=[2024, 2025], min_length=1)
    first_day: str = Field(default="03-15", pattern=r"^\d\d-\d\d$", description="MM-DD")
    days_per_year: int = Field(default=2, ge=1, le=60)
    day_step: int = Field(default=1, ge=1, description="days between recording days")
    sessions: list[str] = Field(
        default=["05:45", "12:30", "18:15", "23:00"],
        min_length=1,
        description="local start times HH:MM of the files recorded each day",
    )
    file_s: int = Field(default=120, ge=2, le=3600)
    sites: list[ExampleSite] = Field(default_factory=_default_sites, min_length=1)
    side_files: bool = Field(default=True, description="write CONFIG.TXT, summaries and a ._ file")
    defects: bool = Field(
        default=True, description="one file with a dropout of digital silence, clipping in rain"
    )

    @field_validator("sessions")
    @classmethod
    def _valid_times(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                dt.time.fromisoformat(value)
            except ValueError as error:
                raise ValueError(f"times of day as HH:MM, got {value!r}") from error
        return values

    @model_validator(mode="after")
    def _valid_first_day(self) -> "ExampleConfig":
        month, day = (int(part) for part in self.first_day.split("-"))
        for year in self.years:
            try:
                dt.date(year, month, day)
            except ValueError as error:
                raise ValueError(f"first_day {self.first_day!r} is not a date in {year}") from error
        names = [site.name for site in self.sites]
        if len(set(names)) != len(names):
            raise ValueError(f"site names must be unique, got {names}")
        return self
