"""The example deployment's files: which site records when, and what the files are called."""

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sonotype.config.example import ExampleConfig, ExampleSite


@dataclass(frozen=True)
class PlannedFile:
    """One recording of the example deployment.

    Attributes:
        site: the recorder's site config.
        site_index: position of the site in the config (part of the file's seed).
        local_start: start time in the deployment's time zone (aware).
        relative_path: where the file goes under the output folder (POSIX separators).
        seed: the seed sequence of this file's random generator.
    """

    site: ExampleSite
    site_index: int
    local_start: dt.datetime
    relative_path: str
    seed: tuple[int, ...]

    @property
    def utc_start(self) -> dt.datetime:
        return self.local_start.astimezone(dt.UTC)


def audiomoth_name(utc_start: dt.datetime, extension: str) -> str:
    """AudioMoth names files by their UTC start: `20240315_084500.WAV`."""
    return utc_start.strftime("%Y%m%d_%H%M%S") + "." + extension


def songmeter_name(site: str, local_start: dt.datetime, extension: str) -> str:
    """Song Meters prefix the site and use local time: `NOURAGUES_20240315_054500.wav`."""
    return f"{site}_{local_start.strftime('%Y%m%d_%H%M%S')}.{extension}"


def _extension(site: ExampleSite) -> str:
    if site.format == "FLAC":
        return "flac"
    # AudioMoth firmware writes upper-case extensions, Song Meters lower-case.
    return "WAV" if site.recorder == "audiomoth" else "wav"


def recording_days(config: ExampleConfig, year: int) -> list[dt.date]:
    """The days on which every recorder records in `year`."""
    month, day = (int(part) for part in config.first_day.split("-"))
    first = dt.date(year, month, day)
    return [first + dt.timedelta(days=i * config.day_step) for i in range(config.days_per_year)]


def plan_deployment(config: ExampleConfig) -> list[PlannedFile]:
    """Every file of the deployment, in a fixed order (site, year, day, session)."""
    zone = zoneinfo.ZoneInfo(config.timezone)
    planned = []
    for site_index, site in enumerate(config.sites):
        for year in config.years:
            for day_index, day in enumerate(recording_days(config, year)):
                for session_index, session in enumerate(config.sessions):
                    local_start = dt.datetime.combine(day, dt.time.fromisoformat(session), zone)
                    extension = _extension(site)
                    if site.recorder == "audiomoth":
                        name = audiomoth_name(local_start.astimezone(dt.UTC), extension)
                    else:
                        name = songmeter_name(site.name, local_start, extension)
                    planned.append(
                        PlannedFile(
                            site=site,
                            site_index=site_index,
                            local_start=local_start,
                            relative_path=f"{site.name}/{year}/{name}",
                            seed=(config.seed, site_index, year, day_index, session_index),
                        )
                    )
    return planned
