"""The streaming reader: coverage, equal batches per rank, determinism, resume, crops, gain."""

import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
import webdataset as wds

from shards import crops as crops_module
from shards.catalog import write_segments
from shards.index import ShardIndex
from shards.reader import Batch, ShardLoader
from shards.select import SegmentFilter
from shards.writer import ShardWriter, encode_metadata
from sonotype import audio
from sonotype.config.reader import ReaderConfig
from sonotype.contracts import SEGMENTS_SCHEMA, OutputLayout
from sonotype.errors import ConfigError, SonotypeError
from tests.shards.fake_ingest import (
    RAMP_STEP,
    START,
    FakeOut,
    ramp,
    ramp_origin,
    segment_row,
    write_fake_out,
)

CROP = 2000  # 0.25 s at 8 kHz


def _config(**changes) -> ReaderConfig:
    settings = {
        "crop_s": 0.25,
        "batch_size": 3,
        "shuffle_buffer": 4,
        "num_workers": 0,
        "gain": {"mode": "none"},
    }
    settings.update(changes)
    return ReaderConfig.model_validate(settings)


def _index(fake: FakeOut) -> ShardIndex:
    return ShardIndex.from_catalog(fake.out, SegmentFilter())


def _signature(batches: list[Batch]) -> list[tuple]:
    return [(b.keys, b.offsets.tolist(), b.wav.numpy().tobytes()) for b in batches]


def _segment_number(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


def _check_crops_come_from_their_offsets(batch: Batch) -> None:
    for row, key in enumerate(batch.keys):
        origin = ramp_origin(float(batch.wav[row, 0]))
        expected = (int(batch.offsets[row]) + RAMP_STEP * _segment_number(key)) % 65536
        assert origin == expected, key


@pytest.fixture
def uneven(tmp_path: Path) -> FakeOut:
    """18 segments of 1 s in four shards of 5, 1, 9 and 3 samples."""
    return write_fake_out(tmp_path / "out", (5, 1, 9, 3))


@pytest.mark.parametrize("world_size", [1, 3])
def test_a_single_pass_reads_every_segment_once_across_ranks_and_workers(
    uneven: FakeOut, world_size: int
):
    seen: Counter[str] = Counter()
    for rank in range(world_size):
        loader = ShardLoader(
            _index(uneven), _config(num_workers=2), mode="eval", rank=rank, world_size=world_size
        )
        batches = list(loader)
        assert len(batches) == len(loader)
        for batch in batches:
            assert batch.wav.shape[1] == CROP
            assert batch.wav.dtype == torch.float32
            assert batch.offsets.tolist() == [3000] * len(batch)  # centred: (8000 - 2000) / 2
            _check_crops_come_from_their_offsets(batch)
            seen.update(batch.keys)
    assert seen == Counter(uneven.all_keys)


@pytest.mark.parametrize(
    ("world_size", "num_workers", "sizes"),
    [(3, 0, (5, 1, 9, 3)), (2, 2, (17, 1, 1, 2)), (4, 1, (5, 1, 9, 3))],
)
def test_training_gives_every_rank_the_same_number_of_full_batches(
    tmp_path: Path, world_size: int, num_workers: int, sizes: tuple[int, ...]
):
    fake = write_fake_out(tmp_path / "out", sizes)
    config = _config(batch_size=4, crops_per_segment=2, num_workers=num_workers)
    expected = sum(sizes) * 2 // (world_size * 4)
    for rank in range(world_size):
        loader = ShardLoader(_index(fake), config, rank=rank, world_size=world_size)
        batches = list(loader)
        assert len(loader) == expected
        assert [len(b) for b in batches] == [4] * expected


def test_training_reads_each_crop_once_when_the_crops_fill_the_batches(uneven: FakeOut):
    # 18 segments × 2 crops = 36 = 3 ranks × 3 batches × 4.
    config = _config(batch_size=4, crops_per_segment=2, num_workers=2)
    seen: Counter[str] = Counter()
    for rank in range(3):
        for batch in ShardLoader(_index(uneven), config, rank=rank, world_size=3):
            _check_crops_come_from_their_offsets(batch)
            seen.update(batch.keys)
    assert seen == Counter({key: 2 for key in uneven.all_keys})


def test_two_gloo_ranks_finish_an_epoch_of_uneven_shards_together(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (11, 1, 2))
    context = torch.multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_gloo_rank, args=(rank, fake.out, str(tmp_path)))
        for rank in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    hung = [p.pid for p in processes if p.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
    assert hung == []
    assert [p.exitcode for p in processes] == [0, 0]
    # 14 segments / (2 ranks × 3) = 2 batches each; each all-reduce summed both ranks.
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)] == ["2 2.0"] * 2


