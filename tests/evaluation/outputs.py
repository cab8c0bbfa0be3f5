"""A tiny output root (catalog, shards, feature store, clustering) with known sound classes.

Every second of every segment is band-limited noise, low or high, and the store's frame
embeddings point in one direction per class (or are shuffled across frames, for a
store whose features carry nothing). Annotations give each second's class.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from analysis import StoreIdentity, cluster_features, create_store
from sonotype import audio
from sonotype.config.cluster import ClusterConfig
from sonotype.contracts import OutputLayout

SAMPLE_RATE = 8000
FRAME_RATE = 10.0
SEGMENT_S = 2
SEGMENTS_PER_RECORDING = 3
N_RECORDINGS = 4
BANDS_HZ = {"low": (50.0, 1200.0), "high": (2000.0, 3800.0)}
START = dt.datetime(2024, 3, 15, 8, 0, tzinfo=dt.UTC)


def second_labels(seed: int = 0) -> list[list[str]]:
    """The class of each second of each recording."""
    rng = np.random.default_rng(seed)
    names = sorted(BANDS_HZ)
    n_seconds = SEGMENT_S * SEGMENTS_PER_RECORDING
    return [[names[i] for i in rng.integers(0, 2, n_seconds)] for _ in range(N_RECORDINGS)]


def write_outputs(root: Path, informative: bool = True, seed: int = 0) -> tuple[str, str]:
    """Write OUT under `root` and its annotations CSV; returns (OUT, annotations path)."""
    rng = np.random.default_rng(seed)
    labels = second_labels(seed)
    out = OutputLayout(str(root / "out"))
    Path(out.shards_dir).mkdir(parents=True)
    recordings = {"recording_id": [], "path": [], "start_time": []}
    lines = ["path,start_s,end_s,label"]
    segments = {k: [] for k in ("key", "recording_id", "site", "start_time", "offset_s")}
    segments.update(duration_s=[], shard=[], n_frames=[])
    frame_classes = []
    for index, seconds in enumerate(labels):
        recording_id = f"rec-{index}"
        start = START + dt.timedelta(hours=index)
        recordings["recording_id"].append(recording_id)
        recordings["path"].append(f"/field/SITE/2024/{recording_id}.wav")
        recordings["start_time"].append(start)
        shard = f"SITE/{recording_id}.tar"
        Path(out.shards_dir, "SITE").mkdir(exist_ok=True)
        with wds.TarWriter(str(Path(out.shards_dir, shard))) as writer:
            for segment in range(SEGMENTS_PER_RECORDING):
                key = f"{recording_id}_{segment:06d}"
                classes = seconds[segment * SEGMENT_S : (segment + 1) * SEGMENT_S]
                writer.write({"__key__": key, "flac": _noise_bursts(classes, rng)})
                segments["key"].append(key)
                segments["recording_id"].append(recording_id)
                segments["site"].append("SITE")
                segments["start_time"].append(start + dt.timedelta(seconds=segment * SEGMENT_S))
                segments["offset_s"].append(float(segment * SEGMENT_S))
                segments["duration_s"].append(float(SEGMENT_S))
                segments["shard"].append(shard)
                segments["n_frames"].append(int(SEGMENT_S * FRAME_RATE))
                frame_classes += [c for c in classes for _ in range(int(FRAME_RATE))]
        lines += [f"SITE/2024/{recording_id}.wav,{s},{s + 1},{c}" for s, c in enumerate(seconds)]
    Path(out.catalog_dir).mkdir()
    pq.write_table(
        pa.table(
            {
                **recordings,
                "start_time": pa.array(recordings["start_time"], pa.timestamp("ms", tz="UTC")),
            }
        ),
        out.recordings,
    )
    _write_store(out.features, frame_classes, segments, informative, rng)
    annotations = root / "annotations.csv"
    annotations.write_text("\n".join(lines) + "\n")
    return out.root, str(annotations)


def _noise_bursts(classes: list[str], rng: np.random.Generator) -> bytes:
    """One second of noise in the class's band per class, at a random level."""
    frequencies = np.fft.rfftfreq(SAMPLE_RATE, 1 / SAMPLE_RATE)
    seconds = []
    for name in classes:
        low, high = BANDS_HZ[name]
        spectrum = np.fft.rfft(rng.normal(0, 1, SAMPLE_RATE))
        spectrum[(frequencies < low) | (frequencies > high)] = 0
        second = np.fft.irfft(spectrum, SAMPLE_RATE)
        seconds.append(second / np.abs(second).max() * rng.uniform(0.05, 0.5))
    samples = np.concatenate(seconds) + rng.normal(0, 1e-3, len(classes) * SAMPLE_RATE)
    return audio.encode_flac(samples.astype(np.float32), SAMPLE_RATE)


def _write_store(
    url: str,
    frame_classes: list[str],
    segments: dict,
    informative: bool,
    rng: np.random.Generator,
) -> None:
    dim = 4
    classes = np.asarray([sorted(BANDS_HZ).index(c) for c in frame_classes])
    embeddings = np.eye(dim, dtype=np.float32)[classes] * 3 + rng.normal(
        0, 0.3, (len(classes), dim)
    )
    if not informative:
        embeddings = rng.normal(0, 1.0, embeddings.shape)
    identity = StoreIdentity(
        dim=dim,
        frame_rate=FRAME_RATE,
        sample_rate=SAMPLE_RATE,
        codebook_size=8,
        checkpoint_sha256="0" * 64,
        model_config={"name": "synthetic"},
    )
    store = create_store(url, identity, frames_per_chunk=64, segments_per_chunk=4)
    table = pa.table(
        {
            **segments,
            "start_time": pa.array(segments["start_time"], pa.timestamp("ms", tz="UTC")),
            "n_frames": pa.array(segments["n_frames"], pa.int32()),
        }
    )
    store.append(classes.astype(np.int16), embeddings.astype(np.float32), table, shards=[])
    config = ClusterConfig(
        k=2, level="frame", normalise="none", block_rows=64, batch_size=64, k_selection=[]
    )
    cluster_features(url, name="default", config=config, workers=1)
