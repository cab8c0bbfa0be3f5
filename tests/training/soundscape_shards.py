"""Small 24 kHz shards of synthetic soundscape segments for the trainer tests.

Each segment mixes a few things a field recording holds: a tone that changes with the
segment (a "bird"), a chirp, clicks ("insects") and background noise, at levels that
differ from segment to segment. Written with `ShardWriter` and a catalog that follows
the contract, like ingest's output.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from shards.catalog import write_segments
from shards.writer import ShardWriter
from sonotype import audio
from sonotype.contracts import SEGMENTS_SCHEMA, OutputLayout
from tests.shards.fake_ingest import START, segment_row

SAMPLE_RATE = 24000


def soundscape(index: int, duration_s: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """float32 `[T]`: segment `index`'s synthetic soundscape, peak below 1."""
    rng = np.random.default_rng(index)
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * (800 + 150 * (index % 7)) * t) * (0.5 + 0.5 * np.sin(3 * t))
    sweep = 0.2 * np.sin(2 * np.pi * (2000 * t + 1500 * t**2 / max(duration_s, 1e-3)))
    clicks = np.zeros_like(t)
    clicks[rng.integers(0, len(t), size=max(1, len(t) // 2400))] = 0.6
    background = 0.05 * rng.standard_normal(len(t))
    mix = (tone + sweep * (index % 2) + clicks + background) * (0.5 + 0.4 * rng.random())
    return np.clip(mix, -0.95, 0.95).astype(np.float32)


def write_soundscape_out(
    root: Path, shard_sizes: tuple[int, ...] = (6, 6, 4), duration_s: float = 3.0
) -> str:
    """Write shards of the given sizes and `OUT/catalog/segments.parquet`; returns OUT."""
    out = str(root)
    rows = []
    index = 0
    for number, size in enumerate(shard_sizes):
        shard = f"shard-{number:06d}.tar"
        with ShardWriter(str(Path(OutputLayout(out).shards_dir) / shard)) as writer:
            for _ in range(size):
                key = f"rec{index:04d}_s0_{index:06d}"
                row = segment_row(
                    key,
                    index,
                    shard=shard,
                    site=("A", "B")[index % 2],
                    start_time=START + dt.timedelta(minutes=30 * index),
                    duration_s=duration_s,
                    sample_rate=SAMPLE_RATE,
                )
                samples = soundscape(index, duration_s)
                writer.write(key, audio.encode_flac(samples, SAMPLE_RATE), row)
                rows.append(row)
                index += 1
    write_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA), out)
    return out