def _gloo_rank(rank: int, out: str, folder: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2
    )
    try:
        loader = ShardLoader.from_catalog(out, _config(shuffle_buffer=2))
        n_batches, total = 0, torch.zeros(1)
        for _batch in loader:
            step = torch.ones(1)
            torch.distributed.all_reduce(step)  # hangs if the other rank has run out
            n_batches += 1
            total = step
        Path(folder, f"rank{rank}.txt").write_text(f"{n_batches} {float(total[0])}")
    finally:
        torch.distributed.destroy_process_group()


def test_the_same_seed_gives_the_same_batches_and_epochs_differ(uneven: FakeOut):
    config = _config(num_workers=2, crops_per_segment=2)
    first = ShardLoader(_index(uneven), config)
    second = ShardLoader(_index(uneven), config)
    epoch0 = list(first)
    assert _signature(epoch0) == _signature(list(second))
    epoch1 = list(first)
    assert first.epoch == 2
    assert [b.keys for b in epoch1] != [b.keys for b in epoch0]
    other_seed = ShardLoader(_index(uneven), config.model_copy(update={"seed": 1}))
    assert [b.keys for b in other_seed] != [b.keys for b in epoch0]
    second.set_epoch(1)
    assert _signature(list(second)) == _signature(epoch1)


@pytest.mark.parametrize(("num_workers", "stop_after"), [(0, 4), (2, 3), (2, 6)])
def test_resume_continues_exactly_where_the_run_stopped(
    tmp_path: Path, num_workers: int, stop_after: int
):
    fake = write_fake_out(tmp_path / "out", (5, 1, 9, 3))
    _truncate_flac(fake, fake.all_keys[7])  # fails at decoding, after the shuffle buffer
    _garble_flac(fake, fake.all_keys[12])  # fails at the header, before the shuffle buffer
    config = _config(num_workers=num_workers, crops_per_segment=2)
    uninterrupted = ShardLoader(_index(fake), config)
    whole = list(uninterrupted)
    following = list(uninterrupted)

    interrupted = ShardLoader(_index(fake), config)
    for n, _batch in enumerate(interrupted, start=1):
        if n == stop_after:
            state = interrupted.state_dict()
            break
    assert state["batches"] == stop_after

    resumed = ShardLoader(_index(fake), config)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert _signature(rest) == _signature(whole[stop_after:])
    assert _signature(list(resumed)) == _signature(following)
    assert resumed.skipped == uninterrupted.skipped
    # Each epoch meets the garbled sample at least once and both crops of the truncated one.
    assert set(resumed.skipped) == {"audio"}
    assert resumed.skipped["audio"] >= 2 * 3


def test_fast_forward_decodes_nothing_it_skips(uneven: FakeOut, monkeypatch: pytest.MonkeyPatch):
    config = _config(crops_per_segment=2)
    loader = ShardLoader(_index(uneven), config)
    iterator = iter(loader)
    for _ in range(5):
        next(iterator)
    state = loader.state_dict()
    decoded = []
    real = crops_module.audio.decode_bytes_range

    def counting(data: bytes, start: int, frames: int, name: str = "") -> np.ndarray:
        decoded.append(name)
        return real(data, start, frames, name)

    monkeypatch.setattr(crops_module.audio, "decode_bytes_range", counting)
    resumed = ShardLoader(_index(uneven), config)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(loader) - 5
    assert len(decoded) == sum(len(b) for b in rest)


def test_a_position_only_loads_into_a_reader_built_the_same_way(uneven: FakeOut):
    loader = ShardLoader(_index(uneven), _config())
    state = loader.state_dict()
    for changes, field in [
        ({"batch_size": 2}, "settings"),
        ({"num_workers": 2}, "num_workers: saved 1, now 2"),
    ]:
        other = ShardLoader(_index(uneven), _config(**changes))
        with pytest.raises(SonotypeError, match=field):
            other.load_state_dict(state)
    other_rank = ShardLoader(_index(uneven), _config(), rank=1, world_size=2)
    with pytest.raises(SonotypeError, match="rank: saved 0, now 1"):
        other_rank.load_state_dict(state)


def test_several_crops_per_segment_at_fixed_places_in_eval(uneven: FakeOut):
    loader = ShardLoader(_index(uneven), _config(crops_per_segment=3), mode="eval")
    offsets: dict[str, list[int]] = {}
    for batch in loader:
        _check_crops_come_from_their_offsets(batch)
        for key, offset in zip(batch.keys, batch.offsets.tolist(), strict=True):
            offsets.setdefault(key, []).append(offset)
    assert offsets == {key: [0, 3000, 6000] for key in uneven.all_keys}


