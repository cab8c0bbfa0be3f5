"""Segment filter: one predicate for catalog rows and shard JSON, with named reasons."""

import datetime as dt

import pytest

from shards.select import SegmentFilter, parse_time
from sonotype.config.reader import SegmentFilterConfig

T0 = dt.datetime(2024, 3, 15, 6, 0, tzinfo=dt.UTC)


def _row(**changes) -> dict:
    row = {
        "kept": True,
        "site": "A",
        "start_time": T0,
        "is_silent": False,
        "has_nonfinite": False,
        "clipped_fraction": 0.0,
        "rms_dbfs": -20.0,
    }
    row.update(changes)
    return row


def test_catalog_rows_and_json_rows_get_the_same_answer():
    segment_filter = SegmentFilter(start_time=T0, end_time=T0 + dt.timedelta(hours=1))
    as_json = _row(start_time="2024-03-15T06:00:00Z")
    assert segment_filter.passes(_row()) is True
    assert segment_filter.passes(as_json) is True
    late = _row(start_time="2024-03-15T07:00:00Z")
    assert segment_filter.reason(late) == "time"
    assert segment_filter.reason(_row(start_time=T0 + dt.timedelta(hours=1))) == "time"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"kept": False}, "not_kept"),
        ({"kept": None}, "not_kept"),
        ({"site": "B"}, "site"),
        ({"start_time": None}, "unknown_time"),
        ({"start_time": dt.datetime(2023, 1, 1, tzinfo=dt.UTC)}, "time"),
        ({"is_silent": True}, "silent"),
        ({"has_nonfinite": True}, "nonfinite"),
        ({"clipped_fraction": 0.2}, "clipped"),
        ({"rms_dbfs": -70.0}, "quiet"),
        ({"rms_dbfs": None}, "quiet"),
    ],
)
def test_each_rule_names_its_reason(changes: dict, reason: str):
    segment_filter = SegmentFilter.from_config(
        SegmentFilterConfig(
            sites=["A"],
            start_time=T0 - dt.timedelta(days=1),
            max_clipped_fraction=0.1,
            min_rms_dbfs=-60.0,
        )
    )
    assert segment_filter.reason(_row()) is None
    assert segment_filter.reason(_row(**changes)) == reason


def test_default_filter_keeps_kept_rows_whatever_their_time_or_site():
    assert SegmentFilter().passes(_row(start_time=None, site=None)) is True
    assert SegmentFilter(exclude_silent=False).passes(_row(is_silent=True)) is True


def test_parse_time_accepts_iso_utc_and_refuses_naive_times():
    assert parse_time("2024-03-15T06:00:00Z") == T0
    assert parse_time("2024-03-15T03:00:00-03:00") == T0
    with pytest.raises(ValueError, match="no time zone"):
        parse_time("2024-03-15T06:00:00")
