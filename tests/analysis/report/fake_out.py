"""A small but complete OUT/ for the report: catalogs, shards, a feature store, a clustering
with two versions, shard statistics and a training run's metrics.jsonl.

Structure the tests rely on:
- K = 4 blobs; segment i of a year belongs to blob `i % K`; when `i % 3 == 0` its second
  half (frames 10–19) belongs to blob `(i + 1) % K` instead. The audio of a frame span
  is a sine at `TONES_HZ[blob]`, so each sonotype sounds (and looks) different.
- Year 1: 48 segments, year 2: 16, of 2 s (20 frames at 10 frames/s, 8 kHz audio);
  segment i starts at `year start + i × 1.5 h`, sites alternate SITE-A / SITE-B, each
  segment is its own recording; 8 segments per shard.
- Catalogs also hold 2 failed recordings, 1 ignored side file and 3 dropped segments.
"""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from analysis.clustering import cluster_features
from analysis.store import FeatureStore, StoreIdentity, create_store, open_store
from shards.catalog import write_recordings, write_segments
from shards.stats import shard_stats
from shards.writer import ShardWriter
from sonotype import audio
from sonotype.config.cluster import ClusterConfig
from sonotype.contracts import RECORDINGS_SCHEMA, SEGMENTS_SCHEMA, OutputLayout, segment_key
from tests.analysis.synthetic import blob_centres

K = 4
DIM = 8
FRAME_RATE = 10.0
FRAMES = 20
SAMPLE_RATE = 8000
SEGMENT_S = FRAMES / FRAME_RATE
TONES_HZ = (300.0, 800.0, 1600.0, 3000.0)
SITES = ("SITE-A", "SITE-B")
YEARS = {
    "y1": (dt.datetime(2024, 3, 15, 0, 0, tzinfo=dt.UTC), 48),
    "y2": (dt.datetime(2025, 3, 15, 0, 0, tzinfo=dt.UTC), 16),
}
STEP = dt.timedelta(hours=1.5)
PER_SHARD = 8
FAILED = {
    "/data/SITE-A/2024/bad_header.WAV": "not decodable audio (Error: format not recognised)",
    "/data/SITE-B/2024/<script>alert(1)</script>.wav": "truncated: 0 frames",
}
IGNORED = "/data/SITE-A/2024/._20240315_000000.WAV"
CLUSTER = ClusterConfig(
    k=K,
    level="frame",  # frames of one segment differ: the report's frame-level paths
    normalise="none",
    block_rows=200,
    batch_size=128,
    reservoir_size=400,
    k_selection=[2, 4, 8],
    silhouette_sample=200,
)


