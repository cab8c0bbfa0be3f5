"""Small synthetic feature stores with known structure, written through the store API."""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analysis.store import FeatureStore, StoreIdentity, create_store

FRAME_RATE = 10.0
CODEBOOK_SIZE = 64
SITES = ("SITE-A", "SITE-B")


def identity(dim: int) -> StoreIdentity:
    return StoreIdentity(
        dim=dim,
        frame_rate=FRAME_RATE,
        sample_rate=24000,
        codebook_size=CODEBOOK_SIZE,
        checkpoint_sha256="0" * 64,
        model_config={"name": "synthetic"},
    )


def blob_centres(k: int, dim: int, seed: int = 0, spread: float = 10.0) -> np.ndarray:
    """k well-separated centres: scaled one-hot directions plus a random offset."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((k, dim), np.float32)
    centres[np.arange(k), np.arange(k) % dim] = spread
    return centres + rng.normal(0, 1.0, (k, dim)).astype(np.float32)


@dataclass
class Batch:
    """One append: frames of whole segments, each segment from one blob."""

    tokens: np.ndarray
    embeddings: np.ndarray
    segments: pa.Table
    blob_of_frame: np.ndarray
    blob_of_segment: np.ndarray
    loudness: np.ndarray


def make_batch(
    centres: np.ndarray,
    n_segments: int,
    frames_per_segment: int,
    rng: np.random.Generator,
    start: dt.datetime,
    segment_s: float | None = None,
    noise: float = 0.3,
    prefix: str = "rec",
) -> Batch:
    """Segments one after another from `start`, sites alternating, blob drawn per segment.

    Token of a frame: `blob * 8 + (frame index within segment) % 2`, so every blob has
    two tokens of its own.
    """
    k, dim = centres.shape
    segment_s = segment_s if segment_s is not None else frames_per_segment / FRAME_RATE
    blobs = rng.integers(0, k, n_segments)
    blob_of_frame = np.repeat(blobs, frames_per_segment)
    embeddings = centres[blob_of_frame] + rng.normal(0, noise, (len(blob_of_frame), dim))
    within = np.tile(np.arange(frames_per_segment), n_segments)
    tokens = (blob_of_frame * 8 + within % 2).astype(np.int16)
    starts = [start + dt.timedelta(seconds=i * segment_s) for i in range(n_segments)]
    segments = pa.table(
        {
            "key": [f"{prefix}_{i:06d}" for i in range(n_segments)],
            "recording_id": [f"{prefix}-{i // 10}" for i in range(n_segments)],
            "site": [SITES[i % len(SITES)] for i in range(n_segments)],
            "start_time": pa.array(starts, pa.timestamp("ms", tz="UTC")),
            "offset_s": [float((i % 10) * segment_s) for i in range(n_segments)],
            "duration_s": [float(segment_s)] * n_segments,
            "shard": [f"{prefix}-{i // 20:04d}.tar" for i in range(n_segments)],
            "n_frames": pa.array([frames_per_segment] * n_segments, pa.int32()),
        }
    )
    # each blob has its own recorded level, with some spread
    loudness = -60.0 + 6.0 * blob_of_frame + rng.normal(0, 1.0, len(blob_of_frame))
    return Batch(tokens, embeddings.astype(np.float32), segments, blob_of_frame, blobs, loudness)


def write_store(
    url: str,
    batches: list[Batch],
    frames_per_chunk: int = 256,
    segments_per_chunk: int = 16,
) -> FeatureStore:
    """Create a store and append `batches`, one append each."""
    dim = batches[0].embeddings.shape[1]
    store = create_store(url, identity(dim), frames_per_chunk, segments_per_chunk)
    for batch in batches:
        append(store, batch)
    return store


def append(store: FeatureStore, batch: Batch) -> None:
    shards = sorted(set(batch.segments.column("shard").to_pylist()))
    store.append(
        batch.tokens, batch.embeddings, batch.segments, shards=shards, loudness=batch.loudness
    )
