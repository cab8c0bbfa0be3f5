"""What a recording's path says: its site, its start time in UTC (and which rule gave it), its id.

Rules are regular expressions searched in the file's path with POSIX separators, so a
folder rule sees `PARACOU/2024/20240315_084500.WAV` whatever root the run was given.
The first rule that matches wins.
"""

import datetime as dt
import functools
import hashlib
import re
import zoneinfo
from dataclasses import dataclass

from sonotype.config.ingest import LOCAL_ZONE, MetadataConfig, SiteRule, TimeRule
from sonotype.contracts import slug

_NO_TIME = "notime"


@dataclass(frozen=True)
class PathMetadata:
    """Site and start time read from a path.

    Attributes:
        site: the site, or the configured unknown site.
        start_time: the start in UTC (aware), None when no time rule matched.
        time_source: the name of the time rule that matched, None when none did.
    """

    site: str
    start_time: dt.datetime | None
    time_source: str | None


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def parse_site(path: str, rules: list[SiteRule]) -> str | None:
    """The site named by the first matching rule, or None.

    Args:
        path: the file's path or URL, POSIX separators.
        rules: site rules, each with a named group `site`.
    """
    for rule in rules:
        match = _compiled(rule.pattern).search(path)
        if match and match.group("site"):
            return match.group("site")
    return None


def parse_start_time(
    path: str, rules: list[TimeRule], local_zone: str
) -> tuple[dt.datetime, str] | None:
    """The start time in UTC and the name of the rule that gave it, or None.

    A rule whose `time` group does not parse with its format (e.g. month 13) is
    skipped, as if it had not matched. Local times that occur twice when clocks go
    back take the first occurrence (`fold=0`).

    Args:
        path: the file's path or URL, POSIX separators.
        rules: time rules, each with a named group `time`, a strptime format and a zone.
        local_zone: the zone of rules whose timezone is "local".
    """
    for rule in rules:
        match = _compiled(rule.pattern).search(path)
        if not match:
            continue
        try:
            naive = dt.datetime.strptime(match.group("time"), rule.format)
        except ValueError:
            continue
        zone = zoneinfo.ZoneInfo(local_zone if rule.timezone == LOCAL_ZONE else rule.timezone)
        return naive.replace(tzinfo=zone).astimezone(dt.UTC), rule.name
    return None


def read_path_metadata(path: str, config: MetadataConfig) -> PathMetadata:
    """Site and start time of the file at `path` under the configured rules."""
    site = parse_site(path, config.site_rules) or config.unknown_site
    start = parse_start_time(path, config.time_rules, config.timezone)
    if start is None:
        return PathMetadata(site, None, None)
    return PathMetadata(site, start[0], start[1])


def recording_id(site: str, start_time: dt.datetime | None, relative_path: str) -> str:
    """A stable, key-safe recording id: `<site>_<UTC start>_<hash of the relative path>`.

    The hash is of the path relative to the input root (e.g. `PARACOU/2024/x.WAV`), so
    the id survives moving the whole tree or reading it through another URL, and two
    files with the same name in different folders stay apart. Example:
    `PARACOU_20240315T084500Z_3f9a1c2e`.

    Args:
        site: the recording's site.
        start_time: its start in UTC, or None ("notime" takes its place).
        relative_path: POSIX path relative to the input root.
    """
    stamp = start_time.strftime("%Y%m%dT%H%M%SZ") if start_time else _NO_TIME
    digest = hashlib.sha1(relative_path.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{slug(site)}_{stamp}_{digest}"
