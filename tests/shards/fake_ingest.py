"""A tiny fake ingest output: shards written with ShardWriter and a matching segments.parquet.

Segment `i` holds a 16-bit ramp, `x[n] = ((n + RAMP_STEP * i) mod 65536 - 32768) / 32768`,
which FLAC keeps exactly, so a test can tell from a decoded crop which segment and
which offset it came from (`ramp_origin`).
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shards.catalog import write_recordings, write_segments
from shards.writer import ShardWriter, audio_checksum
from sonotype import audio
from sonotype.contracts import (
    RECORDING_STATUS_OK,
    RECORDINGS_SCHEMA,
    SEGMENTS_SCHEMA,
    OutputLayout,
)
from sonotype.contracts import SegmentColumn as Col

RAMP_STEP = 1000
START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)


def ramp(index: int, n: int) -> np.ndarray:
    """float32 `[n]`: segment `index`'s ramp."""
    levels = (np.arange(n, dtype=np.int64) + RAMP_STEP * index) % 65536 - 32768
    return (levels / 32768).astype(np.float32)


def ramp_origin(first_sample: float, length: int = 65536) -> int:
    """`(offset + RAMP_STEP * index) mod 65536` read back from a crop's first sample."""
    return round(first_sample * 32768 + 32768) % length


@dataclass
class FakeOut:
    """What `write_fake_out` wrote.

    Attributes:
        out: the output root.
        shards: shard names relative to `shards/`, in order.
        keys: kept segment keys per shard, in tar order.
        rows: every catalog row (kept and dropped).
    """

    out: str
    shards: list[str]
    keys: dict[str, list[str]]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def all_keys(self) -> list[str]:
        return [key for shard in self.shards for key in self.keys[shard]]

    def shard_path(self, shard: str) -> Path:
        return Path(OutputLayout(self.out).shards_dir) / shard

    def row(self, key: str) -> dict[str, Any]:
        return next(r for r in self.rows if r[Col.KEY] == key)


def segment_row(
    key: str,
    index: int,
    *,
    shard: str | None,
    site: str,
    start_time: dt.datetime | None,
    duration_s: float,
    sample_rate: int,
    **changes: Any,
) -> dict[str, Any]:
    """A catalog row with plausible quality figures; `changes` override any column."""
    row = {
        Col.KEY: key,
        Col.RECORDING_ID: key.rsplit("_s0_", 1)[0],
        Col.SITE: site,
        Col.STREAM: 0,
        Col.CHANNEL: -1,
        Col.START_TIME: start_time,
        Col.OFFSET_S: float(index) * duration_s,
        Col.DURATION_S: duration_s,
        Col.SAMPLE_RATE: sample_rate,
        Col.SHARD: shard,
        Col.RMS_DBFS: -4.8,
        Col.PEAK: 1.0,
        Col.CLIPPED_FRACTION: 0.0,
        Col.IS_SILENT: False,
        Col.HAS_NONFINITE: False,
        Col.DC_OFFSET: 0.0,
        Col.KEPT: shard is not None,
        Col.DROP_REASON: None if shard is not None else "silence",
    }
    row.update(changes)
    return {str(k): v for k, v in row.items()}


def write_fake_out(
    root: Path,
    shard_sizes: tuple[int, ...] = (5, 1, 9, 3),
    *,
    duration_s: float = 1.0,
    sample_rate: int = 8000,
    sites: tuple[str, ...] = ("A", "B"),
    step_s: float = 1800.0,
    n_dropped: int = 2,
    durations: dict[int, float] | None = None,
    row_changes: dict[int, dict[str, Any]] | None = None,
) -> FakeOut:
    """Write shards of the given sizes and `OUT/catalog/segments.parquet`.

    Segment `i` (numbered across shards) belongs to site `sites[i % len(sites)]` and
    starts at `START + i * step_s`; `n_dropped` more rows are dropped segments with no
    shard.

    Args:
        root: the output root to create.
        shard_sizes: samples per shard (`shard-000000.tar`, ...).
        duration_s: segment length, seconds.
        sample_rate: Hz.
        sites: site names, assigned round-robin.
        step_s: seconds between segment starts.
        n_dropped: dropped rows added to the catalog.
        durations: per-segment lengths overriding `duration_s`.
        row_changes: per-segment column overrides (metadata JSON and catalog alike).
    """
    durations = durations or {}
    row_changes = row_changes or {}
    fake = FakeOut(str(root), [], {})
    index = 0
    for number, size in enumerate(shard_sizes):
        shard = f"shard-{number:06d}.tar"
        fake.shards.append(shard)
        fake.keys[shard] = []
        with ShardWriter(str(fake.shard_path(shard))) as writer:
            for _ in range(size):
                key = f"rec{index:04d}_s0_{index:06d}"
                length_s = durations.get(index, duration_s)
                row = segment_row(
                    key,
                    index,
                    shard=shard,
                    site=sites[index % len(sites)],
                    start_time=START + dt.timedelta(seconds=index * step_s),
                    duration_s=length_s,
                    sample_rate=sample_rate,
                    **row_changes.get(index, {}),
                )
                flac = audio.encode_flac(ramp(index, round(length_s * sample_rate)), sample_rate)
                row[Col.CHECKSUM] = audio_checksum(flac)
                writer.write(key, flac, row)
                fake.rows.append(row)
                fake.keys[shard].append(key)
                index += 1
    for extra in range(n_dropped):
        key = f"drop{extra:04d}_s0_{extra:06d}"
        fake.rows.append(
            segment_row(
                key,
                index + extra,
                shard=None,
                site=sites[0],
                start_time=START,
                duration_s=duration_s,
                sample_rate=sample_rate,
                is_silent=True,
            )
        )
    write_segments(pa.Table.from_pylist(fake.rows, schema=SEGMENTS_SCHEMA), fake.out)
    write_recordings(recordings_of(fake.rows), fake.out)
    return fake


def recordings_of(rows: list[dict[str, Any]]) -> pa.Table:
    """A recordings catalog agreeing with segment rows: one `ok` row per recording."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        record = by_id.setdefault(
            row[Col.RECORDING_ID],
            {
                "recording_id": row[Col.RECORDING_ID],
                "path": f"/recordings/{row[Col.RECORDING_ID]}.wav",
                "site": row[Col.SITE],
                "status": RECORDING_STATUS_OK,
                "n_segments_kept": 0,
                "n_segments_dropped": 0,
            },
        )
        record["n_segments_kept" if row[Col.KEPT] else "n_segments_dropped"] += 1
    return pa.Table.from_pylist(list(by_id.values()), schema=RECORDINGS_SCHEMA)
