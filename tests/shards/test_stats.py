"""stats: hours per site / year / hour of day and the QC summary, checked by hand."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards.catalog import write_segments
from shards.stats import compute_shard_stats, shard_stats
from sonotype.cli.main import main
from sonotype.contracts import SEGMENTS_SCHEMA
from sonotype.errors import SonotypeError
from tests.shards.fake_ingest import segment_row


def _utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


@pytest.fixture
def out(tmp_path: Path) -> str:
    def row(key: str, site: str, start: dt.datetime | None, seconds: float, **changes):
        shard = None if changes.get("kept") is False else "s.tar"
        return segment_row(
            key,
            0,
            shard=shard,
            site=site,
            start_time=start,
            duration_s=seconds,
            sample_rate=24000,
            **changes,
        )

    rows = [
        row("a1", "A", _utc(2024, 3, 15, 5, 10), 600),
        row("a2", "A", _utc(2024, 3, 15, 5, 50), 600),
        row("a3", "A", _utc(2025, 1, 1, 23, 30), 1800),
        row(
            "b1",
            "B",
            _utc(2024, 3, 15, 5, 10),
            900,
            kept=False,
            is_silent=True,
            drop_reason="silence",
        ),
        row("b2", "B", _utc(2024, 3, 15, 6, 0), 3600, clipped_fraction=0.01),
        row("b3", "B", None, 360, has_nonfinite=True),
    ]
    root = str(tmp_path / "out")
    write_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA), root)
    return root


def test_hours_per_site_year_and_hour_of_day_in_utc(out: str):
    stats = shard_stats(out)
    assert stats.hours.to_pylist() == [
        {
            "site": "A",
            "year": 2024,
            "hour_of_day": 5,
            "n_segments_kept": 2,
            "hours_kept": pytest.approx(1 / 3),
            "n_segments_dropped": 0,
            "hours_dropped": 0.0,
        },
        {
            "site": "A",
            "year": 2025,
            "hour_of_day": 23,
            "n_segments_kept": 1,
            "hours_kept": 0.5,
            "n_segments_dropped": 0,
            "hours_dropped": 0.0,
        },
        {
            "site": "B",
            "year": 2024,
            "hour_of_day": 5,
            "n_segments_kept": 0,
            "hours_kept": 0.0,
            "n_segments_dropped": 1,
            "hours_dropped": 0.25,
        },
        {
            "site": "B",
            "year": 2024,
            "hour_of_day": 6,
            "n_segments_kept": 1,
            "hours_kept": 1.0,
            "n_segments_dropped": 0,
            "hours_dropped": 0.0,
        },
        {
            "site": "B",
            "year": None,
            "hour_of_day": None,
            "n_segments_kept": 1,
            "hours_kept": pytest.approx(0.1),
            "n_segments_dropped": 0,
            "hours_dropped": 0.0,
        },
    ]
    written = pq.read_table(stats.hours_path)
    assert written.equals(stats.hours)
    assert written.schema.metadata[b"timezone"] == b"UTC"


def test_a_time_zone_moves_hours_and_years(out: str):
    stats = shard_stats(out, timezone="America/Cayenne")  # UTC-3, no daylight saving
    a = [(r["year"], r["hour_of_day"]) for r in stats.hours.to_pylist() if r["site"] == "A"]
    assert a == [(2024, 2), (2025, 20)]
    with pytest.raises(SonotypeError, match="time zone 'Mars/Olympus'"):
        shard_stats(out, timezone="Mars/Olympus")


def test_qc_summary_counts_and_hours_per_site(out: str):
    qc = {
        (r["site"], r["measure"]): (r["n_segments"], r["hours"])
        for r in shard_stats(out).qc.to_pylist()
    }
    assert qc == {
        ("A", "all"): (3, pytest.approx(0.8333333)),
        ("A", "kept"): (3, pytest.approx(0.8333333)),
        ("B", "all"): (3, pytest.approx(1.35)),
        ("B", "kept"): (2, pytest.approx(1.1)),
        ("B", "dropped:silence"): (1, 0.25),
        ("B", "clipped"): (1, 1.0),
        ("B", "silent"): (1, 0.25),
        ("B", "nonfinite"): (1, pytest.approx(0.1)),
    }


def test_the_cli_prints_the_tables(out: str, capsys):
    assert main(["shards", "stats", out]) == 0
    text = capsys.readouterr().out
    assert "Hours of kept audio per site and year (start_time, UTC):" in text
    lines = text.splitlines()
    assert lines[1].split() == ["site", "2024", "2025", "(unknown)", "total"]
    assert lines[2].split() == ["A", "0.33", "0.50", "0.00", "0.83"]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    assert rows["05"] == ["0.33", "0.00"]
    assert rows["(unknown)"] == ["0.00", "0.10"]
    assert "site  all  kept  clipped  silent  nonfinite  dropped:silence" in text
    assert rows["B"] == ["3", "2", "1", "1", "1", "1"]  # the QC row, printed last for B


def test_compute_shard_stats_writes_nothing_and_equals_what_shard_stats_writes(out: str):
    zone = "America/Cayenne"
    hours, qc = compute_shard_stats(out, zone)
    assert not (Path(out) / "catalog" / "stats_hours.parquet").exists()
    written = shard_stats(out, zone)
    assert hours.equals(written.hours)
    assert qc.equals(written.qc)
    assert hours.schema.metadata[b"timezone"] == zone.encode()
