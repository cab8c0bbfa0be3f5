"""Helpers shared by the ingest tests: configs with short segments, reading shards back."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import webdataset as wds

from sonotype import audio
from sonotype.config.ingest import IngestConfig
from sonotype.config.load import load_config


def short_config(*overrides: str) -> IngestConfig:
    """Ingest settings with 1 s segments (tests use seconds of audio, not hours)."""
    base = ["segment.length_s=1.0", "segment.min_tail_s=0.2", "job.block_s=0.3"]
    return load_config(IngestConfig, None, [*base, *overrides])


def read_shards(out: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """Every sample under `out/shards`: key → (decoded float32 audio, metadata)."""
    samples = {}
    for shard in sorted((out / "shards").rglob("*.tar")):
        for sample in wds.WebDataset(str(shard), shardshuffle=False):
            data, rate = audio.decode_bytes(sample["flac"], sample["__key__"])
            meta = json.loads(sample["json"])
            assert rate == meta["sample_rate"]
            samples[sample["__key__"]] = (data, meta)
    return samples


def catalog_rows(out: Path, name: str) -> list[dict]:
    """Rows of `out/catalog/<name>.parquet`."""
    return pq.read_table(out / "catalog" / f"{name}.parquet").to_pylist()
