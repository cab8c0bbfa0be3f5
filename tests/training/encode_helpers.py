"""What the encode tests share: a tiny tokenizer on disk, shards at 24 kHz, an oracle, snapshots.

The oracle encodes each segment alone, straight from the signal `fake_ingest.ramp`
wrote (16-bit ramps, which FLAC keeps exactly), brought to the reader's deterministic
peak level by hand, so it shares no reading, batching or store code with `encode`.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import training.encode
from analysis.store import open_store
from shards.catalog import write_segments
from shards.writer import ShardWriter
from sonotype import audio
from sonotype.config.encode import EncodeConfig
from sonotype.contracts import EMBEDDINGS, POOLED, SEGMENTS_SCHEMA, TOKENS
from sonotype.contracts import SegmentColumn as Col
from tests.shards.fake_ingest import FakeOut, ramp, write_fake_out
from tests.training.conftest import preset, seed_codebook
from training import Tokenizer, build_generator, load_tokenizer, save_tokenizer

SAMPLE_RATE = 24000
HOP = 600
"""The tiny preset's hop: 40 frames per second at 24 kHz."""


def save_tiny_tokenizer(path: Path, seed: int = 1, latent_scale: float = 1.0) -> Path:
    """Write a sonotype checkpoint of the tiny model with seeded weights and codebook.

    Args:
        path: where to write it.
        seed: seeds the weights (another seed is another model).
        latent_scale: multiplies the encoder's last convolution, hence every embedding
            (the codebook is then Euclidean: cosine latents are unit vectors whatever
            their scale).
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        config = preset("tiny")
        if latent_scale != 1.0:
            quantizer = config.quantizer.model_copy(update={"cosine": False})
            config = config.model_copy(update={"quantizer": quantizer})
        generator = build_generator(config)
    with torch.no_grad():
        for parameter in generator.encoder.output_conv.parameters():
            parameter.mul_(latent_scale)
    seed_codebook(generator)
    save_tokenizer(path, config, generator.eval())
    return path


def write_out(root: Path, shard_sizes: tuple[int, ...], **kwargs) -> FakeOut:
    """Shards and catalog, at 24 kHz unless told (`fake_ingest.write_fake_out`)."""
    kwargs.setdefault("sample_rate", SAMPLE_RATE)
    return write_fake_out(root, shard_sizes, **kwargs)


TIE = 1e-6
"""Squared distances to two codes closer than this are a tie. The quantizer computes
‖x‖² − 2·x·e + ‖e‖² in float32 (rounding ≈ 1e-7 here), an untrained encoder's outputs
crowd together (this model's codebook even has exact ties), and batching or chunking
moves embeddings by ~1e-7: which of two tied codes wins is rounding, not behaviour."""


@dataclass
class Expected:
    """The oracle's features of some segments, in the order asked for."""

    keys: list[str]
    tokens: list[np.ndarray]
    embeddings: list[np.ndarray]
    codebook: np.ndarray

    def assert_tokens(self, index: int, stored: np.ndarray) -> None:
        """Segment `index`'s stored tokens are the oracle's wherever its nearest code is
        clear; where two codes tie, the stored one is one of them."""
        difference = self.embeddings[index].astype(np.float64)[:, None, :] - self.codebook
        squared = (difference**2).sum(axis=-1)  # [F, K], exact enough in float64
        ordered = np.sort(squared, axis=1)
        chosen = np.take_along_axis(squared, stored.astype(np.int64)[:, None], axis=1)[:, 0]
        assert float((chosen - ordered[:, 0]).max()) <= TIE
        clear = ordered[:, 1] - ordered[:, 0] > TIE
        assert clear.mean() > 0.5  # most frames are clear: the check below is not vacuous
        np.testing.assert_array_equal(stored[clear], self.tokens[index][clear])


def peak_level(config: EncodeConfig) -> float:
    """The amplitude a segment's peak is brought to: the midpoint of the dBFS range."""
    return float(np.float32(10 ** ((config.gain.min_dbfs + config.gain.max_dbfs) / 2 / 20)))


def encode_like_a_run(
    tokenizer: Tokenizer, signal: np.ndarray, config: EncodeConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and latents of one run: peak gain on the whole run, then the warm-up — the
    run's first whole-hop samples mirrored in front (never its very first sample, and
    less than the whole run) — encoded and its frames dropped."""
    hop = tokenizer.hop_length
    scaled = signal * np.float32(peak_level(config) / np.abs(signal).max())
    wanted = round(config.warmup_s * SAMPLE_RATE / hop) * hop
    n = min(wanted, (len(scaled) - 1) // hop * hop)
    mirrored = np.concatenate([scaled[1 : n + 1][::-1], scaled])
    codes, latents = tokenizer.encode_with_embeddings(torch.from_numpy(mirrored)[None])
    return codes[0, n // hop :].numpy(), latents[0, n // hop :].numpy()


def expected_features(
    checkpoint: Path, fake: FakeOut, config: EncodeConfig, chunk_frames: int = 100_000
) -> Expected:
    """Each segment of `fake` encoded alone, from its known signal, in shard and tar order."""
    tokenizer: Tokenizer = load_tokenizer(checkpoint, chunk_frames=chunk_frames)
    codebook = tokenizer.generator.quantizer.embed.detach().numpy().astype(np.float64)
    expected = Expected([], [], [], codebook)
    for index, key in enumerate(fake.all_keys):
        row = fake.row(key)
        signal = ramp(index, round(row["duration_s"] * SAMPLE_RATE))
        codes, latents = encode_like_a_run(tokenizer, signal, config)
        expected.keys.append(key)
        expected.tokens.append(codes)
        expected.embeddings.append(latents)
    return expected


@dataclass
class Snapshot:
    """Everything committed in a store, read back whole (the test stores are small)."""

    tokens: np.ndarray
    embeddings: np.ndarray
    pooled: np.ndarray
    table: pa.Table
    attrs: dict

    def assert_equal(self, other: "Snapshot") -> None:
        np.testing.assert_array_equal(self.tokens, other.tokens)
        np.testing.assert_array_equal(self.embeddings, other.embeddings)
        np.testing.assert_array_equal(self.pooled, other.pooled)
        assert self.table.equals(other.table)
        assert self.attrs == other.attrs


def snapshot(url: str) -> Snapshot:
    store = open_store(url)
    return Snapshot(
        store.read(TOKENS, 0, store.n_frames),
        store.read(EMBEDDINGS, 0, store.n_frames),
        store.read(POOLED, 0, store.n_segments),
        store.read_segments(),
        store.group.attrs.asdict(),
    )


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A catalog time as the segment table returns it (UTC, millisecond precision)."""
    return None if value is None else value.astimezone(dt.UTC)


def garble_sample(fake: FakeOut, key: str) -> None:
    """Rewrite `key`'s shard with bytes that are not audio in place of its FLAC."""
    shard = next(s for s in fake.shards if key in fake.keys[s])
    path = fake.shard_path(shard)
    with ShardWriter(str(path)) as writer:
        for index, other in enumerate(fake.all_keys):
            if other not in fake.keys[shard]:
                continue
            row = fake.row(other)
            signal = ramp(index, round(row[Col.DURATION_S] * SAMPLE_RATE))
            flac = (
                b"not a flac file" * 10 if other == key else audio.encode_flac(signal, SAMPLE_RATE)
            )
            writer.write(other, flac, row)


def cut_shard(fake: FakeOut, shard: str) -> None:
    """Cut a shard's file in half: the tar breaks off inside a member."""
    path = fake.shard_path(shard)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def catalog_without(fake: FakeOut, shards: set[str]) -> None:
    """Rewrite the catalog as it was before `shards` were ingested (their rows gone)."""
    rows = [row for row in fake.rows if row[Col.SHARD] not in shards]
    write_segments(pa.Table.from_pylist(rows, schema=SEGMENTS_SCHEMA), fake.out)


def full_catalog(fake: FakeOut) -> None:
    """Rewrite the catalog with every row `write_out` wrote."""
    catalog_without(fake, set())


def record_encoded_shards(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The shards `encode_features` encodes from now on (in-process runs), in order."""
    encoded = []
    original = training.encode.encode_shard

    def recording(tokenizer, url, shard, *args):
        encoded.append(shard)
        return original(tokenizer, url, shard, *args)

    monkeypatch.setattr(training.encode, "encode_shard", recording)
    return encoded
