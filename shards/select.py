"""Which segments the reader takes: kept ones, by site, time range and quality flags.

One predicate serves both sides of the reader: catalog rows (to count an epoch's
samples before reading) and the JSON member of each shard sample (to filter while
reading), so the two can never disagree.
"""

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sonotype.config.reader import SegmentFilterConfig
from sonotype.contracts import SegmentColumn as Col


def parse_time(value: Any) -> dt.datetime | None:
    """A segment row's `start_time` as an aware UTC datetime (rows hold datetimes or ISO text).

    Raises:
        ValueError: the value is neither a datetime, ISO-8601 text nor None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"start_time {value!r} is not an ISO-8601 time")
    if value.tzinfo is None:
        raise ValueError(f"start_time {value!r} has no time zone; times must be UTC")
    return value.astimezone(dt.UTC)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass(frozen=True)
class SegmentFilter:
    """A predicate on segment rows.

    Attributes:
        sites: sites to take (None: all).
        start_time: first start time taken (inclusive, UTC); None: no lower bound.
        end_time: start times taken are before this (exclusive, UTC); None: no bound.
        exclude_silent: drop rows flagged `is_silent`.
        exclude_nonfinite: drop rows flagged `has_nonfinite`.
        max_clipped_fraction: drop rows above this clipped fraction (None: keep all).
        min_rms_dbfs: drop rows quieter than this (None: keep all); unknown RMS is dropped.
    """

    sites: frozenset[str] | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    exclude_silent: bool = True
    exclude_nonfinite: bool = True
    max_clipped_fraction: float | None = None
    min_rms_dbfs: float | None = None

    @classmethod
    def from_config(cls, config: SegmentFilterConfig) -> "SegmentFilter":
        """The filter described by the reader config's `filters` section."""
        return cls(
            sites=None if config.sites is None else frozenset(config.sites),
            start_time=config.start_time,
            end_time=config.end_time,
            exclude_silent=config.exclude_silent,
            exclude_nonfinite=config.exclude_nonfinite,
            max_clipped_fraction=config.max_clipped_fraction,
            min_rms_dbfs=config.min_rms_dbfs,
        )

    def reason(self, row: Mapping[str, Any]) -> str | None:
        """Why `row` is not taken (a snake_case reason), or None if it is.

        Args:
            row: a segment row: catalog values or the decoded JSON of a shard sample.

        Raises:
            ValueError: `start_time` is present but not a time (only checked when a time
                range is set).
        """
        if row.get(Col.KEPT) is not True:
            return "not_kept"
        if self.sites is not None and row.get(Col.SITE) not in self.sites:
            return "site"
        if self.start_time is not None or self.end_time is not None:
            start = parse_time(row.get(Col.START_TIME))
            if start is None:
                return "unknown_time"
            if self.start_time is not None and start < self.start_time:
                return "time"
            if self.end_time is not None and start >= self.end_time:
                return "time"
        if self.exclude_silent and row.get(Col.IS_SILENT):
            return "silent"
        if self.exclude_nonfinite and row.get(Col.HAS_NONFINITE):
            return "nonfinite"
        if self.max_clipped_fraction is not None:
            clipped = _finite(row.get(Col.CLIPPED_FRACTION))
            if clipped is not None and clipped > self.max_clipped_fraction:
                return "clipped"
        if self.min_rms_dbfs is not None:
            rms = _finite(row.get(Col.RMS_DBFS))
            if rms is None or rms < self.min_rms_dbfs:
                return "quiet"
        return None

    def passes(self, row: Mapping[str, Any]) -> bool:
        """Whether `row` is taken (see `reason`)."""
        return self.reason(row) is None

    @property
    def columns(self) -> list[str]:
        """The segment columns the predicate looks at."""
        return [
            str(c)
            for c in (
                Col.KEPT,
                Col.SITE,
                Col.START_TIME,
                Col.IS_SILENT,
                Col.HAS_NONFINITE,
                Col.CLIPPED_FRACTION,
                Col.RMS_DBFS,
            )
        ]