@pytest.mark.parametrize("short_segments", ["pad", "skip"])
def test_segments_shorter_than_a_crop_are_padded_or_skipped(tmp_path: Path, short_segments: str):
    fake = write_fake_out(tmp_path / "out", (4,), durations={1: 0.1})
    loader = ShardLoader(_index(fake), _config(short_segments=short_segments), mode="eval")
    rows = {
        key: (batch.wav[i], int(batch.lengths[i]))
        for batch in loader
        for i, key in enumerate(batch.keys)
    }
    short_key = fake.all_keys[1]
    if short_segments == "skip":
        assert sorted(rows) == sorted(set(fake.all_keys) - {short_key})
        assert loader.skipped == Counter({"short": 1})
        return
    wav, length = rows[short_key]
    assert length == 800
    assert wav.shape == (CROP,)
    assert torch.all(wav[800:] == 0)
    assert ramp_origin(float(wav[0])) == RAMP_STEP * 1


def test_gain_brings_every_crop_to_its_target_level(uneven: FakeOut):
    gain = {"mode": "peak", "min_dbfs": -6.0, "max_dbfs": -2.0}
    train = list(ShardLoader(_index(uneven), _config(gain=gain)))
    peaks = [20 * math.log10(float(row.abs().max())) for batch in train for row in batch.wav]
    assert all(-6.0 - 1e-3 <= p <= -2.0 + 1e-3 for p in peaks)
    assert max(peaks) - min(peaks) > 1.0  # drawn per crop
    evaluation = list(ShardLoader(_index(uneven), _config(gain=gain), mode="eval"))
    for batch in evaluation:
        peak = batch.wav.abs().amax(dim=1)
        np.testing.assert_allclose(20 * np.log10(peak.numpy()), -4.0, atol=1e-3)


def test_filters_select_sites_times_and_quality(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (5, 1, 9, 3), row_changes={2: {"is_silent": True}})
    config = _config(
        filters={
            "sites": ["A"],
            "start_time": "2024-03-15T06:00:00Z",  # segment 2 onwards (one every 30 min)
            "end_time": "2024-03-15T11:00:00Z",  # before segment 12
        }
    )
    loader = ShardLoader.from_catalog(fake.out, config, mode="eval")
    keys = sorted(key for batch in loader for key in batch.keys)
    assert [_segment_number(k) for k in keys] == [4, 6, 8, 10]
    # The scan of the shards applies the same filter to the JSON members.
    shards = OutputLayout(fake.out).shards_dir
    scanned = ShardLoader.from_urls(f"{shards}/*.tar", config, mode="eval")
    assert sorted(key for batch in scanned for key in batch.keys) == keys


def test_segments_mode_yields_whole_segments_padded_to_the_longest(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (3, 2), durations={0: 0.5, 3: 0.75})
    loader = ShardLoader(_index(fake), _config(batch_size=2), mode="segments")
    lengths = {}
    for batch in loader:
        assert batch.wav.shape[1] == int(batch.lengths.max())
        for i, key in enumerate(batch.keys):
            n = int(batch.lengths[i])
            lengths[key] = n
            assert torch.all(batch.wav[i, n:] == 0)
            assert ramp_origin(float(batch.wav[i, 0])) == RAMP_STEP * _segment_number(key)
    assert lengths == dict(zip(fake.all_keys, [4000, 8000, 8000, 6000, 8000], strict=True))


def test_crop_length_must_fit_the_model_hop_and_the_rate(uneven: FakeOut):
    with pytest.raises(ConfigError, match="not a multiple of the model hop 300"):
        ShardLoader(_index(uneven), _config(), hop_samples=300)
    assert ShardLoader(_index(uneven), _config(), hop_samples=400).crop_length == CROP
    with pytest.raises(SonotypeError, match="shards hold 8000 Hz audio"):
        ShardLoader(_index(uneven), _config(sample_rate=24000))


def _rewrite_sample(fake: FakeOut, key: str, flac: Callable[[bytes], bytes]) -> None:
    """Rewrite `key`'s shard with `flac(bytes)` in place of its FLAC member."""
    shard = next(s for s in fake.shards if key in fake.keys[s])
    path = fake.shard_path(shard)
    samples = list(wds.WebDataset(str(path), shardshuffle=False))
    with wds.TarWriter(str(path)) as writer:
        for sample in samples:
            if sample["__key__"] == key:
                sample["flac"] = flac(sample["flac"])
            writer.write(
                {"__key__": sample["__key__"], "flac": sample["flac"], "json": sample["json"]}
            )


