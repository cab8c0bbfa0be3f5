"""Shard writer: samples round-trip through webdataset; shards appear only when complete."""

import datetime as dt
import json
from pathlib import Path

import pytest
import webdataset as wds

from shards.writer import ShardWriter, encode_metadata
from sonotype import audio
from sonotype.errors import ShardFormatError
from tests.audio_factory import sine


def _samples(n: int) -> list[tuple[str, bytes, dict]]:
    start = dt.datetime(2024, 3, 15, 8, 45, tzinfo=dt.UTC)
    return [
        (
            f"rec_s0_{i:06d}",
            audio.encode_flac(sine(0.25, 24000, 300 + 100 * i), 24000),
            {"key": f"rec_s0_{i:06d}", "start_time": start + dt.timedelta(seconds=10 * i), "i": i},
        )
        for i in range(n)
    ]


def test_written_samples_read_back_through_webdataset(tmp_path: Path):
    target = tmp_path / "shards" / "a.tar"
    with ShardWriter(str(target)) as writer:
        for key, data, meta in _samples(3):
            writer.write(key, data, meta)
    assert writer.n_samples == 3
    read = list(wds.WebDataset(str(target), shardshuffle=False))
    assert [s["__key__"] for s in read] == ["rec_s0_000000", "rec_s0_000001", "rec_s0_000002"]
    decoded, rate = audio.decode_bytes(read[1]["flac"])
    assert rate == 24000
    assert len(decoded) == 6000
    meta = json.loads(read[2]["json"])
    assert meta == {"i": 2, "key": "rec_s0_000002", "start_time": "2024-03-15T08:45:20Z"}


def test_the_same_samples_give_the_same_bytes(tmp_path: Path):
    for name in ("a.tar", "b.tar"):
        with ShardWriter(str(tmp_path / name)) as writer:
            for key, data, meta in _samples(2):
                writer.write(key, data, meta)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_a_failed_task_leaves_no_shard(tmp_path: Path):
    target = tmp_path / "a.tar"

    def killed_after_one_sample() -> None:
        with ShardWriter(str(target)) as writer:
            key, data, meta = _samples(1)[0]
            writer.write(key, data, meta)
            raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        killed_after_one_sample()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["has.dot", "a/b", ""])
def test_invalid_keys_are_refused(tmp_path: Path, key: str):
    with (
        pytest.raises(ShardFormatError, match="invalid sample key"),
        ShardWriter(str(tmp_path / "a.tar")) as writer,
    ):
        writer.write(key, b"x", {})


def test_duplicate_keys_are_refused(tmp_path: Path):
    with ShardWriter(str(tmp_path / "a.tar")) as writer:
        writer.write("k", b"x", {})
        with pytest.raises(ShardFormatError, match="duplicate"):
            writer.write("k", b"x", {})


def test_metadata_refuses_naive_times_and_nulls_nan():
    assert json.loads(encode_metadata({"x": float("nan"), "y": 1.5})) == {"x": None, "y": 1.5}
    with pytest.raises(ShardFormatError, match="naive datetime"):
        encode_metadata({"t": dt.datetime(2024, 1, 1)})


def test_bytes_equal_those_of_webdatasets_own_tar_writer(tmp_path: Path):
    samples = _samples(3)
    with ShardWriter(str(tmp_path / "ours.tar")) as writer:
        for key, data, meta in samples:
            writer.write(key, data, meta)
    with (tmp_path / "theirs.tar").open("wb") as handle:
        tar = wds.TarWriter(handle, mtime=0.0, user="sonotype", group="sonotype")
        for key, data, meta in samples:
            tar.write({"__key__": key, "flac": data, "json": encode_metadata(meta)})
        tar.close()
    assert (tmp_path / "ours.tar").read_bytes() == (tmp_path / "theirs.tar").read_bytes()