def frame_blobs(index: int) -> np.ndarray:
    """int64 `[FRAMES]`: the blob of every frame of segment `index`."""
    blobs = np.full(FRAMES, index % K)
    if index % 3 == 0:
        blobs[FRAMES // 2 :] = (index + 1) % K
    return blobs


def segment_audio(index: int, rng: np.random.Generator) -> np.ndarray:
    """float32 `[SEGMENT_S × SAMPLE_RATE]`: a tone per frame span, plus faint noise."""
    per_frame = int(SAMPLE_RATE / FRAME_RATE)
    tones = np.repeat([TONES_HZ[b] for b in frame_blobs(index)], per_frame)
    t = np.arange(len(tones)) / SAMPLE_RATE
    samples = 0.3 * np.sin(2 * np.pi * tones * t) + rng.normal(0, 0.005, len(t))
    return samples.astype(np.float32)


@dataclass
class FakeOut:
    """What `write_fake_out` wrote.

    Attributes:
        out: the output root.
        store: the feature store URL.
        run_dir: the training run with metrics.jsonl.
        frame_blob: int64 `[n_frames]`, the true blob of every frame of the store.
        segment_rows: every kept segment's catalog row, store order.
    """

    out: str
    store: str
    run_dir: str
    frame_blob: np.ndarray
    segment_rows: list[dict]


def _identity() -> StoreIdentity:
    return StoreIdentity(DIM, FRAME_RATE, SAMPLE_RATE, 64, "0" * 64, {"name": "fake"})


def _segment_row(key: str, recording: str, site: str, start: dt.datetime, shard: str | None):
    return {
        "key": key,
        "recording_id": recording,
        "site": site,
        "stream": 0,
        "channel": -1,
        "start_time": start,
        "offset_s": 0.0,
        "duration_s": SEGMENT_S,
        "sample_rate": SAMPLE_RATE,
        "shard": shard,
        "rms_dbfs": -13.5,
        "peak": 0.3,
        "clipped_fraction": 0.0,
        "is_silent": shard is None,
        "has_nonfinite": False,
        "dc_offset": 0.0,
        "kept": shard is not None,
        "drop_reason": None if shard is not None else "silence",
    }


def _write_year(out: Path, store: FeatureStore, year: str, rng, centres) -> tuple[list, list]:
    start, n_segments = YEARS[year]
    rows, recordings = [], []
    for first in range(0, n_segments, PER_SHARD):
        shard = f"{year}/shard-{first // PER_SHARD:06d}.tar"
        batch = []
        with ShardWriter(str(Path(OutputLayout(str(out)).shards_dir) / shard)) as writer:
            for index in range(first, min(first + PER_SHARD, n_segments)):
                recording = f"{year}-rec{index:04d}"
                row = _segment_row(
                    segment_key(recording, 0, 0),
                    recording,
                    SITES[index % 2],
                    start + index * STEP,
                    shard,
                )
                samples = segment_audio(index, rng)
                writer.write(row["key"], audio.encode_flac(samples, SAMPLE_RATE), row)
                batch.append((index, row))
                recordings.append(_recording_row(recording, row, "ok"))
        blobs = np.concatenate([frame_blobs(i) for i, _ in batch])
        embeddings = centres[blobs] + rng.normal(0, 0.3, (len(blobs), DIM))
        table = pa.table(
            {
                "key": [r["key"] for _, r in batch],
                "recording_id": [r["recording_id"] for _, r in batch],
                "site": [r["site"] for _, r in batch],
                "start_time": pa.array(
                    [r["start_time"] for _, r in batch], pa.timestamp("ms", "UTC")
                ),
                "offset_s": [0.0] * len(batch),
                "duration_s": [SEGMENT_S] * len(batch),
                "shard": [shard] * len(batch),
                "n_frames": pa.array([FRAMES] * len(batch), pa.int32()),
            }
        )
        tokens = (blobs * 8 + np.arange(len(blobs)) % 2).astype(np.int16)
        store.append(tokens, embeddings.astype(np.float32), table, shards=[shard])
        rows.extend(row for _, row in batch)
    return rows, recordings


def _recording_row(recording: str, row: dict | None, status: str, **changes) -> dict:
    base = {
        "recording_id": recording,
        "path": f"/data/{recording}.wav",
        "site": row["site"] if row else "SITE-A",
        "start_time": row["start_time"] if row else None,
        "time_source": "filename",
        "duration_s": SEGMENT_S if status == "ok" else None,
        "sample_rate": SAMPLE_RATE,
        "channels": 1,
        "format": "WAV",
        "subtype": "PCM_16",
        "bytes": 32044,
        "fingerprint": "f" * 16,
        "status": status,
        "error": None,
        "n_segments_kept": 1 if status == "ok" else 0,
        "n_segments_dropped": 0,
    }
    base.update(changes)
    return base


def write_metrics(run_dir: Path, n_steps: int = 30) -> None:
    """A metrics.jsonl per the contract: train records every step, val every 10, one bad line."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for step in range(1, n_steps + 1):
        lines.append(
            {
                "step": step,
                "split": "train",
                "loss/mel": 2.0 / step,
                "loss/total_g": 3.0 / step,
                "loss/total_d": 1.0 + 0.01 * step,
                "codebook/usage": min(1.0, 0.1 * step),
                "codebook/perplexity": 2.0 * step,
                "codebook/dead": max(0, 64 - 4 * step),
                "lr/generator": 2e-4,
                "grad_norm/generator": 1.5,
                "speed/samples_per_s": 12.5,
                "time_s": 2.0 * step,
            }
        )
        if step % 10 == 0:
            lines.append({"step": step, "split": "val", "val/mel_distance": 1.0 / step})
    text = "\n".join(json.dumps(line) for line in lines)
    (run_dir / "metrics.jsonl").write_text(text + "\n{not json\n")


def write_fake_out(root: Path, seed: int = 0) -> FakeOut:
    """Write the whole OUT/ (see the module docstring) and cluster it (fit, then update)."""
    rng = np.random.default_rng(seed)
    out = root / "out"
    centres = blob_centres(K, DIM, seed=seed)
    url = str(out / "features.zarr")
    store = create_store(url, _identity(), frames_per_chunk=160, segments_per_chunk=8)
    rows, recordings = _write_year(out, store, "y1", rng, centres)
    cluster_features(url, "default", CLUSTER, workers=1)
    year2_rows, year2_recordings = _write_year(out, open_store(url, "r+"), "y2", rng, centres)
    rows += year2_rows
    recordings += year2_recordings
    cluster_features(url, "default", CLUSTER, update=True, workers=1)
    dropped = [
        _segment_row(f"drop{i}_s0_000000", f"drop{i}", SITES[i % 2], YEARS["y1"][0], None)
        for i in range(3)
    ]
    dropped[2].update(drop_reason="clipped", clipped_fraction=0.2, is_silent=False)
    for i, row in enumerate(dropped):
        recordings.append(_recording_row(f"drop{i}", row, "ok", n_segments_kept=0))
    for number, (path, error) in enumerate(FAILED.items()):
        recordings.append(_recording_row(f"bad{number}", None, "failed", path=path, error=error))
    recordings.append(_recording_row("side0", None, "ignored", path=IGNORED))
    write_segments(pa.Table.from_pylist(rows + dropped, schema=SEGMENTS_SCHEMA), str(out))
    write_recordings(pa.Table.from_pylist(recordings, schema=RECORDINGS_SCHEMA), str(out))
    shard_stats(str(out))
    run_dir = root / "run"
    write_metrics(run_dir)
    blobs = np.concatenate([frame_blobs(i) for year in YEARS for i in range(YEARS[year][1])])
    return FakeOut(str(out), url, str(run_dir), blobs, rows)