def _truncate_flac(fake: FakeOut, key: str) -> None:
    """Cut `key`'s FLAC in half: its header still claims 1 s, decoding fails part-way."""
    _rewrite_sample(fake, key, lambda data: data[: len(data) // 2])


def _garble_flac(fake: FakeOut, key: str) -> None:
    """Replace `key`'s FLAC with bytes that are not audio at all."""
    _rewrite_sample(fake, key, lambda data: b"not a flac file" * 10)


def _write_bad_shards(fake: FakeOut) -> list[str]:
    """Add shards of broken samples (catalogued as kept); returns the keys still readable.

    - `bad.tar`: 3 samples with unreadable JSON, 1 whose JSON is another segment's row,
      2 without JSON, then 30 whose FLAC is not audio (the shard is split between the
      two workers, and the second reads the first's part while skipping to its own);
    - `cut.tar`: 4 good samples, the file cut inside the third one;
    - `gone.tar`: listed in the catalog, absent from disk.
    """
    good = audio.encode_flac(ramp(99, 8000), 8000)
    rows, members = [], []
    for i in range(36):
        key = f"bad{i:04d}_s0_{i:06d}"
        row = segment_row(
            key, i, shard="bad.tar", site="A", start_time=START, duration_s=1.0, sample_rate=8000
        )
        rows.append(row)
        sample = {"__key__": key, "flac": good, "json": encode_metadata(row)}
        if i < 3:
            sample["json"] = b'{"key": "unterminated'
        elif i < 4:
            sample["json"] = encode_metadata(dict(row, key="someone-else"))
        elif i < 6:
            del sample["json"]
        else:
            sample["flac"] = b"RIFF but not really audio" * 4
        members.append(sample)
    with wds.TarWriter(str(fake.shard_path("bad.tar"))) as writer:
        for sample in members:
            writer.write(sample)
    flacs = [audio.encode_flac(ramp(50 + i, 8000), 8000) for i in range(4)]
    with ShardWriter(str(fake.shard_path("cut.tar"))) as writer:
        for i, flac in enumerate(flacs):
            key = f"cut{i:04d}_s0_{i:06d}"
            row = segment_row(
                key,
                i,
                shard="cut.tar",
                site="A",
                start_time=START,
                duration_s=1.0,
                sample_rate=8000,
            )
            rows.append(row)
            writer.write(key, flac, row)
    path = fake.shard_path("cut.tar")
    data = path.read_bytes()
    path.write_bytes(data[: data.find(flacs[2]) + len(flacs[2]) // 2])
    rows.append(
        segment_row(
            "gone_s0_000000",
            0,
            shard="gone.tar",
            site="A",
            start_time=START,
            duration_s=1.0,
            sample_rate=8000,
        )
    )
    fake.rows += rows
    write_segments(pa.Table.from_pylist(fake.rows, schema=SEGMENTS_SCHEMA), fake.out)
    return [*fake.all_keys, "cut0000_s0_000000", "cut0001_s0_000001"]


def test_broken_samples_are_skipped_and_counted_and_reading_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    fake = write_fake_out(tmp_path / "out", (3, 4))
    readable = _write_bad_shards(fake)
    loader = ShardLoader.from_catalog(fake.out, _config(num_workers=2), mode="eval")
    with caplog.at_level(logging.WARNING, logger="shards.reader"):
        keys = [key for batch in loader for key in batch.keys]
    assert sorted(keys) == sorted(readable)
    assert loader.skipped == Counter(audio=30, json=4, incomplete=2, tar=1, shard=1)
    summary = [r.getMessage() for r in caplog.records if r.name == "shards.reader"]
    assert len(summary) == 1
    assert summary[0].startswith("epoch 0, rank 0: skipped {")


def test_training_on_broken_shards_still_delivers_every_batch(tmp_path: Path):
    fake = write_fake_out(tmp_path / "out", (3, 4))
    readable = _write_bad_shards(fake)
    loader = ShardLoader.from_catalog(fake.out, _config(num_workers=2, batch_size=4))
    batches = list(loader)
    # 48 catalogued segments / 4 = 12 batches, though only 9 segments are readable.
    assert len(batches) == len(loader) == 12
    assert all(len(b) == 4 for b in batches)
    assert {key for b in batches for key in b.keys} <= set(readable)
    assert loader.skipped["audio"] >= 30
