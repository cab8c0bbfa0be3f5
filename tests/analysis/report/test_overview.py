"""Dataset overview tables from the fake OUT/'s catalogs, counted by hand (see fake_out)."""

from pathlib import Path

import pytest

from analysis.report.context import MissingInputError
from analysis.report.overview import (
    dataset_tables,
    failed_recordings,
    hours_by_hour_of_day,
    hours_by_site_and_year,
    hours_text,
    qc_outcomes,
    recording_counts,
)
from shards.catalog import read_recordings
from shards.stats import compute_shard_stats
from tests.analysis.report.fake_out import FAILED, SEGMENT_S, FakeOut


def test_hours_per_site_and_year(fake_out: FakeOut):
    hours, _, _ = dataset_tables(fake_out.out, "UTC")
    grid = hours_by_site_and_year(hours)
    assert (grid.rows, grid.columns) == (["SITE-A", "SITE-B"], ["2024", "2025"])
    # Year 1: 48 segments, year 2: 16, sites alternating; 2 s each.
    per_site = [24 * SEGMENT_S / 3600, 8 * SEGMENT_S / 3600]
    assert grid.values.tolist() == [pytest.approx(per_site)] * 2


def test_hours_per_hour_of_day_in_local_time(fake_out: FakeOut):
    hours, _, _ = dataset_tables(fake_out.out, "America/Cayenne")
    grid = hours_by_hour_of_day(hours)
    assert grid.columns[0] == "00"
    assert len(grid.columns) == 24
    # Segment 0 (SITE-A) starts 2024-03-15 00:00 UTC = 21:00 the day before in Cayenne.
    utc = hours_by_hour_of_day(dataset_tables(fake_out.out, "UTC")[0])
    assert grid.values[0, 21] == pytest.approx(utc.values[0, 0])
    assert grid.values.sum() == pytest.approx(utc.values.sum())


def test_qc_outcomes_count_kept_and_dropped_by_reason(fake_out: FakeOut):
    _, qc, _ = dataset_tables(fake_out.out, "UTC")
    counts, hours = qc_outcomes(qc)
    assert counts.columns == ["kept", "dropped:clipped", "dropped:silence"]
    assert counts.values.tolist() == [[32, 1, 1], [32, 0, 1]]
    assert hours.values[0, 0] == pytest.approx(32 * SEGMENT_S / 3600)


def test_saved_tables_are_used_only_in_their_own_zone(fake_out: FakeOut):
    hours, qc, source = dataset_tables(fake_out.out, "UTC")
    assert "stats_hours.parquet" in source
    assert hours.equals(compute_shard_stats(fake_out.out, "UTC")[0])
    local, local_qc, source = dataset_tables(fake_out.out, "America/Cayenne")
    assert "aggregated for this report" in source
    assert local.equals(compute_shard_stats(fake_out.out, "America/Cayenne")[0])
    assert local_qc.equals(qc)


def test_recordings_by_status_and_failed_files(fake_out: FakeOut):
    recordings = read_recordings(fake_out.out)
    assert recording_counts(recordings) == {"ok": 67, "failed": 2, "ignored": 1}
    failed = failed_recordings(recordings, 1)
    first = sorted(FAILED)[0]
    assert failed == [{"path": first, "site": "SITE-A", "error": FAILED[first]}]


def test_no_catalog_is_a_missing_input(tmp_path: Path):
    with pytest.raises(MissingInputError, match="run `sonotype ingest` first"):
        dataset_tables(str(tmp_path), "UTC")


def test_hours_text_keeps_small_totals_readable():
    assert [hours_text(h) for h in (0.0178, 1.25, 1234.4)] == ["0.018", "1.2", "1,234"]
